/**
 * Simulator fleet -> window records, in-process: the same records the stream processor would publish on
 * metrics.aggregates, without Kafka. Used to make training data (tools/make-training-data.ts), by the integration
 * tests (to publish realistic metrics.aggregates and check scores against the ground truth) and by the benchmark.
 * A dev tool (@fleetpulse/scoring/testing): the service never loads it.
 */
import type { AggregateRow, MetricStats, WindowRecord } from '@fleetpulse/contracts';
import { createFleet, type AnomalyTruth } from '@fleetpulse/simulator';
import { WindowAggregator } from '@fleetpulse/stream-processor/core';

export interface SimulatedAggregates {
  /** One final record per closed window at `resolution`, in the order the aggregator closed them. */
  records: WindowRecord[];
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

/**
 * The window record of one window's per-metric points (v1 aggregate rows, all of one device, resolution and window):
 * the inverse of contracts' `pointsOf`. Kept here, not in contracts, as only the simulation needs it.
 */
export function windowRecordOf(points: readonly AggregateRow[], final = true): WindowRecord {
  const p0 = points[0];
  if (!p0) throw new RangeError('a window record needs at least one metric');
  const metrics: Record<string, MetricStats> = {};
  for (const { deviceId, metric, resolution, windowStart, windowEnd, ...stats } of points) {
    if (
      deviceId !== p0.deviceId ||
      resolution !== p0.resolution ||
      windowStart !== p0.windowStart ||
      windowEnd !== p0.windowEnd
    )
      throw new RangeError(`${metric} of ${deviceId} ${resolution}@${windowStart} is not in the first point's window`);
    metrics[metric] = stats;
  }
  const { deviceId, resolution, windowStart, windowEnd } = p0;
  return { deviceId, resolution, windowStart, windowEnd, final, metrics };
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
  const records: WindowRecord[] = [];
  const take = (): void => {
    for (const w of agg.drain().windows) if (w.rows.length > 0) records.push(windowRecordOf(w.rows));
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
  return { records, truth: fleet.groundTruth(), deviceIds: fleet.deviceIds };
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
