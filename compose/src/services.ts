import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DefaultPorts, DevToken } from '@fleetpulse/contracts';
import { repoRoot } from './config';

export interface ServiceContext {
  brokers: string[];
  contactPoint: string;
  /** The launcher's data folder: development secrets kept across restarts live there. */
  stackDir: string;
}

/** A random secret made once and kept in the stack's folder (development only: `npm start`). */
export function developmentSecret(stackDir: string, file: string): string {
  const path = join(stackDir, file);
  if (existsSync(path)) return readFileSync(path, 'utf8').trim();
  mkdirSync(stackDir, { recursive: true });
  const secret = randomBytes(32).toString('base64url');
  writeFileSync(path, `${secret}\n`, { mode: 0o600 });
  return secret;
}

export interface ServiceSpec {
  name: string;
  /** Workspace folder; the entry is `<workspace>/dist/main.js`. */
  workspace: string;
  args: string[];
  env: (ctx: ServiceContext) => Record<string, string>;
  /** Answers (any HTTP status) once the service is up; absent when it serves nothing. */
  readyUrl?: string;
  /** Start only after the services before it are ready (the simulator needs ingestion). */
  afterReady?: boolean;
}

/**
 * `npm start` is for development: every service listens on the loopback address only, unless its host variable is
 * set (then the user chose to open it).
 */
const loopback = (hostVariable: string): Record<string, string> => ({
  [hostVariable]: process.env[hostVariable] ?? '127.0.0.1',
});

const common = (ctx: ServiceContext): Record<string, string> => ({
  FLEETPULSE_ENV: 'development',
  FLEETPULSE_KAFKA_BROKERS: ctx.brokers.join(','),
  FLEETPULSE_CASSANDRA_CONTACT_POINTS: ctx.contactPoint,
});

const ingestionPort = Number(process.env.FLEETPULSE_INGESTION_PORT ?? DefaultPorts.ingestionHttp);
const dashboardPort = Number(process.env.FLEETPULSE_DASHBOARD_PORT ?? DefaultPorts.dashboard);
const mqttPort = process.env.FLEETPULSE_MQTT_PORT ?? String(DefaultPorts.mqtt);
// The services inherit this environment: their readiness is asked where they will listen.
const processorPort = Number(process.env.FLEETPULSE_PROCESSOR_PORT ?? DefaultPorts.processorHttp);
const scoringPort = Number(process.env.FLEETPULSE_SCORING_PORT ?? DefaultPorts.scoringHttp);
const alertingPort = Number(process.env.FLEETPULSE_ALERTING_PORT ?? DefaultPorts.alertingHttp);

/** Every service `start` knows, in start order. Services not built yet are skipped. */
export const services: ServiceSpec[] = [
  {
    name: 'stream-processor',
    workspace: 'stream-processor',
    args: [],
    env: (ctx) => ({ ...common(ctx), ...loopback('FLEETPULSE_PROCESSOR_HOST') }),
    readyUrl: `http://127.0.0.1:${processorPort}/healthz`,
  },
  {
    name: 'scoring',
    workspace: 'scoring',
    args: [],
    // The committed default model; drop another .onnx there (write, then rename) to swap it live.
    env: (ctx) => ({
      ...common(ctx),
      ...loopback('FLEETPULSE_SCORING_HOST'),
      MODELS_DIR: join(repoRoot, 'scoring', 'models'),
    }),
    readyUrl: `http://127.0.0.1:${scoringPort}/healthz`,
  },
  {
    // Alert rules on window records and scores; webhooks signed with the development secret unless
    // FLEETPULSE_ALERT_WEBHOOK_SECRET is set.
    name: 'alerting',
    workspace: 'alerting',
    args: [],
    env: (ctx) => ({ ...common(ctx), ...loopback('FLEETPULSE_ALERTING_HOST') }),
    readyUrl: `http://127.0.0.1:${alertingPort}/healthz`,
  },
  {
    name: 'ingestion',
    workspace: 'ingestion',
    args: [],
    env: (ctx) => ({
      ...common(ctx),
      ...loopback('FLEETPULSE_INGESTION_HOST'),
      FLEETPULSE_INGESTION_PORT: String(ingestionPort),
      FLEETPULSE_MQTT_PORT: mqttPort,
    }),
    readyUrl: `http://127.0.0.1:${ingestionPort}/healthz`,
  },
  {
    name: 'dashboard',
    workspace: 'dashboard-api',
    args: [],
    env: (ctx) => ({
      ...common(ctx),
      ...loopback('FLEETPULSE_DASHBOARD_HOST'),
      FLEETPULSE_DASHBOARD_PORT: String(dashboardPort),
      // Signed sessions: the browser stays signed in when the API restarts (docs/security.md).
      FLEETPULSE_DASHBOARD_SESSION_SECRET:
        process.env.FLEETPULSE_DASHBOARD_SESSION_SECRET ?? developmentSecret(ctx.stackDir, 'dashboard-session.secret'),
    }),
    readyUrl: `http://127.0.0.1:${dashboardPort}/healthz`,
  },
  {
    name: 'simulator',
    workspace: 'simulator',
    args: ['--devices', '50'],
    env: (ctx) => ({
      ...common(ctx),
      FLEETPULSE_INGESTION_URL: `http://127.0.0.1:${ingestionPort}`,
      FLEETPULSE_TOKEN: DevToken,
    }),
    afterReady: true,
  },
];

export const entryOf = (s: ServiceSpec): string => join(repoRoot, s.workspace, 'dist', 'main.js');

export const isBuilt = (s: ServiceSpec): boolean => existsSync(entryOf(s));

export const dashboardUrl = `http://localhost:${dashboardPort}`;
