import { once } from 'node:events';
import { connect, type Socket } from 'node:net';

/** MQTT 3.1.1 packets written byte by byte, for tests that must send what no client library would. */

/** The remaining-length bytes of a fixed header. */
export function remainingLength(n: number): number[] {
  const out: number[] = [];
  do {
    let byte = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) byte |= 0x80;
    out.push(byte);
  } while (n > 0);
  return out;
}

const utf8 = (s: string) => {
  const b = Buffer.from(s);
  return Buffer.concat([Buffer.from([b.length >> 8, b.length & 0xff]), b]);
};

/** A clean-session CONNECT with username and password. */
export function connectPacket(clientId: string, username: string, password: string, keepalive = 60): Buffer {
  const body = Buffer.concat([
    utf8('MQTT'),
    Buffer.from([4, 0xc2, keepalive >> 8, keepalive & 0xff]),
    utf8(clientId),
    utf8(username),
    utf8(password),
  ]);
  return Buffer.concat([Buffer.from([0x10, ...remainingLength(body.length)]), body]);
}

/** The fixed header, topic and packet id of a QoS 1 PUBLISH whose payload is `payloadLength` bytes (not included). */
export function publishHead(topic: string, payloadLength: number): Buffer {
  const variable = Buffer.concat([utf8(topic), Buffer.from([0, 1])]);
  return Buffer.concat([Buffer.from([0x32, ...remainingLength(variable.length + payloadLength)]), variable]);
}

/** A socket to `port` on the loopback address, connected. */
export async function rawSocket(port: number): Promise<Socket> {
  const socket = connect(port, '127.0.0.1');
  socket.on('error', () => undefined); // a reset by the server is what these tests provoke
  await once(socket, 'connect');
  return socket;
}

/** Resolves on the first of `events` (events.once would reject on the 'error' of a reset). */
const first = (socket: Socket, ...events: string[]) =>
  new Promise<void>((resolve) => {
    for (const e of events) socket.once(e, () => resolve());
  });

/** Reads the first `n` bytes the server sends (e.g. a CONNACK), or what came before it closed the connection. */
export async function readBytes(socket: Socket, n: number): Promise<Buffer> {
  let got = Buffer.alloc(0);
  while (got.length < n) {
    const chunk = socket.read() as Buffer | null;
    if (chunk !== null) got = Buffer.concat([got, chunk]);
    else if (socket.destroyed) break;
    else await first(socket, 'readable', 'close');
  }
  return got;
}

/**
 * Writes `head`, then `total` bytes of filler in 64 KiB chunks as fast as the socket takes them, stopping early when
 * the server closes the connection. Resolves with the filler bytes handed to the socket.
 */
export async function flood(socket: Socket, head: Buffer, total: number): Promise<number> {
  let closed = socket.destroyed;
  void first(socket, 'close').then(() => (closed = true));
  socket.write(head);
  const chunk = Buffer.alloc(64 * 1024, 0x61);
  let written = 0;
  while (!closed && written < total) {
    const part = total - written >= chunk.length ? chunk : chunk.subarray(0, total - written);
    const more = socket.write(part);
    written += part.length;
    if (!more) await first(socket, 'drain', 'close');
  }
  return written;
}

/** Whether the server closed the connection within `ms`. */
export async function closedWithin(socket: Socket, ms: number): Promise<boolean> {
  if (!socket.destroyed) await Promise.race([first(socket, 'close'), new Promise((r) => setTimeout(r, ms))]);
  return socket.destroyed;
}
