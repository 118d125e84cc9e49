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
  ringState,
} from './cassandra';
import {
  cassandraContactPoint,
  cassandraContactPoints,
  kafkaBrokers,
  loadStackConfig,
  nodeHost,
  nodeNumbers,
  PortVars,
  type ComponentConfig,
  type StackConfig,
} from './config';
import { StackError, wipeHint } from './errors';
import { cassandraDeps, checkJava, kafkaDeps, resolveClasspath, type MavenDep } from './java';
import {
  checkKafkaData,
  countKafkaBrokers,
  ensureTopics,
  formatKafkaStorage,
  kafkaClusterId,
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
  /** 1-based; a cluster's node n listens on 127.0.0.n. */
  node: number;
  host: string;
  state: UpState;
  port: number;
  pid?: number;
  /** Kafka cluster id or Cassandra release version, as the running process reported it. */
  identity: string;
}

export interface StackUpResult {
  /** Node 1 of each (the only one, unless a cluster). */
  kafka: ComponentUp;
  cassandra: ComponentUp;
  /** Every node of both, Kafka's first. */
  nodes: ComponentUp[];
  brokers: string[];
  contactPoint: string;
  /** Every Cassandra node, as cassandra-driver takes them. */
  contactPoints: string[];
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
  node: number;
  host: string;
  /** How messages name its address: `port 9092` for the single node, `127.0.0.2:9192` on a cluster. */
  at: (port: number) => string;
  label: string;
  cfg: ComponentConfig;
  dir: string;
  log: string;
  pid: string;
  internalLabel: string;
  /** Its identity if it answers on its address, else undefined. */
  probe: () => Promise<string | undefined>;
  deps: MavenDep[];
  /** Throws on a data folder the process would refuse; runs before anything is started. */
  checkData: () => void;
  /** Writes configs (and formats storage) and returns the JVM arguments. */
  prepare: (classpath: string[], marker: string) => string[];
  /** How long `down` waits after SIGTERM before SIGKILL, ms. */
  graceMs: number;
}

/** Every node of the stack, Kafka's first, each kind in node order. */
function components(config: StackConfig): Component[] {
  const cluster = config.nodes > 1;
  const nodeLabel = (label: string, node: number): string => (cluster ? `${label} node ${node}` : label);
  const at = (node: number) => (port: number) => (cluster ? `${nodeHost(node)}:${port}` : `port ${port}`);
  let clusterId: string | undefined;
  const kafka = nodeNumbers(config).map((node): Component => {
    const k = kafkaPaths(config, node);
    const host = nodeHost(node);
    let needsFormat = false;
    return {
      name: 'kafka',
      node,
      host,
      at: at(node),
      label: nodeLabel('Kafka', node),
      cfg: config.kafka,
      dir: k.dir,
      log: k.log,
      pid: k.pid,
      internalLabel: 'Kafka controller',
      probe: () => probeKafka(config.kafka.port, 3000, host),
      deps: kafkaDeps(config.kafka.version),
      checkData: () => {
        needsFormat = checkKafkaData(config, node) === 'format';
      },
      prepare: (classpath, marker) => {
        mkdirSync(k.data, { recursive: true });
        writeFileSync(k.properties, renderServerProperties(config, node));
        writeFileSync(k.log4j, renderLog4j2());
        // Every node of a cluster is formatted with the same cluster id.
        if (needsFormat) formatKafkaStorage(config, classpath, node, (clusterId ??= kafkaClusterId(config)));
        return kafkaJvmArgs(config, classpath, marker, node);
      },
      graceMs: 30_000,
    };
  });
  const cassandra = nodeNumbers(config).map((node): Component => {
    const c = cassandraPaths(config, node);
    const host = nodeHost(node);
    return {
      name: 'cassandra',
      node,
      host,
      at: at(node),
      label: nodeLabel('Cassandra', node),
      cfg: config.cassandra,
      dir: c.dir,
      log: c.log,
      pid: c.pid,
      internalLabel: 'Cassandra storage',
      probe: () => probeCassandra(config.cassandra.port, 3000, host),
      deps: cassandraDeps(config.cassandra.version),
      checkData: () => undefined,
      prepare: (classpath, marker) => {
        for (const d of [c.data, c.commitlog, c.savedCaches, c.hints, c.cdcRaw, c.triggers])
          mkdirSync(d, { recursive: true });
        writeFileSync(c.yaml, renderCassandraYaml(config, node));
        writeFileSync(c.logback, renderLogback());
        return cassandraJvmArgs(config, classpath, marker, node);
      },
      graceMs: 60_000,
    };
  });
  return [...kafka, ...cassandra];
}

/** Put on the JVM command line so `down` can tell our process from a stranger that got its pid. */
const markerOf = (config: StackConfig, c: Component): string =>
  `-Dfleetpulse.stack=${c.name}${config.nodes > 1 ? `-${c.node}` : ''}@${config.stackDir}`;

type Plan = { action: 'start' } | { action: 'reuse'; state: 'running' | 'external'; pid?: number };

async function planComponent(config: StackConfig, comp: Component): Promise<Plan> {
  const own = livePid(comp.pid);
  if (own) return { action: 'reuse', state: 'running', pid: own.pid };
  removeFile(comp.pid);
  const vars = PortVars[comp.name];
  if (await isPortOpen(comp.cfg.port, comp.host)) {
    if (await comp.probe()) return { action: 'reuse', state: 'external' };
    throw new StackError(
      `${comp.at(comp.cfg.port)} is taken by a process that is not ${comp.label}`,
      `stop that process, or run ${comp.label} on another port: ${vars.port}=<free port>`,
    );
  }
  if (await isPortOpen(comp.cfg.internalPort, comp.host)) {
    throw new StackError(
      `${comp.at(comp.cfg.internalPort)} (${comp.internalLabel}) is taken by another process`,
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
    const identity = await comp.probe();
    if (identity) return identity;
    const elapsed = Date.now() - started;
    if (elapsed > comp.cfg.timeoutMs) {
      throw new StackError(
        `${comp.label} did not answer on ${comp.at(comp.cfg.port)} within ${seconds(comp.cfg.timeoutMs)}. Last lines of ${comp.log}:\n${tail(comp.log)}`,
        `raise FLEETPULSE_${comp.name.toUpperCase()}_TIMEOUT_MS on a slow machine, or read ${comp.log}`,
      );
    }
    if (Date.now() - lastLog >= 10_000) {
      lastLog = Date.now();
      log(`waiting for ${comp.label} on ${comp.at(comp.cfg.port)} (${seconds(elapsed)})`);
    }
    await sleep(1000);
  }
}

const livePidOf = (comp: Component): number | undefined => livePid(comp.pid)?.pid;

/**
 * Brings Kafka and Cassandra up (each node of a cluster), or reuses what already answers on their addresses, then
 * creates the contract's topics and schema. Nothing is started before every check passed; on any failure, what this
 * call started is stopped. A cluster's Cassandra nodes join through the first one, one at a time; the Kafka nodes
 * start together (their controller quorum needs a majority).
 */
export async function stackUp(opts: StackUpOptions = {}): Promise<StackUpResult> {
  const config = opts.config ?? loadStackConfig();
  const log = opts.log ?? stderrLogger;
  const list = components(config);
  const plans = await Promise.all(list.map((c) => planComponent(config, c)));
  const toStart = list.filter((_, i) => plans[i]!.action === 'start');
  const startedPids = new Map<Component, number>();
  const start = (c: Component, classpath: string[]): void => {
    if (opts.signal?.aborted) throw new StackError('interrupted');
    mkdirSync(c.dir, { recursive: true });
    const marker = markerOf(config, c);
    const args = c.prepare(classpath, marker);
    const pid = spawnDetached(config.java, args, { cwd: c.dir, logFile: c.log });
    writePidFile(c.pid, { pid, marker, startedAt: new Date().toISOString(), port: c.cfg.port });
    startedPids.set(c, pid);
    log(`started ${c.label} ${c.cfg.version} (pid ${pid}, ${c.at(c.cfg.port)}, heap ${c.cfg.heap}); log: ${c.log}`);
  };
  const t0 = Date.now();
  const ready = new Map<Component, Promise<ComponentUp>>();
  const whenReady = (c: Component): Promise<ComponentUp> => {
    let p = ready.get(c);
    if (!p) {
      const plan = plans[list.indexOf(c)]!;
      p = (async (): Promise<ComponentUp> => {
        const pid = plan.action === 'start' ? startedPids.get(c) : plan.pid;
        const identity = await waitReady(c, pid, log, opts.signal);
        const state: UpState = plan.action === 'start' ? 'started' : plan.state;
        log(
          `${c.label} ${state === 'started' ? `answers on ${c.at(c.cfg.port)} after ${seconds(Date.now() - t0)}` : `reused on ${c.at(c.cfg.port)} (${state === 'running' ? `started earlier, pid ${pid}` : 'not started by this launcher'})`}`,
        );
        return {
          name: c.name,
          node: c.node,
          host: c.host,
          state,
          port: c.cfg.port,
          identity,
          ...(pid !== undefined ? { pid } : {}),
        };
      })();
      ready.set(c, p);
    }
    return p;
  };
  try {
    if (toStart.length > 0) {
      checkJava(config.java);
      const classpaths = new Map<ComponentName, string[]>();
      // One after the other: two Maven runs on one local repository can trip over each other's downloads.
      for (const name of new Set(toStart.map((c) => c.name))) {
        const c = toStart.find((x) => x.name === name)!;
        classpaths.set(name, await resolveClasspath(config, name, c.deps, log));
      }
      const joining = toStart.filter((c) => c.name === 'cassandra' && c.node > 1);
      for (const c of toStart) if (!joining.includes(c)) start(c, classpaths.get(c.name)!);
      // One at a time, each once the one before answers: nodes of a new ring started together each write their own
      // system schema, and the versions can take minutes to agree (seen once in CI).
      let previous = list.find((c) => c.name === 'cassandra' && c.node === 1)!;
      for (const c of joining) {
        await whenReady(previous);
        start(c, classpaths.get(c.name)!);
        previous = c;
      }
    }
    const nodes = await Promise.all(list.map(whenReady));
    if (config.nodes > 1) await waitForCluster(config, log, opts.signal);
    const [kafka, cassandra] = [nodes.find((n) => n.name === 'kafka')!, nodes.find((n) => n.name === 'cassandra')!];
    if (opts.topics !== false) {
      const t = await ensureTopics(kafkaBrokers(config), allTopics, config.topicPartitions, config.replicationFactor);
      log(
        `topics: ${t.created.length > 0 ? `created ${t.created.join(', ')}` : 'all present'}${t.grown.length > 0 ? `; grown to ${config.topicPartitions} partitions: ${t.grown.join(', ')}` : ''}`,
      );
      if (t.larger.length > 0)
        log(
          `note: ${t.larger.join(', ')} have more than ${config.topicPartitions} partitions (Kafka cannot shrink them)`,
        );
    }
    if (opts.schema !== false) {
      await applySchema(cassandraContactPoint(config), cqlStatements(), config.replicationFactor);
      log(
        `schema applied (contracts/cql)${config.replicationFactor > 1 ? `, keyspace replication factor ${config.replicationFactor}` : ''}`,
      );
    }
    return {
      kafka,
      cassandra,
      nodes,
      brokers: kafkaBrokers(config),
      contactPoint: cassandraContactPoint(config),
      contactPoints: cassandraContactPoints(config),
      started: [...new Set([...startedPids.keys()].map((c) => c.name))],
    };
  } catch (e) {
    if (startedPids.size > 0) {
      log(`stopping what this attempt started: ${[...startedPids.keys()].map((c) => c.label).join(', ')}`);
      await Promise.all(
        [...startedPids].map(async ([c, pid]) => {
          await stopPid(pid, c.graceMs);
          removeFile(c.pid);
        }),
      );
    }
    throw e;
  }
}

/**
 * A cluster is usable once Kafka's controller has every broker registered (topics with a replica per node need them
 * all) and the first Cassandra node sees every node in its ring with one schema. Waits for both, bounded.
 */
async function waitForCluster(config: StackConfig, log: Logger, signal?: AbortSignal): Promise<void> {
  const started = Date.now();
  const limit = Math.max(config.kafka.timeoutMs, config.cassandra.timeoutMs);
  let lastLog = started;
  for (;;) {
    if (signal?.aborted) throw new StackError('interrupted while waiting for the cluster to form');
    const [brokers, ring] = await Promise.all([
      countKafkaBrokers(kafkaBrokers(config)),
      ringState(cassandraContactPoint(config)),
    ]);
    if (brokers >= config.nodes && ring.nodes >= config.nodes && ring.schemaAgreed) return;
    const what = `Kafka brokers registered ${brokers}/${config.nodes}, Cassandra nodes in the ring ${ring.nodes}/${config.nodes}${ring.schemaAgreed ? '' : ', schema not agreed'}`;
    if (Date.now() - started > limit)
      throw new StackError(
        `the local cluster did not form within ${seconds(limit)}: ${what}`,
        "read the nodes' logs (npm run stack -- status --cluster names them)",
      );
    if (Date.now() - lastLog >= 10_000) {
      lastLog = Date.now();
      log(`waiting for the cluster to form: ${what}`);
    }
    await sleep(1000);
  }
}

export interface StackDownOptions {
  config?: StackConfig;
  log?: Logger;
  /** Only these components (default both). */
  only?: ComponentName[];
  /** Only these nodes of a cluster (default every node); e.g. stop one broker in a failure test. */
  nodes?: number[];
  /** Also delete the data folders of what it stops. */
  wipe?: boolean;
}

/** Per component: `stopped` when this call stopped one of its nodes, `external` when one answers that is not ours. */
export type DownResult = Record<ComponentName, 'stopped' | 'not-running' | 'external'>;

/** Stops what this launcher started (by pid file), gracefully; leaves a stranger on our ports alone. Idempotent. */
export async function stackDown(opts: StackDownOptions = {}): Promise<DownResult> {
  const config = opts.config ?? loadStackConfig();
  const log = opts.log ?? stderrLogger;
  const names = opts.only ?? (['kafka', 'cassandra'] as ComponentName[]);
  const chosen = components(config).filter(
    (c) => names.includes(c.name) && (opts.nodes === undefined || opts.nodes.includes(c.node)),
  );
  // The services hold the stack's clients: stopped first, unless only some nodes go (a failure test).
  if (opts.nodes === undefined) await stopServices(config, log);
  const outcome = await Promise.all(
    chosen.map(async (c): Promise<'stopped' | 'not-running' | 'external'> => {
      const own = livePid(c.pid);
      let result: 'stopped' | 'not-running' | 'external';
      if (own) {
        log(`stopping ${c.label} (pid ${own.pid})`);
        const how = await stopPid(own.pid, c.graceMs);
        log(`${c.label} ${how === 'killed' ? `did not stop within ${seconds(c.graceMs)}; killed` : 'stopped'}`);
        result = 'stopped';
      } else if (await isPortOpen(c.cfg.port, c.host)) {
        log(`${c.label} on ${c.at(c.cfg.port)} was not started by this launcher; left running`);
        result = 'external';
      } else result = 'not-running';
      removeFile(c.pid);
      return result;
    }),
  );
  const result = {} as DownResult;
  for (const name of names) {
    const mine = outcome.filter((_, i) => chosen[i]!.name === name);
    result[name] = mine.includes('stopped') ? 'stopped' : mine.includes('external') ? 'external' : 'not-running';
  }
  if (opts.wipe) {
    for (const c of chosen) rmSync(c.dir, { recursive: true, force: true });
    log(`wiped ${chosen.map((c) => c.dir).join(', ')}`);
  }
  return result;
}

export interface ComponentStatus {
  name: ComponentName;
  node: number;
  host: string;
  port: number;
  internalPort: number;
  /** running: started by this launcher and answering; starting: ours, not answering yet; external: answering, not ours. */
  state: 'running' | 'starting' | 'external' | 'stopped';
  pid?: number;
  identity?: string;
  log: string;
}

export interface StackStatus {
  /** Node 1 of each. */
  kafka: ComponentStatus;
  cassandra: ComponentStatus;
  /** Every node, Kafka's first. */
  nodes: ComponentStatus[];
}

export async function stackStatus(opts: { config?: StackConfig } = {}): Promise<StackStatus> {
  const config = opts.config ?? loadStackConfig();
  const one = async (c: Component): Promise<ComponentStatus> => {
    const own = livePid(c.pid);
    const identity = (await isPortOpen(c.cfg.port, c.host)) ? await c.probe() : undefined;
    const state = own ? (identity ? 'running' : 'starting') : identity ? 'external' : 'stopped';
    return {
      name: c.name,
      node: c.node,
      host: c.host,
      port: c.cfg.port,
      internalPort: c.cfg.internalPort,
      state,
      log: c.log,
      ...(own ? { pid: own.pid } : {}),
      ...(identity ? { identity } : {}),
    };
  };
  const nodes = await Promise.all(components(config).map(one));
  return {
    kafka: nodes.find((n) => n.name === 'kafka')!,
    cassandra: nodes.find((n) => n.name === 'cassandra')!,
    nodes,
  };
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
