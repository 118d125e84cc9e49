import { ConfigError } from './errors';
import { fleetOptions, helpText, parseCommandLine, parseDuration, parseTime, type SimulatorConfig } from './config';

const NOW = Date.UTC(2025, 10, 22, 12, 0, 0);

function config(argv: string[], env: NodeJS.ProcessEnv = {}): SimulatorConfig {
  const parsed = parseCommandLine(argv, env, NOW);
  if (parsed.help) throw new Error('unexpected --help');
  return parsed.config;
}

function problems(argv: string[]): string[] {
  try {
    parseCommandLine(argv, {}, NOW);
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  throw new Error('expected a ConfigError');
}

describe('parseCommandLine', () => {
  it('has defaults for everything', () => {
    const c = config(['--seed', '5']);
    expect(c).toMatchObject({
      devices: 50,
      rate: 50,
      batch: 500,
      concurrency: 4,
      url: 'http://127.0.0.1:8080',
      token: 'dev-token',
      seed: 5,
      start: NOW,
      realtime: true,
      format: 'json',
      transport: 'http',
      httpClient: 'node',
      quiet: false,
    });
    expect(c.durationMs).toBeUndefined();
    expect(c.events).toBeUndefined();
  });

  it('takes the URL from FLEETPULSE_INGESTION_URL unless --url is given', () => {
    expect(config([], { FLEETPULSE_INGESTION_URL: 'http://ingest:9000' }).url).toBe('http://ingest:9000');
    expect(config(['--url', 'http://x:1'], { FLEETPULSE_INGESTION_URL: 'http://ingest:9000' }).url).toBe('http://x:1');
  });

  it('takes the token from FLEETPULSE_TOKEN unless --token is given', () => {
    expect(config([], { FLEETPULSE_TOKEN: 'env-token' }).token).toBe('env-token');
    expect(config(['--token', 'cli'], { FLEETPULSE_TOKEN: 'env-token' }).token).toBe('cli');
  });

  it('reads historic mode: --from, as fast as possible, up to now when unbounded', () => {
    const c = config(['--from', '2025-11-22T11:00:00Z']);
    expect(c.realtime).toBe(false);
    expect(c.start).toBe(NOW - 3_600_000);
    expect(c.durationMs).toBe(3_600_000);
    expect(fleetOptions(c).maxBatchSpanMs).toBeUndefined();
    expect(fleetOptions(config(['--linger', '100ms'])).maxBatchSpanMs).toBe(100);
  });

  it('reports every problem at once', () => {
    const list = problems([
      '--devices',
      '0',
      '--rate',
      'fast',
      '--format',
      'xml',
      '--duration',
      'soon',
      '--late-rate',
      '1.5',
      '--anomaly-kinds',
      'spike,boom',
      '--url',
      'ftp://x',
      '--from',
      '2030-01-01T00:00:00Z',
      '--realtime',
    ]);
    expect(list.join('\n')).toMatch(/--devices/);
    for (const needle of ['--rate', '--format', '--duration', '--late-rate', 'boom', '--url', 'future', 'exclude'])
      expect(list.some((p) => p.includes(needle))).toBe(true);
  });

  it('passes the fleet checks through: per-device rate over 1000/s', () => {
    expect(problems(['--devices', '2', '--rate', '5000']).join()).toMatch(/per device/);
  });

  it('names unknown options', () => {
    expect(problems(['--colour']).join()).toMatch(/colour/);
  });

  it('documents every option with its default in --help', () => {
    expect(parseCommandLine(['--help'], {}, NOW)).toEqual({ help: true });
    const text = helpText();
    for (const opt of ['--devices', '--rate', '--batch', '--concurrency', '--duration', '--events', '--url', '--token'])
      expect(text).toContain(opt);
    expect(text).toContain('[default: 500]');
    expect(text).toContain('events/s');
  });
});

describe('parseDuration and parseTime', () => {
  it('read units, and bare numbers as seconds', () => {
    expect(parseDuration('250ms')).toBe(250);
    expect(parseDuration('90')).toBe(90_000);
    expect(parseDuration('10m')).toBe(600_000);
    expect(parseDuration('1.5h')).toBe(5_400_000);
    expect(parseDuration('ten')).toBeUndefined();
  });

  it('read ISO times with offsets and epoch ms', () => {
    expect(parseTime('2025-11-22T12:00:00Z')).toBe(NOW);
    expect(parseTime('2025-11-22T13:00:00+01:00')).toBe(NOW);
    expect(parseTime(String(NOW))).toBe(NOW);
    expect(parseTime('2025-11-22T12:00:00')).toBeUndefined();
    expect(parseTime('yesterday')).toBeUndefined();
  });
});
