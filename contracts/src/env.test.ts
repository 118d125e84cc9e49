import { z } from 'zod';
import { connectionConfig, connectionEnv, envInt, envList } from './env';

describe('the shared configuration vocabulary', () => {
  it('reads whole numbers within bounds, with messages that say the bound', () => {
    const port = envInt(0, 65535);
    expect(port.parse('8080')).toBe(8080);
    expect(port.safeParse('8.5').error?.issues[0]?.message).toBe('must be a whole number');
    expect(port.safeParse('70000').error?.issues[0]?.message).toBe('must be at most 65535');
  });

  it('splits lists, dropping blanks', () => {
    expect(envList(' a, b,,c ')).toEqual(['a', 'b', 'c']);
  });

  it('defaults the connections to the local stack and names every bad host:port', () => {
    const e = z.object(connectionEnv).parse({});
    const ok: string[] = [];
    expect(connectionConfig(e, ok)).toEqual({
      kafkaBrokers: ['127.0.0.1:9092'],
      cassandraContactPoints: ['127.0.0.1:9042'],
      cassandraDataCenter: 'datacenter1',
      keyspace: 'fleetpulse',
    });
    expect(ok).toEqual([]);
    const problems: string[] = [];
    connectionConfig(
      { ...e, FLEETPULSE_KAFKA_BROKERS: 'kafka:9092,broker', FLEETPULSE_CASSANDRA_CONTACT_POINTS: ' ' },
      problems,
    );
    expect(problems).toEqual([
      'FLEETPULSE_KAFKA_BROKERS: "broker" is not host:port',
      'FLEETPULSE_CASSANDRA_CONTACT_POINTS: give at least one host:port',
    ]);
    expect(z.object(connectionEnv).safeParse({ FLEETPULSE_KEYSPACE: 'Bad-Name' }).success).toBe(false);
  });
});
