/**
 * patches/kafkajs+2.2.4.patch writes an uncompressed produce request's record batches in one pass into one buffer
 * (`recordBatch/v0/partitionEncoder.js`) and computes CRC32C eight bytes a step: ingestion's hot path (issue 16),
 * and every other producer's. Both must give kafkajs' own bytes exactly; the reference here is kafkajs' generic
 * encoders (Record, RecordBatch), which the patch leaves as they were.
 */
import { createRequire } from 'node:module';
import { nativeCrc32c } from '@fleetpulse/native';
import { mulberry32, type Rng } from '@fleetpulse/runtime';
import { kafkajsCrc32C, useNativeChecksum } from './kafka-checksum';

interface EncoderLike {
  buffer: Buffer;
  size(): number;
}
interface PartitionArgs {
  partition: number;
  messages: Message[];
  firstTimestamp: number | string;
  maxTimestamp: number | string;
  dateNow: number;
  producerId: unknown;
  producerEpoch: number;
  firstSequence: number;
  transactional: boolean;
}
interface Message {
  key?: unknown;
  value?: unknown;
  headers?: unknown;
  timestamp?: number | string;
}

const kafkajs = createRequire(require.resolve('kafkajs'));
const crc32C = kafkajs('./src/protocol/recordBatch/crc32C/crc32C') as ((b: Buffer) => number) & {
  bytewise: (b: Buffer) => number;
};
const Record = kafkajs('./src/protocol/recordBatch/record/v0') as (r: object) => EncoderLike;
const { RecordBatch } = kafkajs('./src/protocol/recordBatch/v0') as {
  RecordBatch: (b: object) => Promise<EncoderLike>;
};
const Encoder = kafkajs('./src/protocol/encoder') as new () => EncoderLike & {
  writeInt32(v: number): EncoderLike & { writeInt32(v: number): { writeEncoder(e: EncoderLike): EncoderLike } };
};
const Long = kafkajs('./src/utils/long') as { fromValue(v: number | string): unknown };
const { encodePartition } = kafkajs('./src/protocol/recordBatch/v0/partitionEncoder') as {
  encodePartition: (a: PartitionArgs) => EncoderLike | null;
};
const produceV3 = kafkajs('./src/protocol/requests/produce/v3/request') as (r: object) => {
  encode(): Promise<EncoderLike>;
};

/** What kafkajs 2.2.4 wrote for a partition before the patch: a Record per message, a RecordBatch, the framing. */
async function generic(a: PartitionArgs): Promise<Buffer> {
  const records = a.messages.map((m, i) =>
    Record({ ...m, offsetDelta: i, timestampDelta: Number(m.timestamp || a.dateNow) - Number(a.firstTimestamp) }),
  );
  const batch = await RecordBatch({
    records,
    firstTimestamp: a.firstTimestamp,
    maxTimestamp: a.maxTimestamp,
    producerId: a.producerId,
    producerEpoch: a.producerEpoch,
    firstSequence: a.firstSequence,
    transactional: a.transactional,
    lastOffsetDelta: records.length - 1,
  });
  return new Encoder().writeInt32(a.partition).writeInt32(batch.size()).writeEncoder(batch).buffer;
}

const pick = <T>(rng: Rng, xs: readonly T[]): T => xs[Math.floor(rng() * xs.length)]!;
const text = (rng: Rng, max: number) =>
  Array.from({ length: Math.floor(rng() * max) }, () => pick(rng, ['a', 'Z', '7', '-', 'é', '€', '𝄞', '"'])).join('');
const bytesOf = (rng: Rng, max: number) =>
  Buffer.from(Array.from({ length: Math.floor(rng() * max) }, () => rng() * 256));
/** A key or value as producers pass them: a Buffer (sometimes a slice of a larger one), a string, null, absent. */
const payload = (rng: Rng, max: number): unknown => {
  const r = rng();
  if (r < 0.4) return bytesOf(rng, max);
  if (r < 0.5) return Buffer.concat([Buffer.from('xx'), bytesOf(rng, max)]).subarray(2);
  if (r < 0.85) return text(rng, max);
  return r < 0.93 ? null : undefined;
};

function randomArgs(rng: Rng): PartitionArgs {
  const base = 1_700_000_000_000 + Math.floor(rng() * 1e9);
  const messages = Array.from({ length: Math.floor(rng() * 40) + 1 }, (): Message => {
    const m: Message = { key: payload(rng, 30), value: payload(rng, rng() < 0.1 ? 5000 : 300) };
    const h = rng();
    if (h < 0.2) m.headers = { traceparent: text(rng, 60) };
    else if (h < 0.3) m.headers = { a: [Buffer.from(text(rng, 5)), text(rng, 5)], 'é-key': bytesOf(rng, 10) };
    else if (h < 0.35) m.headers = {};
    const t = rng();
    if (t < 0.5) m.timestamp = base + Math.floor(rng() * 5000) - 1000;
    else if (t < 0.7) m.timestamp = String(base + Math.floor(rng() * 5000));
    return m;
  });
  const timestamps = messages
    .map((m) => m.timestamp)
    .filter((t) => t != null)
    .sort(); // kafkajs sorts them as strings: the patch keeps that
  const dateNow = base + 2000;
  return {
    partition: Math.floor(rng() * 64),
    messages,
    firstTimestamp: timestamps[0] ?? dateNow,
    maxTimestamp: timestamps[timestamps.length - 1] ?? dateNow,
    dateNow,
    producerId: Long.fromValue(rng() < 0.3 ? -1 : Math.floor(rng() * 1e12)),
    producerEpoch: Math.floor(rng() * 100),
    firstSequence: Math.floor(rng() * 2 ** 31),
    transactional: rng() < 0.3,
  };
}

describe('kafkajs CRC32C, eight bytes a step', () => {
  it("gives the check value and the bytewise table's checksum at every length and alignment", () => {
    expect(crc32C(Buffer.from('123456789')).toString(16)).toBe('e3069283');
    const rng = mulberry32(7);
    const big = bytesOf(rng, 1);
    expect(crc32C(big)).toBe(crc32C.bytewise(big));
    const source = Buffer.from(Array.from({ length: 4200 }, () => rng() * 256));
    for (let length = 0; length < 300; length++)
      for (const start of [0, 1, 3, 7]) {
        const b = source.subarray(start, start + length);
        expect(crc32C(b)).toBe(crc32C.bytewise(b));
      }
    expect(crc32C(source)).toBe(crc32C.bytewise(source));
  });
});

describe('kafkajs produce record batches written in one pass', () => {
  it("writes kafkajs' own bytes for 400 random partitions (keys, values, headers, timestamps, producer fields)", async () => {
    const rng = mulberry32(20261201);
    for (let i = 0; i < 400; i++) {
      const args = randomArgs(rng);
      const fast = encodePartition(args);
      expect(fast).not.toBeNull();
      expect(fast!.buffer.toString('hex')).toBe((await generic(args)).toString('hex'));
    }
  });

  it('leaves to the generic path what it cannot write exactly, and a whole request comes out the same either way', async () => {
    const base = { partition: 0, dateNow: 1_700_000_000_000, producerId: Long.fromValue(-1), producerEpoch: 0 };
    const at = { firstTimestamp: 1_700_000_000_000, maxTimestamp: 1_700_000_000_000, firstSequence: 0 };
    const cases: Message[][] = [
      [{ key: 'k', value: 42 }], // a number value: kafkajs' generic path decides what happens
      [{ key: 'k', value: 'v', headers: { h: null } }],
      [{ key: 'k', value: 'v', headers: 'not an object' }],
      [{ key: 'k', value: 'v', timestamp: 1 }], // a delta of -1.7e12 ms: past 32 bits
    ];
    for (const messages of cases)
      expect(encodePartition({ ...base, ...at, messages, transactional: false })).toBeNull();

    // Through the produce request: one topic of an exact partition and one the generic path takes (the delta).
    const request = {
      acks: -1,
      timeout: 30000,
      topicData: [
        {
          topic: 'telemetry.raw',
          partitions: [
            { partition: 0, firstSequence: 5, messages: [{ key: 'd-1', value: Buffer.from('{"a":1}') }] },
            { partition: 1, firstSequence: 0, messages: [{ key: 'd-2', value: 'x', timestamp: 1 }, { value: 'y' }] },
          ],
        },
      ],
    };
    const realNow = Date.now;
    Date.now = () => 1_700_000_000_000;
    try {
      const bytes = (await produceV3(request).encode()).buffer;
      const expected = new Encoder() as unknown as {
        writeString(s: string | null): typeof expected;
        writeInt16(v: number): typeof expected;
        writeInt32(v: number): typeof expected;
        writeBuffer(b: Buffer): typeof expected;
        buffer: Buffer;
      };
      expected
        .writeString(null)
        .writeInt16(-1)
        .writeInt32(30000)
        .writeInt32(1)
        .writeString('telemetry.raw')
        .writeInt32(2);
      for (const p of request.topicData[0]!.partitions) {
        const stamps = p.messages.map((m) => (m as Message).timestamp).filter((t) => t != null);
        expected.writeBuffer(
          await generic({
            ...base,
            partition: p.partition,
            messages: p.messages,
            firstTimestamp: stamps[0] ?? base.dateNow,
            maxTimestamp: stamps[stamps.length - 1] ?? base.dateNow,
            firstSequence: p.firstSequence,
            transactional: false,
          }),
        );
      }
      expect(bytes.toString('hex')).toBe(expected.buffer.toString('hex'));
    } finally {
      Date.now = realNow;
    }
  });
});

describe("kafkajs' checksum through the addon (useNativeChecksum)", () => {
  afterEach(() => kafkajsCrc32C.use());

  it('is what kafkajs calls for each record batch, and writes the same bytes as its JavaScript tables', () => {
    const rng = mulberry32(99);
    const args = Array.from({ length: 50 }, () => randomArgs(rng));
    const javascript = args.map((a) => encodePartition(a)!.buffer.toString('hex'));
    expect(useNativeChecksum()).toBe('native');
    let calls = 0;
    kafkajsCrc32C.use((b: Buffer) => (calls++, nativeCrc32c!(b)));
    expect(args.map((a) => encodePartition(a)!.buffer.toString('hex'))).toEqual(javascript);
    expect(calls).toBe(args.length);
    // And on its own, at every length and alignment.
    const source = Buffer.from(Array.from({ length: 1200 }, () => rng() * 256));
    for (let length = 0; length < 300; length++)
      for (const start of [0, 1, 5]) {
        const b = source.subarray(start, start + length);
        expect(nativeCrc32c!(b)).toBe(crc32C.bytewise(b));
      }
  });
});
