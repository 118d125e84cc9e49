import { randomBytes } from 'node:crypto';
import { Kafka, logLevel, type Admin } from 'kafkajs';
import type { Client } from 'cassandra-driver';
import { cassandraClient } from '../cassandra';
import { cassandraContactPoint, kafkaBrokers, loadStackConfig, type StackConfig } from '../config';

/** A name no other test (or earlier run) uses, like kafkajs's testHelpers: `<prefix>-<pid>-<random>`. */
export function uniqueName(prefix: string): string {
  return `${prefix}-${process.pid}-${randomBytes(6).toString('hex')}`;
}

export const testTopic = (): string => uniqueName('test-topic');
export const testGroupId = (): string => uniqueName('test-group');

/**
 * A kafkajs client for the local stack (globalSetup brought it up), or for `config`'s (a local cluster); quiet, as its
 * errors reach the test anyway.
 */
export function kafkaClient(clientId = uniqueName('test-client'), config: StackConfig = loadStackConfig()): Kafka {
  return new Kafka({ clientId, brokers: kafkaBrokers(config), logLevel: logLevel.NOTHING });
}

/** Creates a topic of its own for one test (auto-creation is off on our broker) and waits for its leaders. */
export async function createTestTopic(
  admin: Admin,
  opts: { topic?: string; partitions?: number; replicationFactor?: number } = {},
): Promise<string> {
  const topic = opts.topic ?? testTopic();
  await admin.createTopics({
    waitForLeaders: true,
    topics: [{ topic, numPartitions: opts.partitions ?? 1, replicationFactor: opts.replicationFactor ?? 1 }],
  });
  return topic;
}

/** A connected cassandra-driver client for the local stack (or `config`'s); the caller shuts it down. */
export async function connectedCassandra(keyspace?: string, config: StackConfig = loadStackConfig()): Promise<Client> {
  const client = cassandraClient(cassandraContactPoint(config), keyspace ? { keyspace } : {});
  await client.connect();
  return client;
}
