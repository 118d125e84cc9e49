import { randomBytes } from 'node:crypto';
import { Kafka, logLevel, type Admin } from 'kafkajs';
import type { Client } from 'cassandra-driver';
import { cassandraClient } from '../cassandra';
import { cassandraContactPoint, kafkaBrokers } from '../config';

/** A name no other test (or earlier run) uses, like kafkajs's testHelpers: `<prefix>-<pid>-<random>`. */
export function uniqueName(prefix: string): string {
  return `${prefix}-${process.pid}-${randomBytes(6).toString('hex')}`;
}

export const testTopic = (): string => uniqueName('test-topic');
export const testGroupId = (): string => uniqueName('test-group');

/** A kafkajs client for the local stack (globalSetup brought it up); quiet, as its errors reach the test anyway. */
export function kafkaClient(clientId = uniqueName('test-client')): Kafka {
  return new Kafka({ clientId, brokers: kafkaBrokers(), logLevel: logLevel.NOTHING });
}

/** Creates a topic of its own for one test (auto-creation is off on our broker) and waits for its leaders. */
export async function createTestTopic(
  admin: Admin,
  opts: { topic?: string; partitions?: number } = {},
): Promise<string> {
  const topic = opts.topic ?? testTopic();
  await admin.createTopics({
    waitForLeaders: true,
    topics: [{ topic, numPartitions: opts.partitions ?? 1, replicationFactor: 1 }],
  });
  return topic;
}

/** A connected cassandra-driver client for the local stack; the caller shuts it down. */
export async function connectedCassandra(keyspace?: string): Promise<Client> {
  const client = cassandraClient(cassandraContactPoint(), keyspace ? { keyspace } : {});
  await client.connect();
  return client;
}
