import 'reflect-metadata';
import type { AddressInfo } from 'node:net';
import { ConsoleLogger, Logger, type LogLevel } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { Transport, type KafkaOptions } from '@nestjs/microservices';
import type { NestExpressApplication } from '@nestjs/platform-express';
import type { Tracing } from '@fleetpulse/runtime/tracing';
import type { Consumer } from 'kafkajs';
import { Partitioners, logLevel } from 'kafkajs';
import { AppModule } from './app.module';
import type { DashboardConfig } from './config';
import { HttpErrorsFilter } from './http-errors.filter';
import { KafkaHealth } from './kafka-health.service';
import { TopicRoutedKafkaServer } from './kafka-server';
import { LiveIoAdapter } from './live.adapter';
import { LiveGateway } from './live.gateway';
import { DashboardMetrics } from './metrics.service';

export interface RunningDashboard {
  app: NestExpressApplication;
  port: number;
  url: string;
  gateway: LiveGateway;
  close(): Promise<void>;
}

export interface StartOptions {
  /** Nest log levels; default log, warn, error. */
  logLevels?: LogLevel[];
  /** Without the Kafka transport (unit tests feed the gateway themselves). */
  kafka?: boolean;
  /** Tests' tracing (an in-memory exporter); by default what config.tracing says. */
  tracing?: Tracing;
}

/**
 * The Kafka transport of the hybrid app. The group is unique per instance (fan-out: every instance sees every
 * record); `postfixId: ''` keeps Nest from appending `-server`; reading starts at the latest offset and nothing
 * is committed (autoCommit off), so a restarted instance shows live data, never a backlog, and leaves no offsets.
 */
export function kafkaTransport(config: DashboardConfig): KafkaOptions {
  return {
    transport: Transport.KAFKA,
    options: {
      postfixId: '',
      client: {
        clientId: config.groupId,
        brokers: config.kafkaBrokers,
        logLevel: logLevel.WARN,
        retry: { initialRetryTime: 300, retries: 8 },
      },
      consumer: {
        groupId: config.groupId,
        sessionTimeout: 10_000,
        heartbeatInterval: 3000,
        maxWaitTimeInMs: 100,
        allowAutoTopicCreation: false,
      },
      // Nest connects a producer for replies we never send; the default partitioner silences kafkajs's v2 notice.
      producer: { createPartitioner: Partitioners.DefaultPartitioner },
      subscribe: { fromBeginning: false },
      // Values reach LiveConsumer as bytes: it parses only the records of devices someone watches.
      parser: { keepBinary: true },
      run: { autoCommit: false, partitionsConsumedConcurrently: 3 },
    },
  };
}

/** Builds and starts the API: HTTP (+ socket.io, + the built UI) first, then the Kafka consumer. */
export async function startDashboard(config: DashboardConfig, opts: StartOptions = {}): Promise<RunningDashboard> {
  const app = await NestFactory.create<NestExpressApplication>(AppModule.forRoot(config, opts.tracing), {
    logger: new ConsoleLogger({ logLevels: opts.logLevels ?? ['log', 'warn', 'error'], colors: process.stdout.isTTY }),
  });
  app.useGlobalFilters(new HttpErrorsFilter());
  app.disable('x-powered-by');
  // Browsers may call the API from other origins only when configured: no CORS headers at all otherwise.
  if (config.corsOrigins.length > 0)
    app.enableCors({
      origin: config.corsOrigins,
      credentials: true,
      methods: ['GET', 'POST', 'DELETE'],
      allowedHeaders: ['Authorization', 'Content-Type'],
      exposedHeaders: ['X-Next', 'X-Next-To'],
      maxAge: 600,
    });
  app.useWebSocketAdapter(new LiveIoAdapter(app));
  const metrics = app.get(DashboardMetrics);
  app.use((req: { route?: { path?: string } }, res: NodeJS.EventEmitter & { statusCode: number }, next: () => void) => {
    const end = metrics.httpRequests.startTimer();
    res.on('finish', () => end({ route: req.route?.path ?? 'static', status: String(res.statusCode) }));
    next();
  });
  // Hashed assets may be cached for long; index.html must be revalidated so a new build shows up.
  app.useStaticAssets(config.uiDir, {
    index: 'index.html',
    setHeaders: (res, path) =>
      res.setHeader('Cache-Control', path.endsWith('.html') ? 'no-cache' : 'public, max-age=31536000, immutable'),
  });

  const health = app.get(KafkaHealth);
  if (opts.kafka !== false) {
    const ms = app.connectMicroservice({ strategy: new TopicRoutedKafkaServer(kafkaTransport(config).options ?? {}) });
    await app.startAllMicroservices();
    // run() resolved after the first join; from here on the consumer's own events tell its state.
    const [, consumer] = ms.unwrap<[unknown, Consumer, unknown]>();
    health.consumerState = 'joined';
    const set = (s: string) => () => void (health.consumerState = s);
    consumer.on(consumer.events.GROUP_JOIN, set('joined'));
    consumer.on(consumer.events.REBALANCING, set('rebalancing'));
    consumer.on(consumer.events.CRASH, set('crashed'));
    consumer.on(consumer.events.DISCONNECT, set('disconnected'));
    consumer.on(consumer.events.STOP, set('stopped'));
  } else health.consumerState = 'disabled';
  await app.listen(config.port, config.host);
  const port = (app.getHttpServer().address() as AddressInfo).port;
  const url = `http://127.0.0.1:${port}`;
  new Logger('Dashboard').log(
    `listening on ${config.host}:${port}; live group ${config.groupId} (latest offsets, no commits); UI from ${config.uiDir}`,
  );
  let closing: Promise<void> | undefined;
  return { app, port, url, gateway: app.get(LiveGateway), close: () => (closing ??= app.close()) };
}
