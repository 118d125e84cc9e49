import { ConfigError, helpText, loadConfig } from './config';

describe('loadConfig: stored resolutions', () => {
  it('stores every default resolution unless told otherwise', () => {
    expect(loadConfig({}).storedResolutions).toEqual(['1s', '10s', '60s']);
    expect(loadConfig({ FLEETPULSE_STORED_RESOLUTIONS: '' }).storedResolutions).toEqual(['1s', '10s', '60s']);
  });

  it('takes the list the processor is given', () => {
    expect(loadConfig({ FLEETPULSE_STORED_RESOLUTIONS: '10s, 60s,10s' }).storedResolutions).toEqual(['10s', '60s']);
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
