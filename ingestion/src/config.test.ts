import { ConfigError, loadConfig, parseTokens } from './config';
import { TokenTable } from './auth';

describe('loadConfig', () => {
  it('gives the contract defaults in development, with the dev token for every device', () => {
    const c = loadConfig({ FLEETPULSE_ENV: 'development' });
    expect(c.port).toBe(8080);
    expect(c.kafkaBrokers).toEqual(['127.0.0.1:9092']);
    expect(c.maxBodyBytes).toBe(5 * 1024 * 1024);
    expect(c.maxEventsPerRequest).toBe(10_000);
    expect(c.tokens).toEqual([{ token: 'dev-token' }]);
  });

  it('has no default token outside development', () => {
    expect(() => loadConfig({})).toThrow(/no token configured/);
    const c = loadConfig({ FLEETPULSE_TOKENS: 'prod-token-1=sensor-*' });
    expect(c.tokens).toEqual([{ token: 'prod-token-1', allowedDevices: 'sensor-*' }]);
  });

  it('lists every bad variable in one error', () => {
    let error: unknown;
    try {
      loadConfig({
        FLEETPULSE_ENV: 'development',
        FLEETPULSE_INGESTION_PORT: '70000',
        FLEETPULSE_MAX_BODY_BYTES: 'lots',
      });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const problems = (error as ConfigError).problems.join('\n');
    expect(problems).toMatch(/FLEETPULSE_INGESTION_PORT/);
    expect(problems).toMatch(/FLEETPULSE_MAX_BODY_BYTES/);
  });

  it('rejects malformed brokers and tokens with the entry that is wrong', () => {
    expect(() => loadConfig({ FLEETPULSE_ENV: 'development', FLEETPULSE_KAFKA_BROKERS: 'localhost' })).toThrow(
      /"localhost" is not host:port/,
    );
    expect(parseTokens('short').problems[0]).toMatch(/entry 1: a token is 8-256 chars/);
    expect(parseTokens('long-enough-token=bad glob').problems[0]).toMatch(/device pattern "bad glob"/);
    expect(parseTokens(' a-valid-token , another-token=dev-? ').grants).toEqual([
      { token: 'a-valid-token' },
      { token: 'another-token', allowedDevices: 'dev-?' },
    ]);
  });
});

describe('TokenTable', () => {
  const table = new TokenTable([{ token: 'first-token' }, { token: 'second-token', allowedDevices: 'pump-*' }]);

  it('finds the grant of a bearer header', () => {
    expect(table.fromAuthorizationHeader('Bearer second-token')).toEqual({
      token: 'second-token',
      allowedDevices: 'pump-*',
    });
    expect(table.fromAuthorizationHeader('bearer first-token')).toEqual({ token: 'first-token' });
  });

  it('refuses absent, malformed and unknown tokens', () => {
    expect(table.fromAuthorizationHeader(undefined)).toBeUndefined();
    expect(table.fromAuthorizationHeader('Basic Zmlyc3QtdG9rZW4=')).toBeUndefined();
    expect(table.fromAuthorizationHeader('Bearer first-tokeN')).toBeUndefined();
    expect(table.fromAuthorizationHeader('Bearer first-token-longer')).toBeUndefined();
    expect(table.fromAuthorizationHeader('Bearer first-toke')).toBeUndefined();
    expect(table.lookup('')).toBeUndefined();
  });

  it('takes an MQTT password as bytes, and keeps the first grant of a token given twice', () => {
    expect(table.lookup(Buffer.from('second-token'))).toEqual({ token: 'second-token', allowedDevices: 'pump-*' });
    const twice = new TokenTable([{ token: 'twice-token', allowedDevices: 'a*' }, { token: 'twice-token' }]);
    expect(twice.lookup('twice-token')).toEqual({ token: 'twice-token', allowedDevices: 'a*' });
  });
});
