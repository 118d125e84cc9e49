/**
 * The scoring service: metrics.aggregates (group fleetpulse-scoring, autoCommit off) -> Scorer -> anomaly.scores
 * (+ Cassandra), with the model folder watched and /healthz, /readyz, /metrics, /api/models on one port.
 * Offsets are committed only after the scores they imply are out; a window still waiting for features pins the
 * offset of its first row. A crash re-reads from there (at-least-once); a model swap never loses or repeats a score.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { AggregateRow, AnomalyScore } from '@fleetpulse/contracts';
import { Client } from 'cassandra-driver';
import { Kafka, logLevel, Partitioners, type Consumer, type Producer } from 'kafkajs';
import type { ScoringConfig } from './config';
import { ScoringMetrics } from './metrics';
import { ModelRegistry, type ModelStatus } from './models';
import { Scorer, type RowIn, type ScoreSink } from './scorer';
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

function parseRow(v: Buffer | null): AggregateRow | null {
  if (!v) return null;
  try {
    const r = JSON.parse(v.toString('utf8')) as Partial<AggregateRow>;
    if (typeof r.deviceId !== 'string' || typeof r.metric !== 'string' || typeof r.resolution !== 'string') return null;
    if (typeof r.windowStart !== 'number') return null;
    return r as AggregateRow;
  } catch {
    return null;
  }
}

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
  const scorer = new Scorer(registry, sink, {
    maxBatch: config.maxBatch,
    maxWaitMs: config.maxWaitMs,
    log,
    metrics,
  });

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
      const t0 = performance.now();
      const rows: RowIn[] = [];
      for (const m of batch.messages) {
        const row = parseRow(m.value);
        if (row) rows.push({ partition: batch.partition, offset: BigInt(m.offset), row });
        else log(`skipping unreadable record ${batch.topic}[${batch.partition}]@${m.offset}`);
      }
      await scorer.locked(async () => {
        await scorer.ingest(rows);
        // Unreadable records advance the position too.
        const last = batch.messages.at(-1);
        if (last && rows.length < batch.messages.length && rows.at(-1)?.offset !== BigInt(last.offset)) {
          await scorer.ingest([]);
        }
        await commit([batch.partition]);
      });
      metrics.batchSeconds.observe((performance.now() - t0) / 1000);
      await heartbeat();
    },
  });
  consuming = true;
  const tick = setInterval(() => {
    void scorer
      .locked(async () => {
        await scorer.expire();
        await commit(scorer.partitions());
      })
      .catch((e: unknown) => log(`tick: ${e instanceof Error ? e.message : String(e)}`));
  }, config.tickMs);
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
      clearInterval(tick);
      watcher.close();
      await consumer.stop();
      // Windows still waiting stay uncommitted: the next run re-reads them.
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
