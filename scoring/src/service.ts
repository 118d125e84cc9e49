/**
 * The scoring service's composition root: window records from metrics.aggregates (consumer.ts) -> Scorer (router.ts:
 * which model scores which record) -> anomaly.scores + Cassandra (score-sink.ts), with the model folder watched
 * (watcher.ts -> models.ts, sessions in a child process: session-host.ts) and /healthz, /readyz, /metrics,
 * /api/models on one port. Only wiring and the order of start and stop live here.
 */
import type { Server } from 'node:http';
import { firstLine } from '@fleetpulse/runtime';
import { cassandraClientOptions } from '@fleetpulse/runtime/cassandra';
import { startOpsServer } from '@fleetpulse/runtime/metrics';
import { Tracing } from '@fleetpulse/runtime/tracing';
import { Client } from 'cassandra-driver';
import { Kafka, logLevel } from 'kafkajs';
import type { ScoringConfig } from './config';
import { WindowConsumer } from './consumer';
import { ScoringMetrics } from './metrics';
import { ModelRegistry, type ModelStatus } from './models';
import { Scorer } from './scorer';
import { RecentWindows } from './repeats';
import { scoreSink } from './score-sink';
import { SessionHost } from './session-host';
import { stepOutput, type StepOutput } from './step-output';
import { AnomalyStore } from './store';
import { StepTrace } from './tracing';
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

/** Tests' seams: hold a step (its output wrapped), and a shorter rebalance timeout than kafkajs' 60 s. */
export interface ScoringTestHooks {
  wrapOutput?: (output: StepOutput) => StepOutput;
  rebalanceTimeoutMs?: number;
}

/** Cassandra could not be reached at start-up (only when anomalies are stored). */
export class StoreUnavailable extends Error {
  override readonly name = 'StoreUnavailable';
}

export async function startScoring(
  config: ScoringConfig,
  log: (line: string) => void = (l) => console.log(`scoring: ${l}`),
  /** Tests' tracing (an in-memory exporter); by default what config.tracing says. */
  tracingOverride?: Tracing,
  hooks: ScoringTestHooks = {},
): Promise<RunningScoring> {
  const metrics = new ScoringMetrics();
  const tracing = tracingOverride ?? (await Tracing.start('fleetpulse-scoring', config.tracing));
  if (tracing && !tracingOverride)
    log(`traces to ${config.tracing.endpoint} (new traces sampled at ${config.tracing.sampleRatio})`);
  const steps = new StepTrace(tracing, metrics);
  const host = new SessionHost({
    intraOpThreads: config.intraOpThreads,
    recycleAfterLoads: config.recycleAfterLoads,
    recycleRssBytes: config.recycleRssBytes,
    log,
  });
  metrics.sampleHostRss(() => host.childRss());
  const counts = () => {
    metrics.active.set(registry.snapshot().size);
    metrics.quarantined.set(registry.quarantined().size);
  };
  const registry = new ModelRegistry(host, {
    dir: config.modelsDir,
    log,
    maxModelBytes: config.maxModelBytes,
    quarantineCrashes: config.quarantineCrashes,
    quarantineWindowMs: config.quarantineWindowMs,
    events: {
      loaded: (m, ms) => {
        metrics.loads.inc({ model: m.name, result: 'ok' });
        metrics.loadSeconds.observe(ms / 1000);
        counts();
      },
      rejected: (name) => metrics.loads.inc({ model: name, result: 'rejected' }),
      unloaded: counts,
      crashed: (m) => metrics.hostCrashes.inc({ model: m.name }),
      quarantined: counts,
    },
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

  const cassandra = config.storeAnomalies ? await connectCassandra(config) : null;
  const store = cassandra ? new AnomalyStore(cassandra, config.keyspace, log) : null;
  const kafka = new Kafka({ clientId: 'fleetpulse-scoring', brokers: config.kafkaBrokers, logLevel: logLevel.WARN });
  const kafkaConsumer = kafka.consumer({
    groupId: config.groupId,
    sessionTimeout: config.sessionTimeoutMs,
    ...(hooks.rebalanceTimeoutMs === undefined ? {} : { rebalanceTimeout: hooks.rebalanceTimeoutMs }),
    allowAutoTopicCreation: false,
  });
  const built = stepOutput(kafka, kafkaConsumer, config.groupId, config.transactions, log);
  const output = hooks.wrapOutput ? hooks.wrapOutput(built) : built;
  const scorer = new Scorer(registry, scoreSink(output.producer, config.scoresTopic, store, steps), {
    maxBatch: config.maxBatch,
    log,
    metrics,
  });
  const consumer = new WindowConsumer(kafkaConsumer, scorer, {
    topic: config.sourceTopic,
    metrics,
    log,
    steps,
    output,
    repeats: new RecentWindows(config.repeatWindow),
  });
  for (const line of config.ignored) log(line);

  let closing = false;
  const { server, port } = await startOpsServer({
    host: config.httpHost,
    port: config.httpPort,
    registry: metrics.registry,
    ready: () => {
      const kafka = consumer.consuming;
      const store = cassandra === null || cassandra.getState().getConnectedHosts().length > 0;
      return {
        ready: !closing && kafka && store,
        kafka: kafka ? 'up' : 'down',
        cassandra: cassandra === null ? 'disabled' : store ? 'up' : 'down',
        models: registry.snapshot().size,
        quarantined: registry.quarantined().size,
      };
    },
    // /api/models matches the dashboard's own route (its default FLEETPULSE_SCORING_MODELS_PATH); /models is kept
    // for deployments configured with it.
    route: (path, _req, res) => {
      if (path !== '/api/models' && path !== '/models') return false;
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(registry.status()));
      return true;
    },
  });

  await watcher.start();
  log(`models in ${config.modelsDir}: ${describeModels(registry.status())}`);
  await consumer.start();
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
      store?.stop();
      await cassandra?.shutdown();
      await host.close();
      metrics.close();
      if (!tracingOverride) await tracing?.shutdown();
      await closeServer(server);
    },
  };
}

async function connectCassandra(config: ScoringConfig): Promise<Client> {
  const { cassandraContactPoints, cassandraDataCenter } = config;
  const client = new Client(cassandraClientOptions('scoring', { cassandraContactPoints, cassandraDataCenter }));
  try {
    await client.connect();
  } catch (e) {
    throw new StoreUnavailable(
      `cannot connect to Cassandra at ${config.cassandraContactPoints.join(',')}: ${firstLine(e)}`,
      { cause: e },
    );
  }
  return client;
}

/** The start-up line: the models serving, and the files rejected. */
function describeModels(status: readonly ModelStatus[]): string {
  const serving = status.filter((s) => s.active).map((s) => `${s.name} v${s.active!.version}`);
  const rejected = status.filter((s) => s.lastError).map((s) => s.name);
  return (serving.join(', ') || 'none') + (rejected.length > 0 ? `; rejected: ${rejected.join(', ')}` : '');
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => server.close(() => resolve()));
}
