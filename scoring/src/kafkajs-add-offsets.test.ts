/**
 * patches/kafkajs+2.2.4.patch retries AddOffsetsToTxn as the Java client does. Right after a commit the transaction
 * coordinator answers CONCURRENT_TRANSACTIONS until the previous transaction's markers are written; kafkajs gave up
 * at once, so scoring aborted that step and read and scored it again (hundreds of times a minute under `npm start`).
 * It also gives kafkajs' TxnOffsetCommit retries the error names kafkajs uses (they named the Java client's, which
 * never matched): a group coordinator moving no longer fails the step.
 */
import { createRequire } from 'node:module';

const kafkajs = createRequire(require.resolve('kafkajs'));
const createEosManager = kafkajs('./src/producer/eosManager') as (o: object) => {
  initProducerId(): Promise<void>;
  beginTransaction(): void;
  sendOffsets(o: object): Promise<void>;
};
const { KafkaJSProtocolError } = kafkajs('./src/errors') as { KafkaJSProtocolError: new (e: object) => Error };
const { createErrorFromCode } = kafkajs('./src/protocol/error') as { createErrorFromCode: (code: number) => object };

const ignore = (): undefined => undefined;
const silent = { debug: ignore, info: ignore, warn: ignore, error: ignore };

/**
 * A transactional EosManager over a fake coordinator whose AddOffsetsToTxn answers `answers` in turn, then OK, and
 * whose TxnOffsetCommit answers `commitAnswers` so.
 */
async function transactionSendingOffsets(answers: number[], commitAnswers: number[] = []) {
  const calls = { addOffsets: 0, txnOffsetCommit: 0, coordinatorLookups: 0 };
  const broker = {
    initProducerId: async () => ({ producerId: 7, producerEpoch: 0 }),
    addOffsetsToTxn: async () => {
      const code = answers[calls.addOffsets++];
      if (code !== undefined) throw new KafkaJSProtocolError(createErrorFromCode(code));
    },
    txnOffsetCommit: async () => {
      const code = commitAnswers[calls.txnOffsetCommit++];
      if (code !== undefined) throw new KafkaJSProtocolError(createErrorFromCode(code));
    },
  };
  const cluster = {
    retry: { retries: 5, initialRetryTime: 300 },
    refreshMetadataIfNecessary: async () => undefined,
    findGroupCoordinator: async () => {
      calls.coordinatorLookups++;
      return broker;
    },
  };
  const eos = createEosManager({ logger: silent, cluster, transactional: true, transactionalId: 'scoring-0' });
  await eos.initProducerId();
  eos.beginTransaction();
  const sent = eos.sendOffsets({
    consumerGroupId: 'fleetpulse-scoring',
    topics: [{ topic: 'metrics.aggregates', partitions: [{ partition: 0, offset: '42' }] }],
  });
  return { sent, calls };
}

describe('kafkajs AddOffsetsToTxn, retried', () => {
  it('retries CONCURRENT_TRANSACTIONS (51) and GROUP_LOAD_IN_PROGRESS (14), then commits the offsets', async () => {
    const { sent, calls } = await transactionSendingOffsets([51, 51, 14, 51]);
    await sent;
    expect(calls.addOffsets).toBe(5);
    expect(calls.txnOffsetCommit).toBe(1);
  });

  it('looks the coordinator up again after NOT_COORDINATOR (16)', async () => {
    const { sent, calls } = await transactionSendingOffsets([16]);
    await sent;
    expect(calls.addOffsets).toBe(2);
    // initProducerId, sendOffsets, the retry's lookup, the group coordinator for the offsets
    expect(calls.coordinatorLookups).toBe(4);
  });

  it('gives up at once on an error that retrying cannot fix (INVALID_PRODUCER_EPOCH, 47)', async () => {
    const { sent, calls } = await transactionSendingOffsets([47, 47]);
    await expect(sent).rejects.toMatchObject({ type: 'INVALID_PRODUCER_EPOCH' });
    expect(calls.addOffsets).toBe(1);
    expect(calls.txnOffsetCommit).toBe(0);
  });
});

describe('kafkajs TxnOffsetCommit, retried under the names kafkajs gives the errors', () => {
  it('retries GROUP_LOAD_IN_PROGRESS (14)', async () => {
    const { sent, calls } = await transactionSendingOffsets([], [14, 14]);
    await sent;
    expect(calls.txnOffsetCommit).toBe(3);
  });

  it('looks the group coordinator up again after NOT_COORDINATOR (16) and COORDINATOR_NOT_AVAILABLE (15)', async () => {
    const { sent, calls } = await transactionSendingOffsets([], [16, 15]);
    await sent;
    expect(calls.txnOffsetCommit).toBe(3);
    // initProducerId, sendOffsets' transaction coordinator and group coordinator, then one lookup a retry
    expect(calls.coordinatorLookups).toBe(5);
  });
});

describe('kafkajs AddOffsetsToTxn answers, not logged by the connection', () => {
  it('asks the connection not to log its error answers (the EosManager retries or rethrows them)', () => {
    const addOffsetsToTxn = kafkajs('./src/protocol/requests/addOffsetsToTxn') as {
      versions: string[];
      protocol: (o: { version: number }) => (args: object) => { logResponseError?: boolean };
    };
    expect(addOffsetsToTxn.versions).toEqual(['0', '1']);
    for (const version of [0, 1])
      expect(
        addOffsetsToTxn.protocol({ version })({ transactionalId: 't', producerId: 1, producerEpoch: 0, groupId: 'g' })
          .logResponseError,
      ).toBe(false);
  });
});
