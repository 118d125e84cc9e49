import { bucketOf, MetricStatNames, resolutionMs, type MetricStats } from '@fleetpulse/contracts';

/** A closed window as the store writes it (a ClosedWindow is one). */
export interface WindowToStore {
  readonly deviceId: string;
  readonly resolution: string;
  readonly windowStart: number;
  readonly windowEnd: number;
  /** How many metrics the window holds, the i-th one's name and statistics, read without building objects. */
  readonly metricCount: number;
  metricName(i: number): string;
  stat(i: number, field: keyof MetricStats): number;
}

/** Bytes of one `metric_stats` UDT value: `count int` then seven doubles, each field with its int32 length. */
const StatsBytes = 4 + 4 + 7 * (4 + 8);

/**
 * The insert parameters of a `windows` row (device_id, resolution, bucket, window_start, window_end, metrics, ttl),
 * each already in the native protocol's encoding, as views of one buffer. cassandra-driver passes a Buffer parameter
 * through as encoded; left to it, the metrics map alone costs ~40 small buffers per row (a quarter of the
 * processor's CPU went to that garbage). The layout is the protocol's (v3+): a map is an int32 count, then per entry
 * an int32-length-prefixed key and value; a UDT value is its fields in declaration order (contracts/cql/003), each
 * int32-length-prefixed; bigint is int64 and double float64, big-endian.
 */
export function windowRowParams(w: WindowToStore, ttlSeconds: number): Buffer[] {
  const n = w.metricCount;
  const names: string[] = new Array<string>(n);
  let mapBytes = 4;
  for (let i = 0; i < n; i++) {
    const name = (names[i] = w.metricName(i));
    mapBytes += 4 + utf8Length(name) + 4 + StatsBytes;
  }
  const idBytes = utf8Length(w.deviceId);
  const resBytes = utf8Length(w.resolution);
  const buf = Buffer.allocUnsafe(idBytes + resBytes + 24 + mapBytes + 4);
  let at = writeText(buf, 0, w.deviceId, idBytes);
  at = writeText(buf, at, w.resolution, resBytes);
  const fixed = at;
  writeInt64(buf, at, bucketOf(w.windowStart, resolutionMs(w.resolution)));
  writeInt64(buf, at + 8, w.windowStart);
  writeInt64(buf, at + 16, w.windowEnd);
  at += 24;
  const mapAt = at;
  at = buf.writeInt32BE(n, at);
  for (let i = 0; i < n; i++) {
    const name = names[i]!;
    const nameBytes = utf8Length(name);
    at = buf.writeInt32BE(nameBytes, at);
    at = writeText(buf, at, name, nameBytes);
    at = buf.writeInt32BE(StatsBytes, at);
    at = buf.writeInt32BE(4, at);
    at = buf.writeInt32BE(w.stat(i, 'count'), at);
    for (let f = 1; f < MetricStatNames.length; f++) {
      at = buf.writeInt32BE(8, at);
      at = buf.writeDoubleBE(w.stat(i, MetricStatNames[f]!), at);
    }
  }
  buf.writeInt32BE(ttlSeconds, at);
  return [
    buf.subarray(0, idBytes),
    buf.subarray(idBytes, fixed),
    buf.subarray(fixed, fixed + 8),
    buf.subarray(fixed + 8, fixed + 16),
    buf.subarray(fixed + 16, fixed + 24),
    buf.subarray(mapAt, at),
    buf.subarray(at, at + 4),
  ];
}

/** UTF-8 length; ids and names are ASCII by contract, counted without leaving JavaScript. */
function utf8Length(s: string): number {
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) > 0x7f) return Buffer.byteLength(s);
  return s.length;
}

/** Writes `s` (of `bytes` UTF-8 bytes) at `at`; ASCII byte by byte (cheaper than a call into the runtime). */
function writeText(buf: Buffer, at: number, s: string, bytes: number): number {
  if (bytes !== s.length) return at + buf.write(s, at);
  for (let i = 0; i < bytes; i++) buf[at + i] = s.charCodeAt(i);
  return at + bytes;
}

/** A safe integer as a big-endian int64, without a BigInt. */
function writeInt64(buf: Buffer, at: number, x: number): void {
  const hi = Math.floor(x / 4294967296);
  buf.writeInt32BE(hi, at);
  buf.writeUInt32BE(x - hi * 4294967296, at + 4);
}
