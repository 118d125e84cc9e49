/**
 * The alerting service's composition root: the rules (rules.ts, from Cassandra), the evaluator (metrics.aggregates +
 * anomaly.scores -> history + alerts topic + state: evaluator-consumer.ts) and the webhook deliverer (alerts ->
 * webhooks: deliverer.ts), with /healthz, /readyz and /metrics on one port. Only wiring and the order of start and
 * stop live here.
 */
import type { Server } from 'node:http';
import { firstLine } from '@fleetpulse/runtime';
import { cassandraClientOptions } from '@fleetpulse/runtime/cassandra';
import { startOpsServer } from '@fleetpulse/runtime/metrics';
import { Client } from 'cassandra-driver';
import { Kafka, logLevel, Partitioners } from 'kafkajs';
import type { AlertingConfig } from './config';
import { WebhookDeliverer } from './deliverer';
import { EvaluatorConsumer } from './evaluator-consumer';
import { AlertingMetrics } from './metrics';
import { RuleStore } from './rule-store';
import { Rules } from './rules';
import { AlertStore } from './storage';

export interface RunningAlerting {
  port: number;
  metrics: AlertingMetrics;
  close(): Promise<void>;
}

/** Cassandra could not be reached at start-up. */
export class StoreUnavailable extends Error {
  override readonly name = 'StoreUnavailable';
}

export async function startAlerting(
  config: AlertingConfig,
  log: (line: string) => void = (l) => console.log(`alerting: ${l}`),
): Promise<RunningAlerting> {
  const metrics = new AlertingMetrics();
  const { cassandraContactPoints, cassandraDataCenter } = config;
  const cassandra = new Client(cassandraClientOptions('alerting', { cassandraContactPoints, cassandraDataCenter }));
  try {
    await cassandra.connect();
  } catch (e) {
    throw new StoreUnavailable(
      `cannot connect to Cassandra at ${config.cassandraContactPoints.join(',')}: ${firstLine(e)}`,
      { cause: e },
    );
  }
  const ruleStore = new RuleStore(cassandra, config.keyspace);
  const kafka = new Kafka({ clientId: 'fleetpulse-alerting', brokers: config.kafkaBrokers, logLevel: logLevel.WARN });
  const evaluator = new EvaluatorConsumer(
    kafka.consumer({ groupId: config.groupId, sessionTimeout: config.sessionTimeoutMs, allowAutoTopicCreation: false }),
    kafka.producer({ idempotent: true, maxInFlightRequests: 1, createPartitioner: Partitioners.DefaultPartitioner }),
    new AlertStore(cassandra, config.keyspace),
    ruleStore,
    new Rules(ruleStore, log),
    {
      aggregatesTopic: config.aggregatesTopic,
      scoresTopic: config.scoresTopic,
      alertsTopic: config.alertsTopic,
      refreshMs: config.rulesRefreshMs,
      maxCachedStates: config.maxCachedStates,
      admin: kafka.admin(),
      groupId: config.groupId,
      metrics,
      log,
    },
  );
  const deliveryRules = new Rules(ruleStore, log);
  const deliverer = new WebhookDeliverer(
    kafka.consumer({
      groupId: config.webhookGroupId,
      sessionTimeout: config.sessionTimeoutMs,
      allowAutoTopicCreation: false,
      // What a partition's batch holds in memory while its webhooks are retried.
      maxBytesPerPartition: 1024 * 1024,
      maxBytes: 8 * 1024 * 1024,
    }),
    {
      topic: config.alertsTopic,
      secret: config.webhookSecret,
      timeoutMs: config.webhookTimeoutMs,
      maxInFlight: config.webhookMaxInFlight,
      perUrl: config.webhookPerUrl,
      initialBackoffMs: config.webhookInitialBackoffMs,
      maxBackoffMs: config.webhookMaxBackoffMs,
      maxAgeMs: config.webhookMaxAgeMs,
      metrics,
      log,
      rule: (id) => deliveryRules.get(id),
    },
  );
  const refreshDeliveryRules = setInterval(
    () => void deliveryRules.refresh().catch(() => undefined),
    config.rulesRefreshMs,
  );

  let closing = false;
  const { server, port } = await startOpsServer({
    host: config.httpHost,
    port: config.httpPort,
    registry: metrics.registry,
    ready: () => {
      const store = cassandra.getState().getConnectedHosts().length > 0;
      return {
        ready: !closing && evaluator.ready && deliverer.ready && store,
        evaluator: evaluator.ready ? 'up' : 'down',
        webhooks: deliverer.ready ? 'up' : 'down',
        cassandra: store ? 'up' : 'down',
      };
    },
  });
  if (config.devSecret) log(`development: webhooks are signed with the development secret "${config.webhookSecret}"`);
  await deliveryRules.refresh();
  await evaluator.start();
  await deliverer.start();
  log(
    `evaluating ${config.aggregatesTopic} + ${config.scoresTopic} as ${config.groupId}; transitions to ` +
      `${config.alertsTopic}; webhooks as ${config.webhookGroupId}; ${evaluator.ruleCount} rule(s); http on :${port}`,
  );

  return {
    port,
    metrics,
    close: async () => {
      closing = true;
      clearInterval(refreshDeliveryRules);
      await deliverer.stop();
      await evaluator.stop();
      await cassandra.shutdown();
      await new Promise<void>((resolve) => (server as Server).close(() => resolve()));
    },
  };
}
