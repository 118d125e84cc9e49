import { isIPv6 } from 'node:net';

/** One token bucket: its level (may go below zero: a debt) as of `at` (ms). */
interface Bucket {
  level: number;
  at: number;
}

/**
 * Token buckets by key, in a bounded table. A key may go ahead while its bucket holds more than zero; what it then
 * spends is taken afterwards, possibly below zero (a request is never half admitted), and it waits until the bucket
 * has refilled above zero at `ratePerSecond`, up to `burst`.
 *
 * At most `maxKeys` keys are tracked. When a new key finds the table full, the buckets that have refilled to
 * `burst` are forgotten (they hold nothing a fresh bucket would not); if that frees less than a tenth of the table,
 * the oldest keys go too until a tenth is free, so the cost stays constant per new key. A forgotten key starts
 * again with a full bucket.
 */
export class BucketTable<K> {
  private readonly buckets = new Map<K, Bucket>();

  constructor(
    readonly ratePerSecond: number,
    readonly burst: number,
    private readonly maxKeys: number,
  ) {}

  get size(): number {
    return this.buckets.size;
  }

  /**
   * Seconds (whole, at least 1) until `key` may go ahead; 0 when it may now: when its bucket holds `need` (by
   * default anything above zero: what a request will spend is known only once it is read).
   */
  wait(key: K, now: number, need = Number.MIN_VALUE): number {
    const b = this.buckets.get(key);
    if (b === undefined) return 0;
    const level = this.levelOf(b, now);
    return level >= need ? 0 : Math.max(1, Math.ceil((need - level) / this.ratePerSecond));
  }

  /** Takes `amount` from `key`'s bucket (which may go below zero). */
  spend(key: K, amount: number, now: number): void {
    const b = this.buckets.get(key);
    if (b !== undefined) {
      b.level = this.levelOf(b, now) - amount;
      b.at = now;
      return;
    }
    if (this.buckets.size >= this.maxKeys) this.makeRoom(now);
    this.buckets.set(key, { level: this.burst - amount, at: now });
  }

  private levelOf(b: Bucket, now: number): number {
    return Math.min(this.burst, b.level + ((now - b.at) / 1000) * this.ratePerSecond);
  }

  private makeRoom(now: number): void {
    for (const [key, b] of this.buckets) if (this.levelOf(b, now) >= this.burst) this.buckets.delete(key);
    const target = Math.floor(this.maxKeys * 0.9);
    for (const key of this.buckets.keys()) {
      if (this.buckets.size <= target) break;
      this.buckets.delete(key);
    }
  }
}

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
 * The rate limits of both doors (shared/design.md, "Telemetry in"): events per token and per device, and failed
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

/**
 * The key of a client's source address for failed logins: an IPv4 address as it is (also when IPv4-mapped), an
 * IPv6 address by its /64 prefix (one host usually holds a whole /64, so counting single addresses would let it
 * try from 2^64 of them).
 */
export function addressKey(remoteAddress: string | undefined): string {
  if (remoteAddress === undefined) return '';
  if (remoteAddress.startsWith('::ffff:') && remoteAddress.includes('.')) return remoteAddress.slice(7);
  if (!isIPv6(remoteAddress)) return remoteAddress;
  const [head = '', tail = ''] = remoteAddress.split('::');
  const left = head === '' ? [] : head.split(':');
  const right = tail === '' ? [] : tail.split(':');
  const groups = remoteAddress.includes('::')
    ? [...left, ...Array<string>(8 - left.length - right.length).fill('0'), ...right]
    : left;
  return `${groups
    .slice(0, 4)
    .map((g) => g.toLowerCase().replace(/^0+(?=.)/, ''))
    .join(':')}::/64`;
}
