/**
 * Offset commits off a consumer's batch path. A batch hands over its next offset once what it read is stored (the
 * evaluator) or delivered (the deliverer), and returns at once, so kafkajs fetches the next records without waiting
 * for the commit's round trip to the group coordinator. One commit request is in flight at a time; positions handed
 * over meanwhile are coalesced (the newest of each partition) into the next one. So an offset is never committed
 * before what precedes it is done, and never committed out of order.
 *
 * A failed commit is logged and not retried: the partition's next commit carries a later offset; until then, a
 * restart or a new owner of the partition reads again from the previous commit (records the evaluator passes over,
 * transitions the deliverer POSTs again with the same delivery id), as after a crash.
 */
import { firstLine } from '@fleetpulse/runtime';

export interface TopicPartitionOffset {
  topic: string;
  partition: number;
  offset: string;
}

export class Committer {
  private readonly queued = new Map<string, TopicPartitionOffset>();
  private draining: Promise<void> | null = null;

  constructor(
    private readonly commit: (offsets: TopicPartitionOffset[]) => Promise<void>,
    private readonly log: (line: string) => void,
  ) {}

  /** Commits `offset` (the next one to read) of the partition soon. */
  add(topic: string, partition: number, offset: string): void {
    this.queued.set(`${topic}:${partition}`, { topic, partition, offset });
    this.kick();
  }

  private kick(): void {
    if (this.draining || this.queued.size === 0) return;
    // The callback runs after this assignment, always; it starts again for what came in as the last commit ended.
    this.draining = this.drain().finally(() => {
      this.draining = null;
      this.kick();
    });
  }

  /** Resolves once every position handed over so far has been committed (or its commit failed). */
  async flush(): Promise<void> {
    while (this.draining) await this.draining;
  }

  private async drain(): Promise<void> {
    while (this.queued.size > 0) {
      const offsets = [...this.queued.values()];
      this.queued.clear();
      try {
        await this.commit(offsets);
      } catch (e) {
        const where = offsets.map((o) => `${o.topic}[${o.partition}]@${o.offset}`).join(', ');
        this.log(`committing ${where} failed (${firstLine(e)}); the next commit carries them on`);
      }
    }
  }
}
