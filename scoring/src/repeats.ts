/**
 * The window records each partition scored lately, so that one published again unchanged is not scored again.
 *
 * Why: the stream processor publishes window records at least once. A flush Kafka refuses part-way, a crash, or
 * partitions moving between processor instances make it read again from its last commit and publish the windows it
 * had published since, byte for byte the same. Scored again, each would repeat its score on anomaly.scores. A window
 * is known by device, resolution and start; a record of it with other bytes (a replay's rebuilt row that differs)
 * or met under other models (a swap since) is scored as usual.
 *
 * Bounded: at most `perPartition` windows a partition, the oldest forgotten first. A repeat of a window older than
 * that is scored again (at least once, as before); the processor repeats only what it published since its last
 * commit (about a second), far fewer.
 */
export class RecentWindows {
  private readonly parts = new Map<number, Map<string, number>>();

  constructor(readonly perPartition: number) {}

  /** Whether the partition scored this window's record, with these bytes and these models, lately. */
  has(partition: number, key: string, fingerprint: number): boolean {
    return this.parts.get(partition)?.get(key) === fingerprint;
  }

  /** The partition scored (or, when read back after an assignment, had scored) this window's record. */
  remember(partition: number, key: string, fingerprint: number): void {
    if (this.perPartition === 0) return;
    let seen = this.parts.get(partition);
    if (!seen) this.parts.set(partition, (seen = new Map()));
    seen.delete(key); // the newest last: it is forgotten last
    seen.set(key, fingerprint);
    if (seen.size > this.perPartition) seen.delete(seen.keys().next().value!);
  }

  /** The partition moved away: what it scored is no longer ours to remember. */
  drop(partition: number): void {
    this.parts.delete(partition);
  }

  size(partition: number): number {
    return this.parts.get(partition)?.size ?? 0;
  }
}

/** The window a record is of: device, resolution and start. */
export function windowKey(deviceId: string, resolution: string, windowStart: number): string {
  return `${deviceId}\u0000${resolution}\u0000${windowStart}`;
}

/**
 * A 53-bit hash (cyrb53) of a record's bytes and of the models that score it: equal for a record published again
 * unchanged under the same models.
 */
export function fingerprint(bytes: Uint8Array, models: string): number {
  let h1 = 0xdeadbeef;
  let h2 = 0x41c6ce57;
  for (const c of bytes) {
    h1 = Math.imul(h1 ^ c, 2654435761);
    h2 = Math.imul(h2 ^ c, 1597334677);
  }
  for (let i = 0; i < models.length; i++) {
    const c = models.charCodeAt(i);
    h1 = Math.imul(h1 ^ c, 2654435761);
    h2 = Math.imul(h2 ^ c, 1597334677);
  }
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507) ^ Math.imul(h2 ^ (h2 >>> 13), 3266489909);
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507) ^ Math.imul(h1 ^ (h1 >>> 13), 3266489909);
  return 4294967296 * (2097151 & h2) + (h1 >>> 0);
}
