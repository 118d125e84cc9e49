import { firstLine, retry } from '@fleetpulse/runtime';
import { cassandraClientOptions } from '@fleetpulse/runtime/cassandra';
import { startOpsServer } from '@fleetpulse/runtime/metrics';
import { Tracing } from '@fleetpulse/runtime/tracing';
import { Client } from 'cassandra-driver';
import { Kafka, logLevel } from 'kafkajs';
import type { ProcessorConfig } from './config';
import { ProcessorMetrics } from './metrics';
import { StreamProcessor, type Log } from './processor';
import { aggregateStoreFor } from './storage/aggregate-store';
import { CheckpointStore } from './storage/checkpoint-store';

export interface RunningProcessor {
  processor: StreamProcessor;
  metrics: ProcessorMetrics;
  /** Port of /healthz, /readyz, /metrics. */
  port: number;
  close(): Promise<void>;
}

/** Connects to Cassandra and Kafka, starts the consumer loop and the health/metrics endpoint. */
export async function startProcessor(
  config: ProcessorConfig,
  log: Log = (l) => console.log(l),
  /** Tests' tracing (an in-memory exporter); by default what config.tracing says. */
  tracingOverride?: Tracing,
): Promise<RunningProcessor> {
  const cassandra = new Client(
    cassandraClientOptions('stream-processor', config, { pooling: { maxRequestsPerConnection: 2048 } }),
  );
  // Cassandra being down at start-up delays the processor, it does not stop it: retry with a log line.
  await retry(() => cassandra.connect(), {
    initialMs: 500,
    onRetry: (attempt, delay, e) =>
      log(
        `stream-processor: cannot connect to Cassandra at ${config.cassandraContactPoints.join(',')} (attempt ${attempt}, retrying in ${Math.round(delay)} ms): ${firstLine(e)}`,
      ),
  });
  const kafka = new Kafka({
    clientId: `fleetpulse-stream-processor-${process.pid}`,
    brokers: config.kafkaBrokers,
    logLevel: logLevel.WARN,
    logCreator: () => (entry) =>
      log(`kafka ${entry.level === logLevel.ERROR ? 'error' : 'warning'}: ${entry.log.message}`),
  });
  const metrics = new ProcessorMetrics();
  const store = aggregateStoreFor(cassandra, config, log);
  const checkpoints = new CheckpointStore(cassandra, config.keyspace, config.groupId, config.sourceTopic, (op) =>
    store.withRetry(op),
  );
  const tracing = tracingOverride ?? (await Tracing.start('fleetpulse-stream-processor', config.tracing));
  if (tracing && !tracingOverride)
    log(`stream-processor: traces to ${config.tracing.endpoint} (new traces sampled at ${config.tracing.sampleRatio})`);
  const processor = new StreamProcessor(kafka, config, store, checkpoints, metrics, log, tracing);
  await processor.start();

  const { server, port } = await startOpsServer({
    host: config.httpHost,
    port: config.httpPort,
    registry: metrics.registry,
    ready: () => processor.isRunning && cassandra.getState().getConnectedHosts().length > 0,
  });
  log(
    `stream-processor: ${config.sourceTopic} -> Cassandra ${config.keyspace} + metrics.aggregates${config.liveIntervalMs > 0 ? ' + metrics.live' : ''}, resolutions ${config.aggregator.labels.join(',')} (stored: ${config.storedResolutions.join(',') || 'none'}), group ${config.groupId}; health on :${port}`,
  );

  let closing: Promise<void> | undefined;
  const close = () =>
    (closing ??= (async () => {
      // A final flush stuck retrying (Cassandra down) gives up after the grace period: its records are not committed,
      // so the next start reads them again.
      const grace = setTimeout(() => {
        log(
          `stream-processor: the final flush did not finish within ${config.shutdownGraceMs} ms; stopping without it (its records are read again on restart)`,
        );
        store.stop();
      }, config.shutdownGraceMs);
      // Kafka being down can hold the stop past the store's retries (producer retries, leaving the group): a bound.
      let giveUp: NodeJS.Timeout | undefined;
      await Promise.race([
        processor.stop(),
        new Promise<void>((resolve) => (giveUp = setTimeout(resolve, config.shutdownGraceMs + 5000))),
      ]);
      clearTimeout(grace);
      clearTimeout(giveUp);
      store.stop();
      server.close();
      await cassandra.shutdown();
      if (!tracingOverride) await tracing?.shutdown();
    })());
  return { processor, metrics, port, close };
}
