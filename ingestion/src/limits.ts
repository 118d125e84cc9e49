import { BucketTable } from '@fleetpulse/runtime';

export interface RateLimitConfig {
  /** Events a second per token (0: no limit), and the burst it may send at once. */
  tokenEventsPerSecond: number;
  tokenEventsBurst: number;
  /** Events a second per device (0: no limit), the burst, and how many devices are tracked at most. */
  deviceEventsPerSecond: number;
  deviceEventsBurst: number;
  rateMaxDevices: number;
  /** Failed logins a minute per source address (0: no limit), the burst, and how many addresses are tracked. */
  loginFailuresPerMinute: number;
  loginFailureBurst: number;
  loginMaxAddresses: number;
}

export type LimitKind = 'token' | 'device' | 'login';

/** A refusal: which limit, and the seconds to wait (the Retry-After). */
export interface Throttled {
  limit: LimitKind;
  retryAfterSeconds: number;
}

/**
 * The rate limits of both doors (docs/contract.md, "Telemetry in"): events per token and per device, and failed
 * logins per source address. Tokens are the configured ones, so their table needs no bound; devices and
 * addresses are bounded (BucketTable).
 */
export class RateLimits {
  private readonly tokens: BucketTable<string> | undefined;
  private readonly devices: BucketTable<string> | undefined;
  private readonly logins: BucketTable<string> | undefined;

  constructor(
    config: RateLimitConfig,
    private readonly clock: () => number = Date.now,
  ) {
    const c = config;
    if (c.tokenEventsPerSecond > 0)
      this.tokens = new BucketTable(c.tokenEventsPerSecond, c.tokenEventsBurst, Number.POSITIVE_INFINITY);
    if (c.deviceEventsPerSecond > 0)
      this.devices = new BucketTable(c.deviceEventsPerSecond, c.deviceEventsBurst, c.rateMaxDevices);
    if (c.loginFailuresPerMinute > 0)
      this.logins = new BucketTable(c.loginFailuresPerMinute / 60, c.loginFailureBurst, c.loginMaxAddresses);
  }

  /** Before reading a request or message of `token` (and, over MQTT, of its topic's `device`). */
  admit(token: string, device?: string): Throttled | undefined {
    const now = this.clock();
    return (
      throttled('token', this.tokens?.wait(token, now)) ??
      (device === undefined ? undefined : throttled('device', this.devices?.wait(device, now)))
    );
  }

  /** After parsing: the first of these devices over its rate, if any (then nothing of the request is accepted). */
  admitDevices(devices: readonly string[]): Throttled | undefined {
    if (this.devices === undefined) return undefined;
    const now = this.clock();
    let wait = 0;
    for (const d of devices) wait = Math.max(wait, this.devices.wait(d, now));
    return throttled('device', wait);
  }

  /** What a parsed request spent: `events` of its token (at least 1: a request costs), `counts[i]` of `devices[i]`. */
  spend(token: string, events: number, devices: readonly string[], counts: ArrayLike<number>): void {
    const now = this.clock();
    this.tokens?.spend(token, Math.max(1, events), now);
    if (this.devices !== undefined)
      for (let i = 0; i < devices.length; i++) this.devices.spend(devices[i]!, counts[i]!, now);
  }

  /** Before looking a presented token up: has `address` a failed login left (its burst, then one per 1/rate)? */
  admitLogin(address: string): Throttled | undefined {
    return throttled('login', this.logins?.wait(address, this.clock(), 1));
  }

  loginFailed(address: string): void {
    this.logins?.spend(address, 1, this.clock());
  }

  /** Keys tracked now, for /metrics. */
  tracked(): { devices: number; addresses: number } {
    return { devices: this.devices?.size ?? 0, addresses: this.logins?.size ?? 0 };
  }
}

/** What a refusal says, for answers and logs. */
export function throttleReason(t: Throttled): string {
  switch (t.limit) {
    case 'token':
      return 'this token is over its rate of events';
    case 'device':
      return 'a device of this request is over its rate of events';
    case 'login':
      return 'too many failed logins from this address';
  }
}

function throttled(limit: LimitKind, wait: number | undefined): Throttled | undefined {
  return wait === undefined || wait === 0 ? undefined : { limit, retryAfterSeconds: wait };
}
