import { remainingLength } from '../testing/mqtt-raw';
import { ByteBudget, PacketGate, type FrameViolation } from './framing';

/** A packet: first header byte, then `body` (or just the header when only the declared length matters). */
const packet = (first: number, bodyLength: number, withBody = true) =>
  Buffer.from([first, ...remainingLength(bodyLength), ...(withBody ? Array<number>(bodyLength).fill(0x61) : [])]);

const CONNECT = 0x10;
const PUBLISH_QOS0 = 0x30;
const PUBLISH_QOS1 = 0x32;
const PUBLISH_QOS2 = 0x34;
const PINGREQ = 0xc0;
const limits = { maxConnectBytes: 1000, maxPacketBytes: 20_000 };

/** What the gate says of `bytes` handed over in chunks of `size`: the first violation, or undefined. */
function feed(bytes: Buffer, size = bytes.length): FrameViolation | undefined {
  const gate = new PacketGate(limits);
  for (let i = 0; i < bytes.length; i += size) {
    const v = gate.check(bytes.subarray(i, i + size));
    if (v !== undefined) return v;
  }
  return undefined;
}

describe('PacketGate', () => {
  const session = Buffer.concat([
    packet(CONNECT, 40),
    packet(PUBLISH_QOS1, 127),
    packet(PUBLISH_QOS0, 128),
    packet(PINGREQ, 0),
    packet(PUBLISH_QOS1, 20_000),
    packet(0x40, 2), // PUBACK
  ]);

  it.each([1, 2, 3, 7, 64, 1000, session.length])('passes a valid session read in chunks of %i bytes', (size) => {
    expect(feed(session, size)).toBeUndefined();
  });

  it('refuses a first packet that is not a CONNECT at its first byte', () => {
    expect(feed(packet(PUBLISH_QOS0, 10), 1)).toBe('not-connect-first');
    expect(new PacketGate(limits).check(Buffer.from([PINGREQ]))).toBe('not-connect-first');
  });

  it('refuses a CONNECT over its limit by its header, before any of its body', () => {
    expect(new PacketGate(limits).check(packet(CONNECT, 1001, false))).toBe('connect-too-large');
    expect(feed(packet(CONNECT, 1000))).toBeUndefined();
  });

  it('refuses a 50 MiB packet after CONNECT by its header, and as soon as its length is known to pass', () => {
    const gate = new PacketGate(limits);
    expect(gate.check(packet(CONNECT, 40))).toBeUndefined();
    const header = packet(PUBLISH_QOS1, 50 * 1024 * 1024, false);
    expect(header).toHaveLength(5);
    expect(gate.check(header.subarray(0, 4))).toBeUndefined(); // its length bytes so far say 0
    expect(gate.check(header.subarray(4))).toBe('packet-too-large');
    const early = new PacketGate(limits);
    early.check(packet(CONNECT, 40));
    // Three length bytes say 32,767 and more to come: over the limit whatever the fourth says.
    expect(early.check(Buffer.from([PUBLISH_QOS1, 0xff, 0xff, 0x81]))).toBe('packet-too-large');
  });

  it('refuses a PUBLISH at QoS 2 by its first byte', () => {
    const gate = new PacketGate(limits);
    expect(gate.check(packet(CONNECT, 40))).toBeUndefined();
    expect(gate.check(Buffer.from([PUBLISH_QOS2]))).toBe('qos2');
    expect(feed(Buffer.concat([packet(CONNECT, 40), packet(PUBLISH_QOS2 | 0x08 | 0x01, 10)]))).toBe('qos2');
  });

  it('refuses a remaining length of more than four bytes', () => {
    const gate = new PacketGate({ maxConnectBytes: 1000, maxPacketBytes: 1 << 30 });
    expect(gate.check(packet(CONNECT, 40))).toBeUndefined();
    expect(gate.check(Buffer.from([PUBLISH_QOS0, 0x80, 0x80, 0x80, 0x80, 0x01]))).toBe('malformed-length');
  });

  it('shares a budget of bytes of packets not yet whole between connections, and gives it back', () => {
    const budget = new ByteBudget(30_000);
    const a = new PacketGate(limits, budget);
    const b = new PacketGate(limits, budget);
    expect(a.check(packet(CONNECT, 40))).toBeUndefined();
    expect(b.check(packet(CONNECT, 40))).toBeUndefined();
    expect(budget.bytes).toBe(0); // whole packets hold nothing
    const big = packet(PUBLISH_QOS1, 20_000);
    const h = big.length - 20_000; // its fixed header
    expect(a.check(big.subarray(0, h + 15_000))).toBeUndefined();
    expect(budget.bytes).toBe(15_000);
    expect(b.check(big.subarray(0, h + 10_000))).toBeUndefined();
    expect(b.check(big.subarray(h + 10_000, h + 15_001))).toBe('buffer-budget'); // 30,001 held: one over
    b.release(); // b's connection is closed
    expect(budget.bytes).toBe(15_000);
    expect(a.check(big.subarray(h + 15_000))).toBeUndefined();
    expect(budget.bytes).toBe(0);
  });
});
