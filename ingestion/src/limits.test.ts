import { RateLimits, type RateLimitConfig } from './limits';

describe('RateLimits', () => {
  const config: RateLimitConfig = {
    tokenEventsPerSecond: 1000,
    tokenEventsBurst: 1000,
    deviceEventsPerSecond: 10,
    deviceEventsBurst: 20,
    rateMaxDevices: 1000,
    loginFailuresPerMinute: 60,
    loginFailureBurst: 3,
    loginMaxAddresses: 1000,
  };
  let now = 0;
  const limits = () => new RateLimits(config, () => now);

  beforeEach(() => (now = 0));

  it('refuses a token over its rate, each device over its own, and says which and for how long', () => {
    const l = limits();
    expect(l.admit('t')).toBeUndefined();
    l.spend('t', 30, ['d1', 'd2'], [25, 5]);
    expect(l.admit('t', 'd2')).toBeUndefined();
    expect(l.admit('t', 'd1')).toEqual({ limit: 'device', retryAfterSeconds: 1 });
    expect(l.admitDevices(['d2', 'd1'])).toEqual({ limit: 'device', retryAfterSeconds: 1 });
    l.spend('t', 2000, [], []);
    expect(l.admit('t', 'd2')).toEqual({ limit: 'token', retryAfterSeconds: 2 });
    now = 2100;
    expect(l.admit('t', 'd1')).toBeUndefined();
  });

  it('charges a request at least one event, so empty ones are not free', () => {
    const l = new RateLimits({ ...config, tokenEventsPerSecond: 1, tokenEventsBurst: 2 }, () => now);
    l.spend('t', 0, [], []);
    l.spend('t', 0, [], []);
    expect(l.admit('t')).toEqual({ limit: 'token', retryAfterSeconds: 1 });
  });

  it('holds an address back after its burst of failed logins, until it has cooled down', () => {
    const l = limits();
    for (let i = 0; i < 3; i++) {
      expect(l.admitLogin('10.0.0.1')).toBeUndefined();
      l.loginFailed('10.0.0.1');
    }
    expect(l.admitLogin('10.0.0.1')).toEqual({ limit: 'login', retryAfterSeconds: 1 });
    expect(l.admitLogin('10.0.0.2')).toBeUndefined();
    now = 900; // most of a failed login back (one a second) is not one
    expect(l.admitLogin('10.0.0.1')).toEqual({ limit: 'login', retryAfterSeconds: 1 });
    now = 1000;
    expect(l.admitLogin('10.0.0.1')).toBeUndefined();
    l.loginFailed('10.0.0.1');
    expect(l.admitLogin('10.0.0.1')).toEqual({ limit: 'login', retryAfterSeconds: 1 });
    expect(l.tracked()).toEqual({ devices: 0, addresses: 1 });
  });

  it('switches a limit off at rate 0', () => {
    const l = new RateLimits(
      { ...config, tokenEventsPerSecond: 0, deviceEventsPerSecond: 0, loginFailuresPerMinute: 0 },
      () => now,
    );
    l.spend('t', 1e9, ['d'], [1e9]);
    for (let i = 0; i < 100; i++) l.loginFailed('a');
    expect(l.admit('t', 'd')).toBeUndefined();
    expect(l.admitDevices(['d'])).toBeUndefined();
    expect(l.admitLogin('a')).toBeUndefined();
    expect(l.tracked()).toEqual({ devices: 0, addresses: 0 });
  });
});
