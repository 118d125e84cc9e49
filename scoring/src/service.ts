/**
 * The scoring service: window records from metrics.aggregates (group fleetpulse-scoring, autoCommit off) -> Scorer ->
 * anomaly.scores (+ Cassandra), with the model folder watched and /healthz, /readyz, /metrics, /api/models on one
 * port. A batch's offsets are committed only after the scores it implies are out; a crash re-reads from there
 * (at-least-once); a model swap never loses or repeats a score. A record that is not a window record is counted,
 * logged with its topic, partition and offset, and passed over.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { AnomalyScore } from '@fleetpulse/contracts';
import { Client } from 'cassandra-driver';
import { Kafka, logLevel, Partitioners, type Consumer, type Producer } from 'kafkajs';
import type { ScoringConfig } from './config';
import { ScoringMetrics } from './metrics';
import { ModelRegistry, type ModelStatus } from './models';
import { InvalidRecord, parseWindowRecord } from './features';
import { Scorer, type RecordIn, type ScoreSink } from './scorer';
import { SessionHost } from './session-host';
import { AnomalyStore } from './store';
import { FolderWatcher } from './watcher';

export interface RunningScoring {
  port: number;
  registry: ModelRegistry;
  host: SessionHost;
  watcher: FolderWatcher;
  metrics: ScoringMetrics;
  models(): ModelStatus[];
  close(): Promise<void>;
}

/** Unreadable records logged one by one per batch; the rest of the batch's are summed up in one line. */
const InvalidLoggedPerBatch = 10;

export async function startScoring(
  config: ScoringConfig,
  log: (line: string) => void = (l) => console.log(`scoring: ${l}`),
): Promise<RunningScoring> {
  const metrics = new ScoringMetrics();
  const host = new SessionHost({
    intraOpThreads: config.intraOpThreads,
    recycleAfterLoads: config.recycleAfterLoads,
    recycleRssBytes: config.recycleRssBytes,
    log,
  });
  const registry = new ModelRegistry(host, log, {
    loaded: (m, ms) => {
      metrics.loads.inc({ model: m.name, result: 'ok' });
      metrics.loadSeconds.observe(ms / 1000);
      metrics.active.set(registry.snapshot().size);
    },
    rejected: (name) => metrics.loads.inc({ model: name, result: 'rejected' }),
    unloaded: () => metrics.active.set(registry.snapshot().size),
  });
  const watcher = new FolderWatcher(
    config.modelsDir,
    {
      change: (name, f) => registry.upsert(name, f.onnx, f.sidecar),
      remove: (name) => registry.remove(name),
      error: (e) => log(`watching ${config.modelsDir}: ${e.message}`),
    },
    { settleMs: config.settleMs, rescanMs: config.rescanMs },
  );

  let cassandra: Client | null = null;
  let store: AnomalyStore | null = null;
  if (config.storeAnomalies) {
    cassandra = new Client({
      contactPoints: config.cassandraContactPoints,
      localDataCenter: config.cassandraDataCenter,
    });
    await cassandra.connect().catch((e: unknown) => {
      throw new Error(
        `cannot connect to Cassandra at ${config.cassandraContactPoints.join(',')}: ${e instanceof Error ? e.message : String(e)}`,
        { cause: e },
      );
    });
    store = new AnomalyStore(cassandra, config.keyspace, log);
  }

  const kafka = new Kafka({ clientId: 'fleetpulse-scoring', brokers: config.kafkaBrokers, logLevel: logLevel.WARN });
  const producer: Producer = kafka.producer({
    idempotent: true,
    maxInFlightRequests: 1,
    createPartitioner: Partitioners.DefaultPartitioner,
  });
  const consumer: Consumer = kafka.consumer({
    groupId: config.groupId,
    sessionTimeout: config.sessionTimeoutMs,
    allowAutoTopicCreation: false,
  });
  const sink: ScoreSink = {
    deliver: async (scores: AnomalyScore[]) => {
      await producer.send({
        topic: config.scoresTopic,
        acks: -1,
        messages: scores.map((s) => ({ key: s.deviceId, value: JSON.stringify(s) })),
      });
      const anomalous = scores.filter((s) => s.anomalous);
      if (store && anomalous.length > 0) await store.writeAll(anomalous);
    },
  };
  const scorer = new Scorer(registry, sink, { maxBatch: config.maxBatch, log, metrics });
  for (const line of config.ignored) log(line);

  const committed = new Map<number, bigint>();
  const commit = async (partitions: Iterable<number>) => {
    const offsets: { topic: string; partition: number; offset: string }[] = [];
    for (const p of partitions) {
      const o = scorer.commitOffset(p);
      if (o === null || committed.get(p) === o) continue;
      offsets.push({ topic: config.sourceTopic, partition: p, offset: o.toString() });
    }
    if (offsets.length === 0) return;
    await consumer.commitOffsets(offsets);
    for (const o of offsets) committed.set(o.partition, BigInt(o.offset));
  };

  let consuming = false;
  let closing = false;
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    const json = (code: number, body: unknown) => {
      res.writeHead(code, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    if (path === '/healthz') return json(200, { status: 'ok' });
    if (path === '/readyz') {
      const kafkaOk = consuming;
      const cassandraOk = cassandra === null || cassandra.getState().getConnectedHosts().length > 0;
      const models = registry.snapshot().size;
      const ok = kafkaOk && cassandraOk && !closing;
      return json(ok ? 200 : 503, {
        status: ok ? 'ready' : 'not ready',
        kafka: kafkaOk ? 'up' : 'down',
        cassandra: cassandra === null ? 'disabled' : cassandraOk ? 'up' : 'down',
        models,
      });
    }
    // /models is what the dashboard proxies; /api/models matches the dashboard's own route.
    if (path === '/api/models' || path === '/models') return json(200, registry.status());
    if (path === '/metrics') {
      metrics.hostRss.set(0);
      void host
        .childRss()
        .then((rss) => metrics.hostRss.set(rss))
        .then(() => metrics.text())
        .then(
          (text) => {
            res.writeHead(200, { 'content-type': metrics.registry.contentType });
            res.end(text);
          },
          (e: unknown) => json(500, { error: String(e) }),
        );
      return;
    }
    json(404, { error: 'not found' });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.httpPort, config.httpHost, () => resolve());
  });
  const port = (server.address() as AddressInfo).port;

  await watcher.start();
  const status = registry.status();
  log(
    `models in ${config.modelsDir}: ${
      status
        .filter((s) => s.active)
        .map((s) => `${s.name} v${s.active!.version}`)
        .join(', ') || 'none'
    }` +
      (status.some((s) => s.lastError)
        ? `; rejected: ${status
            .filter((s) => s.lastError)
            .map((s) => s.name)
            .join(', ')}`
        : ''),
  );

  await producer.connect();
  await consumer.connect();
  consumer.on(consumer.events.GROUP_JOIN, (e) => {
    const assigned = new Set(e.payload.memberAssignment[config.sourceTopic] ?? []);
    void scorer.locked(async () => {
      for (const p of scorer.partitions())
        if (!assigned.has(p)) {
          scorer.dropPartition(p);
          committed.delete(p);
        }
      await Promise.resolve();
    });
  });
  await consumer.subscribe({ topic: config.sourceTopic, fromBeginning: true });
  await consumer.run({
    autoCommit: false,
    partitionsConsumedConcurrently: 1,
    eachBatch: async ({ batch, heartbeat, isRunning, isStale }) => {
      if (!isRunning() || isStale()) return;
      const last = batch.messages.at(-1);
      if (!last) return;
      const t0 = performance.now();
      const records: RecordIn[] = [];
      const invalid: string[] = [];
      for (const m of batch.messages) {
        try {
          records.push({ partition: batch.partition, offset: BigInt(m.offset), record: parseWindowRecord(m.value) });
        } catch (e) {
          if (!(e instanceof InvalidRecord)) throw e;
          metrics.invalid.inc({ reason: e.reason });
          if (invalid.length < InvalidLoggedPerBatch)
            log(`skipping ${batch.topic}[${batch.partition}]@${m.offset}: not a window record: ${e.message}`);
          invalid.push(m.offset);
        }
      }
      if (invalid.length > InvalidLoggedPerBatch)
        log(
          `skipping ${invalid.length - InvalidLoggedPerBatch} more records of ${batch.topic}[${batch.partition}] ` +
            `that are not window records, up to @${invalid.at(-1)}`,
        );
      await scorer.locked(async () => {
        await scorer.ingest(records);
        // Records that are not window records (and non-final ones) move the position too, once the scores of every
        // record before them are out.
        scorer.advance(batch.partition, BigInt(last.offset) + 1n);
        await commit([batch.partition]);
      });
      metrics.batchSeconds.observe((performance.now() - t0) / 1000);
      await heartbeat();
    },
  });
  consuming = true;
  log(`consuming ${config.sourceTopic} as ${config.groupId}; scores to ${config.scoresTopic}; http on :${port}`);

  return {
    port,
    registry,
    host,
    watcher,
    metrics,
    models: () => registry.status(),
    close: async () => {
      closing = true;
      watcher.close();
      await consumer.stop();
      await consumer.disconnect();
      await producer.disconnect();
      store?.stop();
      await cassandra?.shutdown();
      await host.close();
      metrics.close();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}
