import { mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { allTopics, cqlStatements } from '@fleetpulse/contracts';
import {
  applySchema,
  cassandraJvmArgs,
  cassandraPaths,
  probeCassandra,
  renderCassandraYaml,
  renderLogback,
} from './cassandra';
import {
  cassandraContactPoint,
  kafkaBrokers,
  loadStackConfig,
  PortVars,
  type ComponentConfig,
  type StackConfig,
} from './config';
import { StackError, wipeHint } from './errors';
import { cassandraDeps, checkJava, kafkaDeps, resolveClasspath, type MavenDep } from './java';
import {
  checkKafkaData,
  ensureTopics,
  formatKafkaStorage,
  kafkaJvmArgs,
  kafkaPaths,
  probeKafka,
  renderLog4j2,
  renderServerProperties,
} from './kafka';
import { seconds, stderrLogger, type Logger } from './log';
import { isPortOpen } from './ports';
import { livePid, removeFile, spawnDetached, stopPid, tail, writePidFile } from './proc';

export type ComponentName = 'kafka' | 'cassandra';

/** started: by this call; running: by an earlier `up` of this launcher; external: answering, not started by us. */
export type UpState = 'started' | 'running' | 'external';

export interface ComponentUp {
  name: ComponentName;
  state: UpState;
  port: number;
  pid?: number;
  /** Kafka cluster id or Cassandra release version, as the running process reported it. */
  identity: string;
}

export interface StackUpResult {
  kafka: ComponentUp;
  cassandra: ComponentUp;
  brokers: string[];
  contactPoint: string;
  /** The components this call started: the ones its caller should stop again. */
  started: ComponentName[];
}

export interface StackUpOptions {
  config?: StackConfig;
  log?: Logger;
  /** Aborting stops the wait; whatever this call started is stopped again before it rejects. */
  signal?: AbortSignal;
  /** Create the contract's topics (default true). */
  topics?: boolean;
  /** Apply the contract's CQL (default true). */
  schema?: boolean;
}

interface Component {
  name: ComponentName;
  label: string;
  cfg: ComponentConfig;
  dir: string;
  log: string;
  pid: string;
  internalLabel: string;
  probe: (port: number, timeoutMs?: number) => Promise<string | undefined>;
  deps: MavenDep[];
  /** Throws on a data folder the process would refuse; runs before anything is started. */
  checkData: () => void;
  /** Writes configs (and formats storage) and returns the JVM arguments. */
  prepare: (classpath: string[], marker: string) => string[];
  /** How long `down` waits after SIGTERM before SIGKILL, ms. */
  graceMs: number;
}

function components(config: StackConfig): Record<ComponentName, Component> {
  const k = kafkaPaths(config);
  const c = cassandraPaths(config);
  let kafkaNeedsFormat = false;
  return {
    kafka: {
      name: 'kafka',
      label: 'Kafka',
      cfg: config.kafka,
      dir: k.dir,
      log: k.log,
      pid: k.pid,
      internalLabel: 'Kafka controller',
      probe: probeKafka,
      deps: kafkaDeps(config.kafka.version),
      checkData: () => {
        kafkaNeedsFormat = checkKafkaData(config) === 'format';
      },
      prepare: (classpath, marker) => {
        mkdirSync(k.data, { recursive: true });
        writeFileSync(k.properties, renderServerProperties(config));
        writeFileSync(k.log4j, renderLog4j2());
        if (kafkaNeedsFormat) formatKafkaStorage(config, classpath);
        return kafkaJvmArgs(config, classpath, marker);
      },
      graceMs: 30_000,
    },
    cassandra: {
      name: 'cassandra',
      label: 'Cassandra',
      cfg: config.cassandra,
      dir: c.dir,
      log: c.log,
      pid: c.pid,
      internalLabel: 'Cassandra storage',
      probe: probeCassandra,
      deps: cassandraDeps(config.cassandra.version),
      checkData: () => undefined,
      prepare: (classpath, marker) => {
        for (const d of [c.data, c.commitlog, c.savedCaches, c.hints, c.cdcRaw, c.triggers])
          mkdirSync(d, { recursive: true });
        writeFileSync(c.yaml, renderCassandraYaml(config));
        writeFileSync(c.logback, renderLogback());
        return cassandraJvmArgs(config, classpath, marker);
      },
      graceMs: 60_000,
    },
  };
}

/** Put on the JVM command line so `down` can tell our process from a stranger that got its pid. */
const markerOf = (config: StackConfig, name: ComponentName): string => `-Dfleetpulse.stack=${name}@${config.stackDir}`;

type Plan = { action: 'start' } | { action: 'reuse'; state: 'running' | 'external'; pid?: number };

async function planComponent(config: StackConfig, comp: Component): Promise<Plan> {
  const own = livePid(comp.pid);
  if (own) return { action: 'reuse', state: 'running', pid: own.pid };
  removeFile(comp.pid);
  const vars = PortVars[comp.name];
  if (await isPortOpen(comp.cfg.port)) {
    if (await comp.probe(comp.cfg.port)) return { action: 'reuse', state: 'external' };
    throw new StackError(
      `port ${comp.cfg.port} is taken by a process that is not ${comp.label}`,
      `stop that process, or run ${comp.label} on another port: ${vars.port}=<free port>`,
    );
  }
  if (await isPortOpen(comp.cfg.internalPort)) {
    throw new StackError(
      `port ${comp.cfg.internalPort} (${comp.internalLabel}) is taken by another process`,
      `stop that process, or choose another port: ${vars.internalPort}=<free port>`,
    );
  }
  comp.checkData();
  return { action: 'start' };
}

async function waitReady(comp: Component, pid: number | undefined, log: Logger, signal?: AbortSignal): Promise<string> {
  const started = Date.now();
  let lastLog = started;
  for (;;) {
    if (signal?.aborted) throw new StackError(`interrupted while waiting for ${comp.label}`);
    if (pid !== undefined && livePidOf(comp) === undefined) {
      throw new StackError(
        `${comp.label} exited during start-up. Last lines of ${comp.log}:\n${tail(comp.log)}`,
        `read ${comp.log}; if its data folder is damaged, ${wipeHint(comp.dir)}`,
      );
    }
    const identity = await comp.probe(comp.cfg.port);
    if (identity) return identity;
    const elapsed = Date.now() - started;
    if (elapsed > comp.cfg.timeoutMs) {
      throw new StackError(
        `${comp.label} did not answer on port ${comp.cfg.port} within ${seconds(comp.cfg.timeoutMs)}. Last lines of ${comp.log}:\n${tail(comp.log)}`,
        `raise FLEETPULSE_${comp.name.toUpperCase()}_TIMEOUT_MS on a slow machine, or read ${comp.log}`,
      );
    }
    if (Date.now() - lastLog >= 10_000) {
      lastLog = Date.now();
      log(`waiting for ${comp.label} on port ${comp.cfg.port} (${seconds(elapsed)})`);
    }
    await sleep(1000);
  }
}

const livePidOf = (comp: Component): number | undefined => livePid(comp.pid)?.pid;

/**
 * Brings Kafka and Cassandra up, or reuses what already answers on their ports, then creates the contract's topics
 * and schema. Nothing is started before every check passed; on any failure, what this call started is stopped.
 */
export async function stackUp(opts: StackUpOptions = {}): Promise<StackUpResult> {
  const config = opts.config ?? loadStackConfig();
  const log = opts.log ?? stderrLogger;
  const comps = components(config);
  const list = [comps.kafka, comps.cassandra];
  const plans = await Promise.all(list.map((c) => planComponent(config, c)));
  const toStart = list.filter((_, i) => plans[i]!.action === 'start');
  const startedPids = new Map<ComponentName, number>();
  try {
    if (toStart.length > 0) {
      checkJava(config.java);
      const classpaths = new Map<ComponentName, string[]>();
      // One after the other: two Maven runs on one local repository can trip over each other's downloads.
      for (const c of toStart) classpaths.set(c.name, await resolveClasspath(config, c.name, c.deps, log));
      for (const c of toStart) {
        if (opts.signal?.aborted) throw new StackError('interrupted');
        mkdirSync(c.dir, { recursive: true });
        const marker = markerOf(config, c.name);
        const args = c.prepare(classpaths.get(c.name)!, marker);
        const pid = spawnDetached(config.java, args, { cwd: c.dir, logFile: c.log });
        writePidFile(c.pid, { pid, marker, startedAt: new Date().toISOString(), port: c.cfg.port });
        startedPids.set(c.name, pid);
        log(`started ${c.label} ${c.cfg.version} (pid ${pid}, port ${c.cfg.port}, heap ${c.cfg.heap}); log: ${c.log}`);
      }
    }
    const t0 = Date.now();
    const results = await Promise.all(
      list.map(async (c, i): Promise<ComponentUp> => {
        const plan = plans[i]!;
        const pid = plan.action === 'start' ? startedPids.get(c.name) : plan.pid;
        const identity = await waitReady(c, pid, log, opts.signal);
        const state: UpState = plan.action === 'start' ? 'started' : plan.state;
        log(
          `${c.label} ${state === 'started' ? `answers on port ${c.cfg.port} after ${seconds(Date.now() - t0)}` : `reused on port ${c.cfg.port} (${state === 'running' ? `started earlier, pid ${pid}` : 'not started by this launcher'})`}`,
        );
        return { name: c.name, state, port: c.cfg.port, identity, ...(pid !== undefined ? { pid } : {}) };
      }),
    );
    const [kafka, cassandra] = results as [ComponentUp, ComponentUp];
    if (opts.topics !== false) {
      const t = await ensureTopics(kafkaBrokers(config), allTopics, config.topicPartitions);
      log(
        `topics: ${t.created.length > 0 ? `created ${t.created.join(', ')}` : 'all present'}${t.grown.length > 0 ? `; grown to ${config.topicPartitions} partitions: ${t.grown.join(', ')}` : ''}`,
      );
      if (t.larger.length > 0)
        log(
          `note: ${t.larger.join(', ')} have more than ${config.topicPartitions} partitions (Kafka cannot shrink them)`,
        );
    }
    if (opts.schema !== false) {
      await applySchema(cassandraContactPoint(config), cqlStatements());
      log('schema applied (contracts/cql)');
    }
    return {
      kafka,
      cassandra,
      brokers: kafkaBrokers(config),
      contactPoint: cassandraContactPoint(config),
      started: [...startedPids.keys()],
    };
  } catch (e) {
    if (startedPids.size > 0) {
      log(`stopping what this attempt started: ${[...startedPids.keys()].join(', ')}`);
      await Promise.all(
        [...startedPids.keys()].map(async (name) => {
          const c = comps[name];
          await stopPid(startedPids.get(name)!, c.graceMs);
          removeFile(c.pid);
        }),
      );
    }
    throw e;
  }
}

export interface StackDownOptions {
  config?: StackConfig;
  log?: Logger;
  /** Only these components (default both). */
  only?: ComponentName[];
  /** Also delete the Kafka and Cassandra data folders. */
  wipe?: boolean;
}

export type DownResult = Record<ComponentName, 'stopped' | 'not-running' | 'external'>;

/** Stops what this launcher started (by pid file), gracefully; leaves a stranger on our ports alone. Idempotent. */
export async function stackDown(opts: StackDownOptions = {}): Promise<DownResult> {
  const config = opts.config ?? loadStackConfig();
  const log = opts.log ?? stderrLogger;
  const comps = components(config);
  const names = opts.only ?? (['kafka', 'cassandra'] as ComponentName[]);
  await stopServices(config, log);
  const result = {} as DownResult;
  await Promise.all(
    names.map(async (name) => {
      const c = comps[name];
      const own = livePid(c.pid);
      if (own) {
        log(`stopping ${c.label} (pid ${own.pid})`);
        const how = await stopPid(own.pid, c.graceMs);
        log(`${c.label} ${how === 'killed' ? `did not stop within ${seconds(c.graceMs)}; killed` : 'stopped'}`);
        result[name] = 'stopped';
      } else if (await isPortOpen(c.cfg.port)) {
        log(`${c.label} on port ${c.cfg.port} was not started by this launcher; left running`);
        result[name] = 'external';
      } else {
        result[name] = 'not-running';
      }
      removeFile(c.pid);
    }),
  );
  if (opts.wipe) {
    for (const name of names) rmSync(comps[name].dir, { recursive: true, force: true });
    log(`wiped ${names.map((n) => comps[n].dir).join(' and ')}`);
  }
  return result;
}

export interface ComponentStatus {
  name: ComponentName;
  port: number;
  internalPort: number;
  /** running: started by this launcher and answering; starting: ours, not answering yet; external: answering, not ours. */
  state: 'running' | 'starting' | 'external' | 'stopped';
  pid?: number;
  identity?: string;
  log: string;
}

export async function stackStatus(
  opts: { config?: StackConfig } = {},
): Promise<Record<ComponentName, ComponentStatus>> {
  const config = opts.config ?? loadStackConfig();
  const comps = components(config);
  const one = async (c: Component): Promise<ComponentStatus> => {
    const own = livePid(c.pid);
    const identity = (await isPortOpen(c.cfg.port)) ? await c.probe(c.cfg.port) : undefined;
    const state = own ? (identity ? 'running' : 'starting') : identity ? 'external' : 'stopped';
    return {
      name: c.name,
      port: c.cfg.port,
      internalPort: c.cfg.internalPort,
      state,
      log: c.log,
      ...(own ? { pid: own.pid } : {}),
      ...(identity ? { identity } : {}),
    };
  };
  const [kafka, cassandra] = await Promise.all([one(comps.kafka), one(comps.cassandra)]);
  return { kafka, cassandra };
}

/** Folder of the pid files of services started by `start`, so `down` can stop them if `start` was killed hard. */
export const servicesDir = (config: StackConfig): string => join(config.stackDir, 'services');

async function stopServices(config: StackConfig, log: Logger): Promise<void> {
  let files: string[];
  try {
    files = readdirSync(servicesDir(config)).filter((f) => f.endsWith('.pid'));
  } catch {
    return;
  }
  await Promise.all(
    files.map(async (f) => {
      const path = join(servicesDir(config), f);
      const own = livePid(path);
      if (own) {
        log(`stopping service ${f.replace(/\.pid$/, '')} (pid ${own.pid}) left by an earlier start`);
        await stopPid(own.pid, 10_000);
      }
      removeFile(path);
    }),
  );
}
