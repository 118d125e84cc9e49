/** MQTT control packet types: the high four bits of a fixed header's first byte. */
const connectType = 1;
const publishType = 3;

/** Why a connection's bytes are refused; the connection is then closed before any more of them is buffered. */
export type FrameViolation =
  'not-connect-first' | 'connect-too-large' | 'packet-too-large' | 'qos2' | 'malformed-length' | 'buffer-budget';

/**
 * Bytes of packets not yet whole, across every connection: what the MQTT parsers may be holding. A connection
 * whose bytes would take it past `limit` is dropped, so that many slow senders of large packets cannot add up.
 */
export class ByteBudget {
  private held = 0;

  constructor(readonly limit: number) {}

  get bytes(): number {
    return this.held;
  }

  take(n: number): boolean {
    if (this.held + n > this.limit) return false;
    this.held += n;
    return true;
  }

  give(n: number): void {
    this.held -= n;
  }
}

export interface FrameLimits {
  /** The first packet must be a CONNECT of at most this remaining length. */
  maxConnectBytes: number;
  /** Any later packet: at most this remaining length. */
  maxPacketBytes: number;
}

/**
 * Follows the packet boundaries in one connection's inbound bytes, keeping none of them: it reads each fixed header
 * (type, flags, remaining length, 2 to 5 bytes) as it arrives and steps over the rest of the packet. So a packet
 * can be refused by its header, before its body is read, where the MQTT parser (mqtt-packet) would buffer up to
 * 256 MiB of it first. Refused: a first packet that is not a CONNECT, or one over `maxConnectBytes`; a later packet
 * over `maxPacketBytes`; a PUBLISH at QoS 2 (ingestion takes QoS 0 and 1: a QoS 2 message would be held until
 * its PUBREL); a remaining length of more than four bytes; a packet whose bytes would take the shared `budget`
 * past its limit (each connection's incomplete packet counts until it is whole, or the connection gone: `release`).
 */
export class PacketGate {
  private first = true;
  /** Bytes of the current packet's body not yet seen. */
  private skip = 0;
  /** Reading a fixed header: its first byte is seen, its length bytes are not all in. */
  private inHeader = false;
  private length = 0;
  private lengthBytes = 0;
  /** Bytes of the current packet taken from the budget. */
  private held = 0;

  constructor(
    private readonly limits: FrameLimits,
    private readonly budget?: ByteBudget,
  ) {}

  /** Gives back what the current (incomplete) packet holds of the budget: the connection is gone. */
  release(): void {
    this.budget?.give(this.held);
    this.held = 0;
  }

  /** Undefined while every packet so far is within bounds; else why the connection is to be dropped. */
  check(chunk: Buffer): FrameViolation | undefined {
    const n = chunk.length;
    let i = 0;
    while (i < n) {
      if (this.skip > 0) {
        const step = Math.min(this.skip, n - i);
        if (this.budget !== undefined) {
          if (!this.budget.take(step)) return 'buffer-budget';
          this.held += step;
        }
        this.skip -= step;
        i += step;
        if (this.skip === 0) this.release();
        continue;
      }
      const byte = chunk[i++]!;
      if (!this.inHeader) {
        const type = byte >> 4;
        if (this.first && type !== connectType) return 'not-connect-first';
        if (type === publishType && ((byte >> 1) & 3) === 2) return 'qos2';
        this.inHeader = true;
        this.length = 0;
        this.lengthBytes = 0;
        continue;
      }
      this.length += (byte & 0x7f) * 128 ** this.lengthBytes++;
      // The length only grows with its later bytes: past the limit already is past it for good.
      if (this.first ? this.length > this.limits.maxConnectBytes : this.length > this.limits.maxPacketBytes)
        return this.first ? 'connect-too-large' : 'packet-too-large';
      if (byte & 0x80) {
        if (this.lengthBytes === 4) return 'malformed-length';
        continue;
      }
      this.inHeader = false;
      this.first = false;
      this.skip = this.length;
    }
    return undefined;
  }
}
