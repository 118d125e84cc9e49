import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { Kafka, logLevel } from 'kafkajs';
import { Topics } from '@fleetpulse/contracts';
import { parserKind } from '@fleetpulse/native';
import { Tracing } from '@fleetpulse/runtime/tracing';
import { TokenTable } from './auth';
import type { IngestionConfig } from './config';
import { createIngestionServer } from './http-server';
import { RateLimits } from './limits';
import { IngestionMetrics } from './metrics';
import { MqttDoor } from './mqtt/door';
import { IngestPipeline } from './pipeline';
import { useNativeChecksum } from './kafka-checksum';
import { GroupCommitProducer } from './producer';

export interface RunningIngestion {
  /** The bound port (useful with port 0 in tests). */
  port: number;
  /** The bound MQTT port; null when MQTT is off (FLEETPULSE_MQTT_PORT=off). */
  mqttPort: number | null;
  pipeline: IngestPipeline;
  producer: GroupCommitProducer;
  metrics: IngestionMetrics;
  /** Stops taking requests, lets in-flight ones finish (up to the grace period), flushes and disconnects. */
  close(): Promise<void>;
}

export type Log = (line: string) => void;

/** Starts the ingestion service: producer connected first, then the HTTP door and the MQTT door. */
export async function startIngestion(
  config: IngestionConfig,
  log: Log = (l) => console.log(l),
  /** Tests' tracing (an in-memory exporter); by default what config.tracing says. */
  tracingOverride?: Tracing,
): Promise<RunningIngestion> {
  const metrics = new IngestionMetrics();
  const tracing = tracingOverride ?? (await Tracing.start('fleetpulse-ingestion', config.tracing));
  if (tracing && !tracingOverride)
    log(`ingestion: traces to ${config.tracing.endpoint} (new traces sampled at ${config.tracing.sampleRatio})`);
  const checksum = useNativeChecksum();
  const kafka = new Kafka({
    clientId: config.kafkaClientId,
    brokers: config.kafkaBrokers,
    logLevel: logLevel.WARN,
    logCreator: () => (entry) =>
      log(
        `kafka ${entry.level === logLevel.ERROR ? 'error' : 'warning'}: ${entry.log.message} ${entry.log.error ?? ''}`.trimEnd(),
      ),
    retry: { initialRetryTime: 100, retries: 8 },
  });
  const producer = new GroupCommitProducer(kafka, {
    maxInFlightEvents: config.maxInFlightEvents,
    produceTimeoutMs: config.produceTimeoutMs,
    producers: config.producers,
    topics: [config.rawTopic, Topics.dlq],
    ...(config.produceMaxRequestBytes === null ? {} : { maxRequestBytes: config.produceMaxRequestBytes }),
    observer: metrics,
  });
  await producer.connect();
  const limits = new RateLimits(config.limits);
  let mqtt: MqttDoor | undefined;
  // What the bounded tables and buffers hold, for /metrics.
  const tracked = setInterval(() => {
    const { devices, addresses } = limits.tracked();
    metrics.rateTracked.set({ table: 'devices' }, devices);
    metrics.rateTracked.set({ table: 'addresses' }, addresses);
    if (mqtt !== undefined) metrics.mqttBufferedBytes.set(mqtt.bufferedBytes);
  }, 5000).unref();
  const tokens = new TokenTable(config.tokens);
  const pipeline = new IngestPipeline(config, producer, metrics, limits, tracing);
  const server = createIngestionServer({
    config,
    tokens,
    pipeline,
    metrics,
    limits,
    isReady: () => producer.healthy,
    tracing,
  });
  server.listen(config.port, config.host);
  await once(server, 'listening');
  const port = (server.address() as AddressInfo).port;
  log(
    `ingestion: listening on http://${config.host}:${port}/v1/telemetry, parser ${parserKind}, checksum ${checksum}, Kafka ${config.kafkaBrokers.join(',')} (${producer.producers} producers, requests of at most ${producer.maxRequestBytes} bytes)`,
  );
  let mqttPort: number | null = null;
  if (config.mqttPort !== null) {
    mqtt = new MqttDoor({ config, tokens, pipeline, producer, metrics, limits, log, tracing });
    try {
      mqttPort = await mqtt.listen(config.mqttPort, config.mqttHost);
    } catch (e) {
      server.close();
      clearInterval(tracked);
      await producer.close();
      if (!tracingOverride) await tracing?.shutdown();
      throw e;
    }
    log(
      `ingestion: MQTT on mqtt://${config.mqttHost}:${mqttPort}, topic telemetry/<deviceId>, QoS 0/1; packets of at most ${config.mqttMaxPacketBytes} bytes, ${config.mqttMaxConnections} connections`,
    );
  }
  if (producer.maxRequestBytes < config.maxBodyBytes)
    log(
      `ingestion: warning: Kafka takes records of at most ${producer.maxRequestBytes} bytes, less than the body limit (FLEETPULSE_MAX_BODY_BYTES=${config.maxBodyBytes}): one device's events of a request near that limit are refused (HTTP 413; MQTT: kept in telemetry.dlq)`,
    );
  if (config.env === 'development')
    log('ingestion: development mode: the token "dev-token" is accepted for every device');

  let closing: Promise<void> | undefined;
  const close = () =>
    (closing ??= (async () => {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      const mqttClosed = mqtt?.close(config.shutdownGraceMs);
      const grace = new Promise<void>((resolve) => setTimeout(resolve, config.shutdownGraceMs).unref());
      await Promise.race([closed, grace]);
      server.closeAllConnections();
      await mqttClosed;
      clearInterval(tracked);
      await producer.close();
      if (!tracingOverride) await tracing?.shutdown();
    })());
  return { port, mqttPort, pipeline, producer, metrics, close };
}
