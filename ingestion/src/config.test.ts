import { ConfigError, loadConfig, parseTokens } from './config';
import { TokenTable } from './auth';

describe('loadConfig', () => {
  it('traces only when an OTLP endpoint is set, and names a bad sample ratio with the other problems', () => {
    expect(loadConfig({ FLEETPULSE_ENV: 'development' }).tracing).toEqual({ endpoint: null, sampleRatio: 1 });
    expect(
      loadConfig({
        FLEETPULSE_ENV: 'development',
        OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318',
        FLEETPULSE_TRACE_SAMPLE_RATIO: '0.25',
      }).tracing,
    ).toEqual({ endpoint: 'http://collector:4318/v1/traces', sampleRatio: 0.25 });
    // One message names every problem: the ratio beside another variable's.
    expect(() =>
      loadConfig({ FLEETPULSE_TRACE_SAMPLE_RATIO: 'half', OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'collector:4318' }),
    ).toThrow(
      /no token configured[\s\S]*FLEETPULSE_TRACE_SAMPLE_RATIO: "half" is not a number from 0 to 1[\s\S]*OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: "collector:4318" is not an http\(s\) URL/,
    );
  });

  it('gives the contract defaults in development, with the dev token for every device', () => {
    const c = loadConfig({ FLEETPULSE_ENV: 'development' });
    expect(c.port).toBe(8080);
    expect(c.kafkaBrokers).toEqual(['127.0.0.1:9092']);
    expect(c.maxBodyBytes).toBe(5 * 1024 * 1024);
    expect(c.maxEventsPerRequest).toBe(10_000);
    expect(c.tokens).toEqual([{ token: 'dev-token', gateway: true }]);
    // Development listens on the loopback address only; production on every address.
    expect(c.host).toBe('127.0.0.1');
    expect(c.mqttHost).toBe('127.0.0.1');
    expect(loadConfig({ FLEETPULSE_TOKENS: 'prod-token-1' }).host).toBe('0.0.0.0');
    expect(loadConfig({ FLEETPULSE_ENV: 'development', FLEETPULSE_INGESTION_HOST: '0.0.0.0' }).host).toBe('0.0.0.0');
  });

  it('gives bounds that leave the simulator and the benchmarks alone', () => {
    const c = loadConfig({ FLEETPULSE_ENV: 'development' });
    expect(c.mqttMaxPacketBytes).toBe(5 * 1024 * 1024 + 65_536);
    expect(c.mqttMaxBufferedBytes).toBe(48 * 1024 * 1024);
    expect(c.mqttMaxConnections).toBe(10_000);
    expect(c.mqttConnectTimeoutMs).toBe(10_000);
    expect(c.mqttMaxKeepaliveSeconds).toBe(1200);
    expect(c.produceMaxRequestBytes).toBeNull();
    expect(c.limits).toEqual({
      tokenEventsPerSecond: 1_000_000,
      tokenEventsBurst: 1_000_000,
      deviceEventsPerSecond: 50_000,
      deviceEventsBurst: 100_000,
      rateMaxDevices: 100_000,
      loginFailuresPerMinute: 60,
      loginFailureBurst: 20,
      loginMaxAddresses: 100_000,
    });
    const set = loadConfig({
      FLEETPULSE_ENV: 'development',
      FLEETPULSE_MAX_BODY_BYTES: '1048576',
      FLEETPULSE_PRODUCE_MAX_REQUEST_BYTES: '262144',
      FLEETPULSE_DEVICE_EVENTS_PER_SECOND: '0',
    });
    expect(set.mqttMaxPacketBytes).toBe(1_048_576 + 65_536);
    expect(
      loadConfig({ FLEETPULSE_ENV: 'development', FLEETPULSE_MAX_BODY_BYTES: String(64 << 20) }).mqttMaxBufferedBytes,
    ).toBe(2 * ((64 << 20) + 65_536));
    expect(() =>
      loadConfig({
        FLEETPULSE_ENV: 'development',
        FLEETPULSE_MQTT_MAX_PACKET_BYTES: '2000000',
        FLEETPULSE_MQTT_MAX_BUFFERED_BYTES: '1000000',
      }),
    ).toThrow(/FLEETPULSE_MQTT_MAX_BUFFERED_BYTES: 1000000 is less than one packet/);
    expect(set.produceMaxRequestBytes).toBe(262_144);
    expect(set.limits.deviceEventsPerSecond).toBe(0);
  });

  it('reads gateway tokens apart from device tokens, and refuses a token listed twice', () => {
    const c = loadConfig({
      FLEETPULSE_TOKENS: 'device-token-1=pump-1',
      FLEETPULSE_GATEWAY_TOKENS: 'gw-token-1=pump-*',
    });
    expect(c.tokens).toEqual([
      { token: 'device-token-1', allowedDevices: 'pump-1' },
      { token: 'gw-token-1', allowedDevices: 'pump-*', gateway: true },
    ]);
    expect(() =>
      loadConfig({ FLEETPULSE_TOKENS: 'same-token-1', FLEETPULSE_GATEWAY_TOKENS: 'same-token-1=x*' }),
    ).toThrow(/a token of 12 chars is listed twice/);
    expect(parseTokens('short', 'FLEETPULSE_GATEWAY_TOKENS').problems[0]).toMatch(/^FLEETPULSE_GATEWAY_TOKENS entry 1/);
    // Listed explicitly in development, the dev token is what the list says.
    expect(loadConfig({ FLEETPULSE_ENV: 'development', FLEETPULSE_TOKENS: 'dev-token=sim-*' }).tokens).toEqual([
      { token: 'dev-token', allowedDevices: 'sim-*' },
    ]);
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
    expect(() =>
      loadConfig({
        FLEETPULSE_ENV: 'development',
        FLEETPULSE_MQTT_MAX_CONNECTIONS: '0',
        FLEETPULSE_PRODUCE_MAX_REQUEST_BYTES: 'big',
        FLEETPULSE_LOGIN_FAILURE_BURST: '0',
      }),
    ).toThrow(
      /FLEETPULSE_MQTT_MAX_CONNECTIONS[\s\S]*FLEETPULSE_PRODUCE_MAX_REQUEST_BYTES[\s\S]*FLEETPULSE_LOGIN_FAILURE_BURST/,
    );
  });

  it('takes the number of Kafka producers from 1 to 64, 1 by default, and names a bad one with the others', () => {
    expect(loadConfig({ FLEETPULSE_ENV: 'development' }).producers).toBe(1);
    expect(loadConfig({ FLEETPULSE_ENV: 'development', FLEETPULSE_INGESTION_PRODUCERS: '3' }).producers).toBe(3);
    expect(loadConfig({ FLEETPULSE_ENV: 'development', FLEETPULSE_INGESTION_PRODUCERS: '64' }).producers).toBe(64);
    for (const bad of ['0', '65', '2.5', 'two', '-1', ''])
      expect(() => loadConfig({ FLEETPULSE_ENV: 'development', FLEETPULSE_INGESTION_PRODUCERS: bad })).toThrow(
        /FLEETPULSE_INGESTION_PRODUCERS/,
      );
    expect(() =>
      loadConfig({
        FLEETPULSE_ENV: 'development',
        FLEETPULSE_INGESTION_PRODUCERS: '0',
        FLEETPULSE_MAX_BODY_BYTES: 'x',
      }),
    ).toThrow(/FLEETPULSE_MAX_BODY_BYTES[\s\S]*FLEETPULSE_INGESTION_PRODUCERS/);
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
