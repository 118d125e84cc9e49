import { DevToken } from '@fleetpulse/contracts';
import { ConfigError, helpText, loadConfig } from './config';

/** The problems loadConfig names for `env`, or none. */
function problemsOf(env: NodeJS.ProcessEnv): string[] {
  try {
    loadConfig(env);
    return [];
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    return e.problems;
  }
}

const dev = { FLEETPULSE_ENV: 'development' };

describe('loadConfig: stored resolutions', () => {
  it('stores every default resolution unless told otherwise', () => {
    expect(loadConfig(dev).storedResolutions).toEqual(['1s', '10s', '60s']);
    expect(loadConfig({ ...dev, FLEETPULSE_STORED_RESOLUTIONS: '' }).storedResolutions).toEqual(['1s', '10s', '60s']);
  });

  it('takes the list the processor is given', () => {
    expect(loadConfig({ ...dev, FLEETPULSE_STORED_RESOLUTIONS: '10s, 60s,10s' }).storedResolutions).toEqual([
      '10s',
      '60s',
    ]);
  });

  it('names a bad one among every other bad variable, at start-up', () => {
    let err: unknown;
    try {
      loadConfig({ FLEETPULSE_STORED_RESOLUTIONS: '10s,1m', FLEETPULSE_KAFKA_BROKERS: 'nohost' });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    const { problems } = err as ConfigError;
    expect(problems.some((p) => p.startsWith('FLEETPULSE_STORED_RESOLUTIONS:') && p.includes('"1m"'))).toBe(true);
    expect(problems.some((p) => p.includes('FLEETPULSE_KAFKA_BROKERS'))).toBe(true);
  });

  it('is listed by --help', () => {
    expect(helpText).toMatch(/FLEETPULSE_STORED_RESOLUTIONS +resolutions the stream-processor stores/);
  });
});

describe('loadConfig: access', () => {
  it('needs a dashboard token outside development, and names both variables', () => {
    expect(problemsOf({})).toEqual([
      expect.stringMatching(/^FLEETPULSE_DASHBOARD_VIEWER_TOKENS \/ _ADMIN_TOKENS: no dashboard token configured/),
    ]);
  });

  it('makes the dev token an admin for every device in development only', () => {
    const { grants, development } = loadConfig(dev);
    expect(development).toBe(true);
    expect(grants).toEqual([expect.objectContaining({ id: 'development', role: 'admin' })]);
    expect(grants[0]!.scope.all).toBe(true);
    const prod = loadConfig({ FLEETPULSE_DASHBOARD_ADMIN_TOKENS: 'admin-token-1' });
    expect(prod.grants.map((g) => g.id)).toEqual(['admin-1']);
  });

  it("reads both roles in ingestion's token syntax: a token listed again adds its device glob", () => {
    const { grants } = loadConfig({
      FLEETPULSE_DASHBOARD_VIEWER_TOKENS: 'viewer-all-1, tenant-token-1=acme-*,tenant-token-1=pump-??',
      FLEETPULSE_DASHBOARD_ADMIN_TOKENS: 'admin-token-1=acme-*',
    });
    expect(grants.map((g) => [g.id, g.role, g.scope.patterns])).toEqual([
      ['viewer-1', 'viewer', null],
      ['viewer-2', 'viewer', ['acme-*', 'pump-??']],
      ['admin-3', 'admin', ['acme-*']],
    ]);
    // Only digests are kept.
    expect(JSON.stringify(grants)).not.toContain('tenant-token-1');
  });

  it('names every bad token entry, a token with two roles, and the dev token configured by hand', () => {
    const problems = problemsOf({
      ...dev,
      FLEETPULSE_DASHBOARD_VIEWER_TOKENS: 'short,good-token-1=bad glob,both-token-1',
      FLEETPULSE_DASHBOARD_ADMIN_TOKENS: `both-token-1,${DevToken}`,
    });
    expect(problems).toEqual([
      'FLEETPULSE_DASHBOARD_VIEWER_TOKENS entry 1: a token is 8-256 chars of [A-Za-z0-9._~+/-]',
      'FLEETPULSE_DASHBOARD_VIEWER_TOKENS entry 2: device pattern "bad glob" may use [A-Za-z0-9._:-] and the wildcards * ?',
      `FLEETPULSE_DASHBOARD_ADMIN_TOKENS entry 2: ${DevToken} is the public development token; choose another`,
      'FLEETPULSE_DASHBOARD_VIEWER_TOKENS and _ADMIN_TOKENS name the same token: give it one role',
    ]);
  });

  it('takes CORS origins as browsers send them, and no other form', () => {
    expect(loadConfig(dev).corsOrigins).toEqual([]);
    expect(
      loadConfig({ ...dev, FLEETPULSE_DASHBOARD_CORS_ORIGINS: 'https://ops.example.com, http://127.0.0.1:5173' })
        .corsOrigins,
    ).toEqual(['https://ops.example.com', 'http://127.0.0.1:5173']);
    expect(
      problemsOf({ ...dev, FLEETPULSE_DASHBOARD_CORS_ORIGINS: '*,https://a.example/path,ops.example.com' }),
    ).toEqual([
      'FLEETPULSE_DASHBOARD_CORS_ORIGINS: "*" is not an origin such as https://ops.example.com',
      'FLEETPULSE_DASHBOARD_CORS_ORIGINS: "https://a.example/path" is not an origin such as https://ops.example.com',
      'FLEETPULSE_DASHBOARD_CORS_ORIGINS: "ops.example.com" is not an origin such as https://ops.example.com',
    ]);
  });

  it('has bounded sessions and sockets by default', () => {
    expect(loadConfig(dev)).toMatchObject({
      sessionTtlMs: 12 * 3_600_000,
      maxSessions: 10_000,
      maxSessionsPerToken: 1000,
      cookieSecure: false,
      liveMaxSubscriptions: 100,
      liveMaxSocketsPerToken: 500,
      liveMaxBacklogBytes: 16 * 1024 * 1024,
      liveResolutions: ['1s', '10s', '60s'],
    });
    expect(
      loadConfig({ ...dev, FLEETPULSE_RESOLUTIONS: '5s,30s', FLEETPULSE_STORED_RESOLUTIONS: '30s' }).liveResolutions,
    ).toEqual(['5s', '30s']);
    expect(problemsOf({ ...dev, FLEETPULSE_RESOLUTIONS: '1m', FLEETPULSE_DASHBOARD_COOKIE_SECURE: 'yes' })).toEqual([
      expect.stringMatching(/^FLEETPULSE_DASHBOARD_COOKIE_SECURE: /),
    ]);
    expect(problemsOf({ ...dev, FLEETPULSE_RESOLUTIONS: '1m' })).toEqual([
      'FLEETPULSE_RESOLUTIONS: resolution "1m" is not of the form <seconds>s, e.g. 10s',
    ]);
  });

  it('lists the access variables in --help', () => {
    for (const v of [
      'FLEETPULSE_DASHBOARD_VIEWER_TOKENS',
      'FLEETPULSE_DASHBOARD_ADMIN_TOKENS',
      'FLEETPULSE_DASHBOARD_CORS_ORIGINS',
      'FLEETPULSE_DASHBOARD_SESSION_TTL_SECONDS',
      'FLEETPULSE_DASHBOARD_MAX_SESSIONS',
      'FLEETPULSE_DASHBOARD_MAX_SESSIONS_PER_TOKEN',
      'FLEETPULSE_DASHBOARD_COOKIE_SECURE',
      'FLEETPULSE_LIVE_MAX_SUBSCRIPTIONS',
      'FLEETPULSE_LIVE_MAX_SOCKETS_PER_TOKEN',
      'FLEETPULSE_LIVE_MAX_BACKLOG_BYTES',
      'FLEETPULSE_RESOLUTIONS',
    ])
      expect(helpText).toContain(`  ${v} `);
  });
});
