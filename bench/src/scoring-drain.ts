/**
 * The scoring service draining a pre-filled topic of window records through Kafka, with a step's scores and offsets
 * in one transaction (exactly once, the default) and without (FLEETPULSE_SCORING_TRANSACTIONS=off: scores, then the
 * commit), taking turns round after round: what exactly once costs the service, end to end (bench/README.md).
 */
import { mkdtempSync, copyFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { cassandraContactPoint, kafkaBrokers } from '@fleetpulse/compose';
import { loadConfig, startScoring } from '@fleetpulse/scoring';
import { simulateAggregates } from '@fleetpulse/scoring/testing';
import { Kafka, logLevel, type Admin } from 'kafkajs';
import { sleep } from '@fleetpulse/runtime';

export interface BenchScoringDrainOptions {
  /** Devices x 10 s windows of the default resolution: records = devices x minutes x 6. [300 devices, 60 min] */
  devices?: number;
  minutes?: number;
  /** Rounds of the two modes, alternating. [2] */
  rounds?: number;
  partitions?: number;
  log?: (line: string) => void;
}

export interface DrainRun {
  transactions: boolean;
  records: number;
  seconds: number;
  recordsPerSec: number;
}

export interface BenchScoringDrainResult {
  records: number;
  runs: DrainRun[];
  /** Median records/s per mode. */
  transactional: number;
  atLeastOnce: number;
}

const root = join(__dirname, '..', '..');

async function anyCommitted(admin: Admin, group: string, topic: string): Promise<boolean> {
  const [committed] = await admin.fetchOffsets({ groupId: group, topics: [topic] });
  return committed!.partitions.some((p) => p.offset !== '-1');
}

async function committedTo(admin: Admin, group: string, topic: string, ends: Map<number, string>): Promise<boolean> {
  const [committed] = await admin.fetchOffsets({ groupId: group, topics: [topic] });
  return committed!.partitions.every((p) => p.offset === ends.get(p.partition));
}

export async function benchScoringDrain(opts: BenchScoringDrainOptions = {}): Promise<BenchScoringDrainResult> {
  const log = opts.log ?? ((l: string) => console.error(l));
  const devices = opts.devices ?? 300;
  const minutes = opts.minutes ?? 60;
  const rounds = opts.rounds ?? 2;
  const partitions = opts.partitions ?? 6;
  const kafka = new Kafka({ clientId: 'bench-scoring-drain', brokers: kafkaBrokers(), logLevel: logLevel.NOTHING });
  const admin = kafka.admin();
  await admin.connect();
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  const stamp = randomUUID().slice(0, 8);
  const source = `bench-drain-src-${stamp}`;
  const models = mkdtempSync(join(tmpdir(), 'bench-drain-models-'));
  copyFileSync(join(root, 'scoring', 'models', 'iforest.onnx'), join(models, 'iforest.onnx'));
  copyFileSync(join(root, 'scoring', 'models', 'iforest.json'), join(models, 'iforest.json'));
  const topics = [source];
  const runs: DrainRun[] = [];
  try {
    await admin.createTopics({ topics: [{ topic: source, numPartitions: partitions }], waitForLeaders: true });
    const { records } = simulateAggregates({ devices, durationMs: minutes * 60_000, devicePrefix: `drain-${stamp}-` });
    for (let i = 0; i < records.length; i += 2000)
      await producer.send({
        topic: source,
        acks: -1,
        messages: records.slice(i, i + 2000).map((r) => ({ key: r.deviceId, value: JSON.stringify(r) })),
      });
    const ends = new Map((await admin.fetchTopicOffsets(source)).map((o) => [o.partition, o.high]));
    log(`scoring drain: ${records.length} window records on ${source} (${partitions} partitions)`);
    for (let round = 0; round < rounds; round++)
      for (const transactions of round % 2 === 0 ? [true, false] : [false, true]) {
        const scores = `bench-drain-scores-${stamp}-${runs.length}`;
        topics.push(scores);
        await admin.createTopics({ topics: [{ topic: scores, numPartitions: partitions }], waitForLeaders: true });
        const group = `bench-drain-${stamp}-${runs.length}`;
        const config = loadConfig({
          MODELS_DIR: models,
          FLEETPULSE_KAFKA_BROKERS: kafkaBrokers().join(','),
          FLEETPULSE_CASSANDRA_CONTACT_POINTS: cassandraContactPoint(),
          FLEETPULSE_SCORING_GROUP: group,
          FLEETPULSE_SCORING_SOURCE_TOPIC: source,
          FLEETPULSE_SCORING_SCORES_TOPIC: scores,
          FLEETPULSE_SCORING_PORT: '0',
          FLEETPULSE_SCORING_HOST: '127.0.0.1',
          FLEETPULSE_SCORING_TRANSACTIONS: transactions ? 'on' : 'off',
        });
        const service = await startScoring(config, () => undefined);
        let started = 0;
        let seconds = 0;
        try {
          // From the first commit (the service up, its models loaded, a step done) to the last.
          while (!(await anyCommitted(admin, group, source))) await sleep(20);
          started = performance.now();
          while (!(await committedTo(admin, group, source, ends))) await sleep(50);
          seconds = (performance.now() - started) / 1000;
        } finally {
          await service.close();
        }
        const run = { transactions, records: records.length, seconds, recordsPerSec: records.length / seconds };
        runs.push(run);
        log(
          `scoring drain: transactions ${transactions ? 'on ' : 'off'}: ${Math.round(run.recordsPerSec)} records/s (${seconds.toFixed(1)} s)`,
        );
      }
    const median = (xs: number[]) => {
      const s = [...xs].sort((a, b) => a - b);
      return (s[Math.floor((s.length - 1) / 2)]! + s[Math.ceil((s.length - 1) / 2)]!) / 2;
    };
    return {
      records: runs[0]?.records ?? 0,
      runs,
      transactional: median(runs.filter((r) => r.transactions).map((r) => r.recordsPerSec)),
      atLeastOnce: median(runs.filter((r) => !r.transactions).map((r) => r.recordsPerSec)),
    };
  } finally {
    await admin.deleteTopics({ topics }).catch(() => undefined);
    await Promise.allSettled([producer.disconnect(), admin.disconnect()]);
    rmSync(models, { recursive: true, force: true });
  }
}
