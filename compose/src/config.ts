import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { DefaultPorts } from '@fleetpulse/contracts';
import { z } from 'zod';
import { StackError } from './errors';

/** Root of the repository: this file is compose/src/config.ts (tests) or compose/dist/config.js (built). */
export const repoRoot = resolve(__dirname, '..', '..');

/** Versions resolved from Maven Central; both run on Java 17 (Kafka 4.x needs 17+, Cassandra 5.0 supports 11/17). */
export const DefaultVersions = { kafka: '4.1.2', cassandra: '5.0.9' } as const;

/** The stack always binds loopback only: it is a development stack, never reachable from the network. */
export const StackHost = '127.0.0.1';

/** Node `n` (1-based) of a local cluster listens on its own loopback address, 127.0.0.n (all of 127/8 is loopback). */
export const nodeHost = (node: number): string => `127.0.0.${node}`;

/**
 * A local cluster's ports (`--cluster`, FLEETPULSE_STACK_NODES=3) are the single-node stack's plus 100 (set or
 * default), so a cluster and the single-node stack always run side by side: node 1 shares 127.0.0.1 with it.
 */
export const ClusterPortOffset = 100;

export interface ComponentConfig {
  /** The client port (Kafka PLAINTEXT, Cassandra native CQL). */
  port: number;
  /** The second port the process binds (Kafka KRaft controller, Cassandra inter-node storage). */
  internalPort: number;
  /** -Xmx/-Xms value, e.g. `512m`. */
  heap: string;
  version: string;
  /** How long `up` waits for the process to answer, ms. */
  timeoutMs: number;
}

export interface StackConfig {
  /** Data, configs, logs and pid files. */
  stackDir: string;
  /** Maven cache: jars under `repository/`, our generated poms and classpaths under `classpaths/`. */
  m2Dir: string;
  java: string;
  mvn: string;
  kafka: ComponentConfig;
  cassandra: ComponentConfig;
  /** 1 (the default), or a local cluster of this many Kafka brokers and Cassandra nodes, node n on 127.0.0.n. */
  nodes: number;
  /** Replicas of every topic and of the keyspace: the node count, at most 3. */
  replicationFactor: number;
  /** Kafka's min.insync.replicas: 2 on a cluster (one broker may be down), else 1. */
  minInsyncReplicas: number;
  topicPartitions: number;
  /** How long the Maven resolution may take, ms (a cold cache downloads ~250 MB). */
  resolveTimeoutMs: number;
}

const port = z.coerce.number().int('must be a whole number').min(1, 'must be 1-65535').max(65535, 'must be 1-65535');
const ms = (def: number) =>
  z.coerce.number().int('must be a whole number of ms').min(1000, 'must be at least 1000 ms').default(def);
const heap = (def: string) =>
  z
    .string()
    .regex(/^\d+[mMgG]$/, 'must look like 512m or 1g')
    .refine((v) => heapMb(v) >= 128, 'must be at least 128m')
    .default(def);
const version = (def: string) =>
  z
    .string()
    .regex(/^\d+\.\d+\.\d+$/, 'must be a release version such as 1.2.3')
    .default(def);

const envSchema = z.object({
  FLEETPULSE_STACK_DIR: z.string().min(1).optional(),
  FLEETPULSE_M2: z.string().min(1).optional(),
  FLEETPULSE_JAVA: z.string().min(1).optional(),
  JAVA_HOME: z.string().optional(),
  FLEETPULSE_MVN: z.string().min(1).default('mvn'),
  FLEETPULSE_STACK_NODES: z.coerce.number().int('must be a whole number').min(1).max(3, 'at most 3').default(1),
  FLEETPULSE_KAFKA_PORT: port.optional(),
  FLEETPULSE_KAFKA_CONTROLLER_PORT: port.optional(),
  FLEETPULSE_CASSANDRA_PORT: port.optional(),
  FLEETPULSE_CASSANDRA_STORAGE_PORT: port.optional(),
  FLEETPULSE_KAFKA_HEAP: heap('512m'),
  FLEETPULSE_CASSANDRA_HEAP: heap('1g'),
  FLEETPULSE_KAFKA_VERSION: version(DefaultVersions.kafka),
  FLEETPULSE_CASSANDRA_VERSION: version(DefaultVersions.cassandra),
  FLEETPULSE_TOPIC_PARTITIONS: z.coerce.number().int('must be a whole number').min(1).max(1000).default(6),
  FLEETPULSE_KAFKA_TIMEOUT_MS: ms(90_000),
  FLEETPULSE_CASSANDRA_TIMEOUT_MS: ms(180_000),
  FLEETPULSE_RESOLVE_TIMEOUT_MS: ms(900_000),
});

/**
 * -Xms for a -Xmx of `heap`: at most 256 MB. Servers set both equal; on a dev machine an idle stack should not hold
 * its full heap (Cassandra mlockall()s what is committed at start when it runs as root).
 */
export function initialHeap(heap: string): string {
  return heapMb(heap) > 256 ? '256m' : heap;
}

export function heapMb(v: string): number {
  const n = Number.parseInt(v, 10);
  return /[gG]$/.test(v) ? n * 1024 : n;
}

let cached: StackConfig | undefined;

/**
 * Reads and validates the stack's environment variables, all at once: one StackError lists every bad variable.
 * Cached when reading process.env; pass an env object (tests) to bypass the cache.
 */
export function loadStackConfig(env?: NodeJS.ProcessEnv): StackConfig {
  if (env === undefined && cached) return cached;
  const source = env ?? process.env;
  // Empty strings count as unset, as a shell's `FOO= cmd` usually means "not this one".
  const cleaned = Object.fromEntries(Object.entries(source).filter(([, v]) => v !== undefined && v !== ''));
  const parsed = envSchema.safeParse(cleaned);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
    throw new StackError(`invalid stack configuration: ${problems.join('; ')}`, 'fix or unset the variables named');
  }
  const e = parsed.data;
  const nodes = e.FLEETPULSE_STACK_NODES;
  const offset = nodes > 1 ? ClusterPortOffset : 0;
  const ports: [string, number][] = [
    ['FLEETPULSE_KAFKA_PORT', (e.FLEETPULSE_KAFKA_PORT ?? DefaultPorts.kafka) + offset],
    ['FLEETPULSE_KAFKA_CONTROLLER_PORT', (e.FLEETPULSE_KAFKA_CONTROLLER_PORT ?? DefaultPorts.kafkaController) + offset],
    ['FLEETPULSE_CASSANDRA_PORT', (e.FLEETPULSE_CASSANDRA_PORT ?? DefaultPorts.cassandra) + offset],
    ['FLEETPULSE_CASSANDRA_STORAGE_PORT', (e.FLEETPULSE_CASSANDRA_STORAGE_PORT ?? 7000) + offset],
  ];
  const [kafkaPort, controllerPort, cassandraPort, storagePort] = ports.map(([, p]) => p) as [
    number,
    number,
    number,
    number,
  ];
  const clashes = ports.filter(([name, p]) => ports.some(([other, q]) => other !== name && q === p));
  if (clashes.length > 0) {
    throw new StackError(
      `invalid stack configuration: ports must differ: ${clashes.map(([n, p]) => `${n}=${p}`).join(', ')}`,
      'give each of these variables its own port',
    );
  }
  const java = e.FLEETPULSE_JAVA ?? (e.JAVA_HOME ? join(e.JAVA_HOME, 'bin', 'java') : 'java');
  const config: StackConfig = {
    stackDir: resolve(e.FLEETPULSE_STACK_DIR ?? join(repoRoot, '.fleetpulse')),
    m2Dir: resolve(e.FLEETPULSE_M2 ?? join(homedir(), '.cache', 'fleetpulse', 'm2')),
    java,
    mvn: e.FLEETPULSE_MVN,
    kafka: {
      port: kafkaPort,
      internalPort: controllerPort,
      heap: e.FLEETPULSE_KAFKA_HEAP,
      version: e.FLEETPULSE_KAFKA_VERSION,
      timeoutMs: e.FLEETPULSE_KAFKA_TIMEOUT_MS,
    },
    cassandra: {
      port: cassandraPort,
      internalPort: storagePort,
      heap: e.FLEETPULSE_CASSANDRA_HEAP,
      version: e.FLEETPULSE_CASSANDRA_VERSION,
      timeoutMs: e.FLEETPULSE_CASSANDRA_TIMEOUT_MS,
    },
    nodes,
    replicationFactor: Math.min(nodes, 3),
    minInsyncReplicas: nodes > 1 ? 2 : 1,
    topicPartitions: e.FLEETPULSE_TOPIC_PARTITIONS,
    resolveTimeoutMs: e.FLEETPULSE_RESOLVE_TIMEOUT_MS,
  };
  if (env === undefined) cached = config;
  return config;
}

/** Which env var moves each port, for error messages. */
export const PortVars = {
  kafka: { port: 'FLEETPULSE_KAFKA_PORT', internalPort: 'FLEETPULSE_KAFKA_CONTROLLER_PORT' },
  cassandra: { port: 'FLEETPULSE_CASSANDRA_PORT', internalPort: 'FLEETPULSE_CASSANDRA_STORAGE_PORT' },
} as const;

/** The stack's configuration as a local cluster of `nodes` (the CLI's `--cluster`), other settings as in `env`. */
export function clusterStackConfig(env: NodeJS.ProcessEnv = process.env, nodes = 3): StackConfig {
  return loadStackConfig({ ...env, FLEETPULSE_STACK_NODES: String(nodes) });
}

/** Node numbers, 1-based. */
export const nodeNumbers = (config: StackConfig): number[] => Array.from({ length: config.nodes }, (_, i) => i + 1);

/** `host:port` of every local Kafka broker, as kafkajs takes them. */
export function kafkaBrokers(config: StackConfig = loadStackConfig()): string[] {
  return nodeNumbers(config).map((n) => `${nodeHost(n)}:${config.kafka.port}`);
}

/** `host:port` of the local Cassandra (its first node), as cassandra-driver takes it in contactPoints. */
export function cassandraContactPoint(config: StackConfig = loadStackConfig()): string {
  return `${StackHost}:${config.cassandra.port}`;
}

/** `host:port` of every local Cassandra node. */
export function cassandraContactPoints(config: StackConfig = loadStackConfig()): string[] {
  return nodeNumbers(config).map((n) => `${nodeHost(n)}:${config.cassandra.port}`);
}

/** The data center SimpleSnitch reports; cassandra-driver's default load balancing needs it. */
export const CassandraDataCenter = 'datacenter1';
