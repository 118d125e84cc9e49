import { types } from 'cassandra-driver';
import { cassandraClientOptions } from './cassandra';
import { ServiceConfigError } from './errors';

describe('cassandraClientOptions', () => {
  it('writes and reads at LOCAL_QUORUM, and reaches discovered nodes at the contact points’ port', () => {
    const o = cassandraClientOptions('svc', {
      cassandraContactPoints: ['127.0.0.1:9142', '127.0.0.2:9142'],
      cassandraDataCenter: 'dc1',
      keyspace: 'fleetpulse',
    });
    expect(o).toMatchObject({
      contactPoints: ['127.0.0.1:9142', '127.0.0.2:9142'],
      localDataCenter: 'dc1',
      keyspace: 'fleetpulse',
      protocolOptions: { port: 9142 },
      queryOptions: { consistency: types.consistencies.localQuorum },
    });
  });

  it('defaults the port to 9042 and keeps the caller’s other options', () => {
    const o = cassandraClientOptions(
      'svc',
      { cassandraContactPoints: ['db'], cassandraDataCenter: 'dc1' },
      { pooling: { maxRequestsPerConnection: 2048 } },
    );
    expect(o.protocolOptions?.port).toBe(9042);
    expect(o.pooling).toEqual({ maxRequestsPerConnection: 2048 });
    expect(o.keyspace).toBeUndefined();
  });

  it('refuses contact points on different ports, naming the variable', () => {
    expect(() =>
      cassandraClientOptions('svc', { cassandraContactPoints: ['a:9042', 'b:9142'], cassandraDataCenter: 'dc1' }),
    ).toThrow(ServiceConfigError);
    expect(() =>
      cassandraClientOptions('svc', { cassandraContactPoints: ['a:9042', 'b:9142'], cassandraDataCenter: 'dc1' }),
    ).toThrow(/FLEETPULSE_CASSANDRA_CONTACT_POINTS/);
  });
});
