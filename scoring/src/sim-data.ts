/**
 * Simulator fleet -> window rows, in-process: the same aggregates the stream processor would publish, without Kafka.
 * Used to make training data (tools/make-training-data.ts), by the integration tests (to publish realistic
 * metrics.aggregates and check scores against the ground truth) and by the benchmark.
 */
import type { AggregateRow } from '@fleetpulse/contracts';
import { createFleet, type AnomalyTruth } from '@fleetpulse/simulator';
import { WindowAggregator } from '@fleetpulse/stream-processor';

export interface SimulatedAggregates {
  /** Rows of closed windows at `resolution`, in the order the aggregator closed them. */
  rows: AggregateRow[];
  truth: AnomalyTruth[];
  deviceIds: readonly string[];
}

export interface SimulateOptions {
  devices: number;
  durationMs: number;
  seed?: number;
  /** Event time of the first reading, epoch ms. [2025-11-22T00:00:00Z] */
  start?: number;
  /** [10s] */
  resolution?: string;
  devicePrefix?: string;
  /** Per reading; the simulator's default is 0.0005. */
  anomalyRate?: number;
}

/** Runs the fleet in historic mode and folds every event through a WindowAggregator (one partition). */
export function simulateAggregates(o: SimulateOptions): SimulatedAggregates {
  const resolution = o.resolution ?? '10s';
  const fleet = createFleet({
    devices: o.devices,
    seed: o.seed ?? 7,
    start: o.start ?? Date.UTC(2025, 10, 22),
    durationMs: o.durationMs,
    ...(o.devicePrefix !== undefined ? { devicePrefix: o.devicePrefix } : {}),
    ...(o.anomalyRate !== undefined ? { anomalyRate: o.anomalyRate } : {}),
  });
  const agg = new WindowAggregator({ resolutions: [resolution] });
  agg.assignPartition(0);
  const rows: AggregateRow[] = [];
  const take = (): void => {
    for (const w of agg.drain().windows) for (const r of w.rows) rows.push(r);
  };
  let offset = 0;
  for (const batch of fleet.batches()) {
    // No receivedAt: windows close by each device's event-time watermark only, as in a live run where every device
    // keeps reporting (a historic run has no processing time that would make idle closes meaningful).
    for (const e of batch.events) agg.ingest(0, String(offset++), e);
    take();
  }
  agg.flush(0);
  take();
  return { rows, truth: fleet.groundTruth(), deviceIds: fleet.deviceIds };
}

/** The anomalies of a device overlapping `[windowStart, windowEnd)`. */
export function overlappingTruth(
  byDevice: ReadonlyMap<string, readonly AnomalyTruth[]>,
  deviceId: string,
  windowStart: number,
  windowEnd: number,
): AnomalyTruth[] {
  return (byDevice.get(deviceId) ?? []).filter((a) => a.startTs < windowEnd && a.endTs >= windowStart);
}

export function truthByDevice(truth: readonly AnomalyTruth[]): Map<string, AnomalyTruth[]> {
  const m = new Map<string, AnomalyTruth[]>();
  for (const a of truth) {
    const l = m.get(a.deviceId);
    if (l) l.push(a);
    else m.set(a.deviceId, [a]);
  }
  return m;
}
