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
});
