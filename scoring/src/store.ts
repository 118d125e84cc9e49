/**
 * Anomalous scores into fleetpulse.anomalies (by device and day) and fleetpulse.anomalies_by_day (fleet by day),
 * contracts/cql/001-schema.cql. Upserts keyed by window and model, so a re-scored window overwrites its row.
 * Retries with backoff until written: the caller commits only afterwards.
 */
import type { AnomalyScore } from '@fleetpulse/contracts';
import { firstLine, retry } from '@fleetpulse/runtime';
import type { Client } from 'cassandra-driver';

const DayMs = 86_400_000;

export class AnomalyStore {
  private readonly byDevice: string;
  private readonly byDay: string;
  private stopped = false;

  constructor(
    private readonly client: Client,
    keyspace: string,
    private readonly log: (line: string) => void = () => undefined,
  ) {
    this.byDevice =
      `INSERT INTO ${keyspace}.anomalies (device_id, day, window_start, resolution, model, model_version, score, features) ` +
      `VALUES (?, ?, ?, ?, ?, ?, ?, ?)`;
    this.byDay =
      `INSERT INTO ${keyspace}.anomalies_by_day (day, window_start, device_id, resolution, model, model_version, score, features) ` +
      `VALUES (?, ?, ?, ?, ?, ?, ?, ?)`;
  }

  async writeAll(scores: readonly AnomalyScore[]): Promise<void> {
    const tasks: (() => Promise<unknown>)[] = [];
    for (const s of scores) {
      const day = Math.floor(s.windowStart / DayMs) * DayMs;
      tasks.push(() =>
        this.client.execute(
          this.byDevice,
          [s.deviceId, day, s.windowStart, s.resolution, s.model, s.modelVersion, s.score, s.features],
          { prepare: true },
        ),
      );
      tasks.push(() =>
        this.client.execute(
          this.byDay,
          [day, s.windowStart, s.deviceId, s.resolution, s.model, s.modelVersion, s.score, s.features],
          { prepare: true },
        ),
      );
    }
    let next = 0;
    const worker = async () => {
      while (next < tasks.length)
        await retry(tasks[next++]!, {
          initialMs: 100,
          maxMs: 5000,
          // Stopping: the batch stays uncommitted and is scored and written again on the next start.
          bail: () => this.stopped,
          onRetry: (attempt, _delay, e) => {
            if (attempt % 10 === 1) this.log(`anomaly write failed (${firstLine(e)}); retrying`);
          },
        });
    };
    await Promise.all(Array.from({ length: Math.min(32, tasks.length) }, worker));
  }

  stop(): void {
    this.stopped = true;
  }
}
