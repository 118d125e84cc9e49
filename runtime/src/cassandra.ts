import { types, type ClientOptions } from 'cassandra-driver';
import { ServiceConfigError } from './errors';

/** Where a service's Cassandra is (contracts' ConnectionConfig has these fields). */
export interface CassandraConnection {
  cassandraContactPoints: string[];
  cassandraDataCenter: string;
  keyspace?: string;
}

/**
 * cassandra-driver options every service uses, so that one setting holds everywhere:
 * - Consistency LOCAL_QUORUM for reads and writes: on a cluster with three replicas a write is acknowledged by two
 *   and a read sees it, and one node may be down (contract v2, multi-node); on one node it is ONE.
 * - The native port of the contact points for the nodes the driver discovers: it reads `system.peers`, which has no
 *   port, so without this a cluster on another port than 9042 (the local cluster's 9142) is reached at the wrong one.
 */
export function cassandraClientOptions(
  service: string,
  conn: CassandraConnection,
  extra: Omit<ClientOptions, 'contactPoints' | 'localDataCenter'> = {},
): ClientOptions {
  const ports = new Set(conn.cassandraContactPoints.map((p) => /:(\d+)$/.exec(p)?.[1] ?? '9042'));
  if (ports.size > 1)
    throw new ServiceConfigError(service, [
      `FLEETPULSE_CASSANDRA_CONTACT_POINTS: every node must use the same native port (the driver reaches the nodes it discovers at one port), got ${[...ports].join(', ')}`,
    ]);
  return {
    ...extra,
    contactPoints: conn.cassandraContactPoints,
    localDataCenter: conn.cassandraDataCenter,
    ...(conn.keyspace !== undefined && extra.keyspace === undefined ? { keyspace: conn.keyspace } : {}),
    protocolOptions: { ...extra.protocolOptions, port: Number([...ports][0] ?? 9042) },
    queryOptions: { consistency: types.consistencies.localQuorum, ...extra.queryOptions },
  };
}
