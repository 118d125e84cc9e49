import { Topics } from '@fleetpulse/contracts';
import { firstLine } from '@fleetpulse/runtime';
import type { Kafka, Producer } from 'kafkajs';
import type { ClosedWindow } from './core';
import type { ProcessorMetrics } from './metrics';
import { FastDefaultPartitioner } from './partitioner';
import type { Log } from './processor';

export interface LivePublisherConfig {
  /** Snapshots go out every this many ms. */
  intervalMs: number;
  /** A device's snapshots at most once per this many ms (the rest of its changes coalesce into the next). */
  minGapMs: number;
  /** Most snapshots per second; devices past it wait for the next interval (none is dropped, they coalesce). */
  maxPerSec: number;
}

/**
 * Provisional snapshots on metrics.live (contract v2): every interval, the finest open window of each device that
 * received events since its last snapshot (a device at most once per `minGapMs`), as a window record with
 * `"final": false`. Off the write path of final
 * rows: its own producer (leader acks, not idempotent, so it never queues behind or ahead of the processor's
 * exactly-once outputs), never awaited by a flush or a commit, one send in flight; a failed send is counted and
 * logged (at most once a minute), and the devices' next events bring new snapshots. Losing one costs a moment of
 * a live view, never a result.
 */
export class LivePublisher {
  private readonly producer: Producer;
  private timer: NodeJS.Timeout | undefined;
  private inFlight: Promise<void> | null = null;
  private lastErrorLog = 0;

  constructor(
    kafka: Kafka,
    private readonly config: LivePublisherConfig,
    private readonly take: (max: number, now: number, minGapMs: number) => ClosedWindow[],
    private readonly metrics: ProcessorMetrics,
    private readonly log: Log,
  ) {
    this.producer = kafka.producer({ allowAutoTopicCreation: false, createPartitioner: FastDefaultPartitioner });
  }

  async start(): Promise<void> {
    await this.producer.connect();
    this.timer = setInterval(() => this.publish(), this.config.intervalMs);
  }

  /** Stops the timer and waits for the send in flight. */
  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.inFlight;
    await this.producer.disconnect().catch(() => undefined);
  }

  /** One round: skipped while the previous send is in flight (its devices' changes wait, coalesced). */
  publish(): void {
    if (this.inFlight) return;
    const max = Math.max(1, Math.floor((this.config.maxPerSec * this.config.intervalMs) / 1000));
    const snapshots = this.take(max, Date.now(), this.config.minGapMs);
    if (snapshots.length === 0) return;
    const messages = snapshots.map((w) => ({ key: w.deviceId, value: Buffer.from(w.recordJson()) }));
    this.inFlight = this.producer
      .send({ topic: Topics.live, acks: 1, messages })
      .then(() => void this.metrics.liveSnapshots.inc({ outcome: 'sent' }, messages.length))
      .catch((e: unknown) => {
        this.metrics.liveSnapshots.inc({ outcome: 'failed' }, messages.length);
        if (Date.now() - this.lastErrorLog >= 60_000) {
          this.lastErrorLog = Date.now();
          this.log(
            `stream-processor: provisional snapshots not sent to ${Topics.live} (final windows are not affected; logged once a minute): ${firstLine(e)}`,
          );
        }
      })
      .finally(() => (this.inFlight = null));
  }
}
