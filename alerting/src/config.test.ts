import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError, helpText, loadConfig } from './config';

const messageOf = (f: () => unknown): string => {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return (e as Error).message;
  }
  throw new Error('no error');
};

describe('alerting configuration', () => {
  it('requires a webhook secret in production (the default)', () => {
    expect(messageOf(() => loadConfig({}))).toMatch(/FLEETPULSE_ALERT_WEBHOOK_SECRET: required outside development/);
    expect(
      messageOf(() => loadConfig({ FLEETPULSE_ENV: 'production', FLEETPULSE_ALERT_WEBHOOK_SECRET: 'short' })),
    ).toMatch(/at least 16 characters/);
    expect(
      messageOf(() =>
        loadConfig({ FLEETPULSE_ENV: 'production', FLEETPULSE_ALERT_WEBHOOK_SECRET: 'dev-webhook-secret' }),
      ),
    ).toMatch(/development secret is refused/);
    const c = loadConfig({ FLEETPULSE_ENV: 'production', FLEETPULSE_ALERT_WEBHOOK_SECRET: 'x'.repeat(32) });
    expect(c).toMatchObject({ webhookSecret: 'x'.repeat(32), devSecret: false, httpPort: 8083, alertsTopic: 'alerts' });
  });

  it('signs with the development secret in development when none is set', () => {
    expect(loadConfig({ FLEETPULSE_ENV: 'development' })).toMatchObject({
      webhookSecret: 'dev-webhook-secret',
      devSecret: true,
    });
  });

  it('names every bad variable at once', () => {
    const m = messageOf(() =>
      loadConfig(
        {
          FLEETPULSE_ENV: 'development',
          FLEETPULSE_ALERT_WEBHOOK_TIMEOUT_MS: '5',
          FLEETPULSE_ALERTING_PORT: 'x',
          FLEETPULSE_KAFKA_BROKERS: 'nope',
        },
        ['--bogus'],
      ),
    );
    expect(m).toMatch(/unknown argument "--bogus"/);
    expect(m).toMatch(/FLEETPULSE_ALERT_WEBHOOK_TIMEOUT_MS/);
    expect(m).toMatch(/FLEETPULSE_ALERTING_PORT/);
    const m2 = messageOf(() =>
      loadConfig({
        FLEETPULSE_ENV: 'development',
        FLEETPULSE_KAFKA_BROKERS: 'nope',
        FLEETPULSE_ALERT_WEBHOOK_INITIAL_BACKOFF_MS: '5000',
        FLEETPULSE_ALERT_WEBHOOK_MAX_BACKOFF_MS: '1000',
      }),
    );
    expect(m2).toMatch(/FLEETPULSE_KAFKA_BROKERS: "nope" is not host:port/);
    expect(m2).toMatch(/MAX_BACKOFF_MS: less than/);
  });

  it('--help lists every variable it reads', () => {
    const names = [
      'FLEETPULSE_ENV',
      'FLEETPULSE_KAFKA_BROKERS',
      'FLEETPULSE_CASSANDRA_CONTACT_POINTS',
      'FLEETPULSE_CASSANDRA_DC',
      'FLEETPULSE_KEYSPACE',
      'FLEETPULSE_ALERTING_GROUP',
      'FLEETPULSE_ALERTING_WEBHOOK_GROUP',
      'FLEETPULSE_ALERTING_AGGREGATES_TOPIC',
      'FLEETPULSE_ALERTING_SCORES_TOPIC',
      'FLEETPULSE_ALERTING_ALERTS_TOPIC',
      'FLEETPULSE_ALERTING_RULES_REFRESH_MS',
      'FLEETPULSE_ALERTING_MAX_CACHED_STATES',
      'FLEETPULSE_ALERT_WEBHOOK_SECRET',
      'FLEETPULSE_ALERT_WEBHOOK_TIMEOUT_MS',
      'FLEETPULSE_ALERT_WEBHOOK_MAX_IN_FLIGHT',
      'FLEETPULSE_ALERT_WEBHOOK_PER_URL',
      'FLEETPULSE_ALERT_WEBHOOK_INITIAL_BACKOFF_MS',
      'FLEETPULSE_ALERT_WEBHOOK_MAX_BACKOFF_MS',
      'FLEETPULSE_ALERT_WEBHOOK_MAX_AGE_MS',
      'FLEETPULSE_ALERTING_SESSION_TIMEOUT_MS',
      'FLEETPULSE_ALERTING_HOST',
    ];
    for (const n of names) expect(helpText).toContain(n);
    // And nothing the schema reads is missing from that list.
    const src = readFileSync(join(__dirname, 'config.ts'), 'utf8');
    const read = new Set(src.match(/^\s+(FLEETPULSE_[A-Z_]+):/gm)!.map((s) => s.trim().slice(0, -1)));
    expect(read.size).toBeGreaterThan(15);
    // FLEETPULSE_ALERTING_PORT is listed as "FLEETPULSE_ALERTING_HOST / _PORT".
    const missing = [...read].filter((n) => !helpText.includes(n.replace(/_PORT$/, '_HOST')));
    expect(missing).toEqual([]);
  });
});
