import { ConfigError, helpText, loadConfig, RetiredEnv } from './config';

describe('loadConfig', () => {
  it('still starts with the v1 feature-wait variables set, whatever their value, and names them as ignored', () => {
    const c = loadConfig({ FLEETPULSE_SCORING_MAX_WAIT_MS: '1000', FLEETPULSE_SCORING_TICK_MS: 'not a number' });
    expect(c.ignored).toEqual([
      expect.stringMatching(/^FLEETPULSE_SCORING_MAX_WAIT_MS is ignored \(/),
      expect.stringMatching(/^FLEETPULSE_SCORING_TICK_MS is ignored \(/),
    ]);
    expect(c).not.toHaveProperty('maxWaitMs');
    expect(c).not.toHaveProperty('tickMs');
  });

  it('says nothing when they are not set', () => {
    expect(loadConfig({}).ignored).toEqual([]);
  });

  it('names every bad variable in one error', () => {
    expect(() => loadConfig({ FLEETPULSE_SCORING_MAX_BATCH: '0', FLEETPULSE_SCORING_PORT: 'x' })).toThrow(ConfigError);
    expect(() => loadConfig({ FLEETPULSE_SCORING_MAX_BATCH: '0', FLEETPULSE_SCORING_PORT: 'x' })).toThrow(
      /FLEETPULSE_SCORING_MAX_BATCH[\s\S]*FLEETPULSE_SCORING_PORT/,
    );
  });

  it('--help lists the retired variables as ignored, not as settings', () => {
    for (const name of Object.keys(RetiredEnv)) {
      expect(helpText).not.toMatch(new RegExp(`^  ${name}`, 'm'));
      expect(helpText).toContain(name);
    }
  });

  it('bounds model files and quarantine: defaults, overrides, refusals, and each one in --help', () => {
    const d = loadConfig({});
    expect([d.maxModelBytes, d.quarantineCrashes, d.quarantineWindowMs]).toEqual([256 * 1024 * 1024, 3, 600_000]);
    const c = loadConfig({
      FLEETPULSE_SCORING_MAX_MODEL_MB: '10',
      FLEETPULSE_SCORING_QUARANTINE_CRASHES: '1',
      FLEETPULSE_SCORING_QUARANTINE_WINDOW_MS: '60000',
    });
    expect([c.maxModelBytes, c.quarantineCrashes, c.quarantineWindowMs]).toEqual([10 * 1024 * 1024, 1, 60_000]);
    expect(() =>
      loadConfig({ FLEETPULSE_SCORING_MAX_MODEL_MB: '2048', FLEETPULSE_SCORING_QUARANTINE_CRASHES: '0' }),
    ).toThrow(/FLEETPULSE_SCORING_MAX_MODEL_MB[\s\S]*FLEETPULSE_SCORING_QUARANTINE_CRASHES/);
    for (const name of [
      'FLEETPULSE_SCORING_MAX_MODEL_MB',
      'FLEETPULSE_SCORING_QUARANTINE_CRASHES',
      'FLEETPULSE_SCORING_QUARANTINE_WINDOW_MS',
    ])
      expect(helpText).toMatch(new RegExp(`^  ${name} `, 'm'));
  });
});
