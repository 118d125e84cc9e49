// One-shot init of compose/docker-compose.yml: the contract's topics and schema on the Kafka and Cassandra named by
// FLEETPULSE_KAFKA_BROKERS and FLEETPULSE_CASSANDRA_CONTACT_POINTS (other hosts than the launcher's loopback), with
// FLEETPULSE_REPLICATION_FACTOR replicas of every topic and of the keyspace (default 1; the cluster profile's 3).
import { allTopics, cqlStatements } from '@fleetpulse/contracts';
import { applySchema } from './cassandra';
import { ensureTopics } from './kafka';

async function init(): Promise<void> {
  const brokers = (process.env.FLEETPULSE_KAFKA_BROKERS ?? '127.0.0.1:9092').split(',');
  const contactPoint = process.env.FLEETPULSE_CASSANDRA_CONTACT_POINTS ?? '127.0.0.1:9042';
  const partitions = Number(process.env.FLEETPULSE_TOPIC_PARTITIONS ?? '6');
  const rf = Number(process.env.FLEETPULSE_REPLICATION_FACTOR ?? '1');
  if (!Number.isInteger(rf) || rf < 1 || rf > 5) throw new Error('FLEETPULSE_REPLICATION_FACTOR must be 1-5');
  const t = await ensureTopics(brokers, allTopics, partitions, rf);
  process.stdout.write(`topics created: ${t.created.join(', ') || 'none (all present)'}, replication factor ${rf}\n`);
  await applySchema(contactPoint.split(',')[0]!, cqlStatements(), rf);
  process.stdout.write(`schema applied, keyspace replication factor ${rf}\n`);
}

init().then(
  () => process.exit(0),
  (e: unknown) => {
    process.stderr.write(`init failed: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exit(1);
  },
);
