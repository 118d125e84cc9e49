import { z } from 'zod';
import { DefaultPorts, Keyspace } from './defaults';

/**
 * The configuration vocabulary every service shares (docs/contract.md, "Running it": ports and connections are
 * configurable by environment variable and validated at start-up): the same names, defaults and messages everywhere.
 */

/** A whole number read from an environment variable, within [min, max]. */
export const envInt = (min: number, max: number) =>
  z.coerce
    .number()
    .int('must be a whole number')
    .min(min, `must be at least ${min}`)
    .max(max, `must be at most ${max}`);

/** "a, b,,c" -> ["a", "b", "c"]. */
export function envList(value: string): string[] {
  return value
    .split(',')
    .map((x) => x.trim())
    .filter((x) => x.length > 0);
}

/** How a service reaches Kafka and Cassandra: spread into its zod schema. */
export const connectionEnv = {
  FLEETPULSE_KAFKA_BROKERS: z.string().default(`127.0.0.1:${DefaultPorts.kafka}`),
  FLEETPULSE_CASSANDRA_CONTACT_POINTS: z.string().default(`127.0.0.1:${DefaultPorts.cassandra}`),
  FLEETPULSE_CASSANDRA_DC: z.string().min(1).default('datacenter1'),
  FLEETPULSE_KEYSPACE: z
    .string()
    .regex(/^[a-z][a-z0-9_]{0,47}$/, 'must be a CQL identifier')
    .default(Keyspace),
};

/** A host:port list such as FLEETPULSE_KAFKA_BROKERS; what is wrong with it goes to `problems`, named. */
export function hostPortList(name: string, value: string, problems: string[]): string[] {
  const items = envList(value);
  if (items.length === 0) problems.push(`${name}: give at least one host:port`);
  for (const item of items) if (!/^[^:\s]+:\d{1,5}$/.test(item)) problems.push(`${name}: "${item}" is not host:port`);
  return items;
}

export interface ConnectionConfig {
  kafkaBrokers: string[];
  cassandraContactPoints: string[];
  cassandraDataCenter: string;
  keyspace: string;
}

/** The parsed {@link connectionEnv} variables; what is wrong with them goes to `problems`, named. */
export function connectionConfig(
  e: {
    FLEETPULSE_KAFKA_BROKERS: string;
    FLEETPULSE_CASSANDRA_CONTACT_POINTS: string;
    FLEETPULSE_CASSANDRA_DC: string;
    FLEETPULSE_KEYSPACE: string;
  },
  problems: string[],
): ConnectionConfig {
  return {
    kafkaBrokers: hostPortList('FLEETPULSE_KAFKA_BROKERS', e.FLEETPULSE_KAFKA_BROKERS, problems),
    cassandraContactPoints: hostPortList(
      'FLEETPULSE_CASSANDRA_CONTACT_POINTS',
      e.FLEETPULSE_CASSANDRA_CONTACT_POINTS,
      problems,
    ),
    cassandraDataCenter: e.FLEETPULSE_CASSANDRA_DC,
    keyspace: e.FLEETPULSE_KEYSPACE,
  };
}
