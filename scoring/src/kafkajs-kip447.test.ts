/**
 * The KIP-447 requests patches/kafkajs+2.2.4.patch adds to kafkajs, byte for byte against the Kafka protocol schemas
 * (kafka-clients' common/message/TxnOffsetCommitRequest.json, OffsetFetchRequest.json and their responses):
 * TxnOffsetCommit v3 (flexible; generation, member id, group instance id, committed leader epoch) and OffsetFetch
 * v6/v7 (flexible; require_stable from v7).
 */
import { createRequire } from 'node:module';

interface Request {
  apiKey: number;
  apiVersion: number;
  encode(): Promise<{ buffer: Buffer }>;
}
interface Response {
  decode(raw: Buffer): Promise<unknown>;
  parse(data: unknown): Promise<unknown>;
}
type Protocol = (o: { version: number }) => (args: Record<string, unknown>) => { request: Request; response: Response };

const kafkajs = createRequire(require.resolve('kafkajs'));
const txnOffsetCommit = kafkajs('./src/protocol/requests/txnOffsetCommit') as {
  versions: string[];
  protocol: Protocol;
};
const offsetFetch = kafkajs('./src/protocol/requests/offsetFetch') as { versions: string[]; protocol: Protocol };

const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex');
const encoded = async (r: Request) => (await r.encode()).buffer.toString('hex');
/** A compact string: its length + 1 as an unsigned varint (all below 127 here), then its bytes. */
const compact = (s: string) => (s.length + 1).toString(16).padStart(2, '0') + Buffer.from(s).toString('hex');

const topics = [{ topic: 'x', partitions: [{ partition: 0, offset: '10' }] }];

describe('TxnOffsetCommit', () => {
  test('versions 0 to 3, contiguous (kafkajs takes the highest both sides support)', () => {
    expect(txnOffsetCommit.versions).toEqual(['0', '1', '2', '3']);
  });

  test('v3 carries the generation and member id, compact and tagged', async () => {
    const { request } = txnOffsetCommit.protocol({ version: 3 })({
      transactionalId: 't',
      groupId: 'g',
      producerId: 1,
      producerEpoch: 2,
      generationId: 5,
      memberId: 'm',
      topics,
    });
    expect([request.apiKey, request.apiVersion]).toEqual([28, 3]);
    expect(await encoded(request)).toBe(
      [
        '00', // request header tagged fields (header v2)
        compact('t'),
        compact('g'),
        '0000000000000001', // producer_id
        '0002', // producer_epoch
        '00000005', // generation_id
        compact('m'),
        '00', // group_instance_id: null
        '02', // 1 topic
        compact('x'),
        '02', // 1 partition
        '00000000', // partition_index
        '000000000000000a', // committed_offset
        'ffffffff', // committed_leader_epoch: -1
        '00', // committed_metadata: null
        '00', // partition tagged fields
        '00', // topic tagged fields
        '00', // request tagged fields
      ].join(''),
    );
  });

  test('v3 without consumer group metadata sends the defaults: the broker checks no generation', async () => {
    const { request } = txnOffsetCommit.protocol({ version: 3 })({
      transactionalId: 't',
      groupId: 'g',
      producerId: 1,
      producerEpoch: 2,
      topics,
    });
    // generation_id -1, member_id "", group_instance_id null
    expect(await encoded(request)).toContain(`0002ffffffff${compact('')}00`);
  });

  test('v2 adds the committed leader epoch to v1', async () => {
    const { request } = txnOffsetCommit.protocol({ version: 2 })({
      transactionalId: 't',
      groupId: 'g',
      producerId: 1,
      producerEpoch: 2,
      topics,
    });
    expect(await encoded(request)).toBe(
      '0001' +
        '74' +
        '0001' +
        '67' +
        '0000000000000001' +
        '0002' +
        '00000001' +
        '0001' +
        '78' +
        '00000001' +
        '00000000' +
        '000000000000000a' +
        'ffffffff' +
        'ffff',
    );
  });

  test('an older version refuses consumer group metadata it cannot carry (no silent unfenced commit)', () => {
    for (const version of [0, 1, 2])
      expect(() =>
        txnOffsetCommit.protocol({ version })({
          transactionalId: 't',
          groupId: 'g',
          producerId: 1,
          producerEpoch: 2,
          generationId: 5,
          memberId: 'm',
          topics,
        }),
      ).toThrow(/KIP-447/);
  });

  test('the v3 response decodes, and a fenced commit is the protocol error', async () => {
    const { response } = txnOffsetCommit.protocol({ version: 3 })({ topics });
    // header tags, throttle 7 ms, 1 topic "x", 1 partition 0 with error 22 (ILLEGAL_GENERATION), tags at each level
    const raw = hex(`00 00000007 02 ${compact('x')} 02 00000000 0016 00 00 00`);
    const data = await response.decode(raw);
    expect(data).toEqual({
      throttleTime: 0,
      clientSideThrottleTime: 7,
      topics: [{ topic: 'x', partitions: [{ partition: 0, errorCode: 22 }] }],
    });
    await expect(response.parse(data)).rejects.toMatchObject({
      name: 'KafkaJSProtocolError',
      type: 'ILLEGAL_GENERATION',
    });
    const ok = await response.decode(hex(`00 00000000 02 ${compact('x')} 02 00000000 0000 00 00 00`));
    await expect(response.parse(ok)).resolves.toBe(ok);
  });
});

describe('OffsetFetch', () => {
  test('versions 1 to 7, contiguous', () => {
    expect(offsetFetch.versions).toEqual(['1', '2', '3', '4', '5', '6', '7']);
  });

  test('v7 asks for stable offsets, compact and tagged', async () => {
    const { request } = offsetFetch.protocol({ version: 7 })({
      groupId: 'g',
      topics: [{ topic: 'x', partitions: [{ partition: 0 }, { partition: 2 }] }],
      requireStable: true,
    });
    expect([request.apiKey, request.apiVersion]).toEqual([9, 7]);
    expect(await encoded(request)).toBe(
      [
        '00', // request header tagged fields
        compact('g'),
        '02', // 1 topic
        compact('x'),
        '03', // 2 partition indexes
        '00000000',
        '00000002',
        '00', // topic tagged fields
        '01', // require_stable
        '00', // request tagged fields
      ].join(''),
    );
  });

  test('v6 has no require_stable; no topics is every topic (null), as in v2 to v5', async () => {
    const { request } = offsetFetch.protocol({ version: 6 })({ groupId: 'g', topics: [] });
    expect(await encoded(request)).toBe(`00${compact('g')}0000`);
    const v7 = offsetFetch.protocol({ version: 7 })({ groupId: 'g', topics: [] });
    expect(await encoded(v7.request)).toBe(`00${compact('g')}000000`);
  });

  test('the v7 response decodes; an offset pending in a transaction is UNSTABLE_OFFSET_COMMIT, retriable', async () => {
    const { response } = offsetFetch.protocol({ version: 7 })({ groupId: 'g', topics: [] });
    const partition = (index: string, offset: string, error: string) =>
      `${index} ${offset} ffffffff ${compact('')} ${error} 00`;
    const raw = hex(
      `00 00000000 02 ${compact('x')} 03 ${partition('00000000', '000000000000002a', '0000')} ` +
        `${partition('00000001', 'ffffffffffffffff', '0058')} 00 0000 00`,
    );
    const data = await response.decode(raw);
    expect(data).toEqual({
      throttleTime: 0,
      clientSideThrottleTime: 0,
      errorCode: 0,
      responses: [
        {
          topic: 'x',
          partitions: [
            { partition: 0, offset: '42', leaderEpoch: -1, metadata: '', errorCode: 0 },
            { partition: 1, offset: '-1', leaderEpoch: -1, metadata: '', errorCode: 88 },
          ],
        },
      ],
    });
    await expect(response.parse(data)).rejects.toMatchObject({ type: 'UNSTABLE_OFFSET_COMMIT', retriable: true });
  });

  test('the v5 response carries the leader epoch', async () => {
    const { response } = offsetFetch.protocol({ version: 5 })({ groupId: 'g', topics: [] });
    const raw = hex('00000000 00000001 0001 78 00000001 00000003 0000000000000005 00000002 ffff 0000 0000');
    expect(await response.decode(raw)).toEqual({
      throttleTime: 0,
      clientSideThrottleTime: 0,
      errorCode: 0,
      responses: [
        { topic: 'x', partitions: [{ partition: 3, offset: '5', leaderEpoch: 2, metadata: null, errorCode: 0 }] },
      ],
    });
  });
});
