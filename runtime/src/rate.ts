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
