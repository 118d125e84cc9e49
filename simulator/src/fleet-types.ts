/**
 * The fleet's vocabulary: metrics and their physical ranges, anomaly kinds, and the shapes the generator hands out
 * (events, batches, ground truth, counters). Declarations only, so the generator's parts, the CLI and the tests
 * share them without importing each other.
 */
import type { TelemetryEvent } from '@fleetpulse/contracts';

export const MetricNames = ['temp', 'humidity', 'vib', 'volt'] as const;
export type MetricName = (typeof MetricNames)[number];

/** What the sensors can report at all (°C, %, g RMS, V). Every generated value, anomalous or not, is inside. */
export const PhysicalRange: Readonly<Record<MetricName, readonly [number, number]>> = {
  temp: [-40, 85],
  humidity: [0, 100],
  vib: [0, 16],
  volt: [0, 30],
};

export const AnomalyKinds = ['spike', 'stuck', 'drift', 'vibburst'] as const;
export type AnomalyKind = (typeof AnomalyKinds)[number];

/**
 * How far behind its device's newest sent reading an event must be to count as late (ms of event time): the
 * stream processor's default allowed lateness (docs/contract.md, "Windows"). Closer than that it is out of order.
 */
export const LateThresholdMs = 2000;

/** A canonical event (docs/contract.md) as the simulator makes it: `seq` is always set. */
export interface SimEvent extends TelemetryEvent {
  seq: number;
}

/**
 * One injected anomaly. Every reading of `deviceId` with `startTs <= ts <= endTs` (event time, epoch ms, both
 * inclusive: the first and last affected readings) carries it in `metrics`; readings outside the range are normal.
 */
export interface AnomalyTruth {
  id: number;
  deviceId: string;
  kind: AnomalyKind;
  metrics: MetricName[];
  startTs: number;
  endTs: number;
  /** Readings generated inside the range (a dropout may have lost some of them). */
  readings: number;
  /**
   * spike: the reported value; stuck: the frozen value; drift: the offset reached at `endTs` (it grows linearly
   * from 0 at `startTs`); vibburst: the factor over the device's normal upper bound.
   */
  magnitude: number;
}

/** A request's worth of events for one lane (requests in a lane go one after another, keeping device order). */
export interface EventBatch {
  lane: number;
  events: SimEvent[];
  /** Event time (epoch ms) at which a device would send this batch; realtime mode waits for it. */
  sendAt: number;
  /** A deliberate resend of the previous batch of this lane: the same array, the same `seq` values. */
  retry: boolean;
}

export interface FleetStats {
  /** Readings taken by the devices, including those lost to dropouts. */
  readings: number;
  /** Readings lost entirely (never sent; the device's `seq` skips them). */
  dropped: number;
  /** Readings sent with one metric missing. */
  metricDropped: number;
  /** Events put into batches, each reading once (retry resends are counted apart). */
  emitted: number;
  /** Emitted behind their device's newest emitted event by at most `LateThresholdMs`. */
  outOfOrder: number;
  /** Emitted more than `LateThresholdMs` behind their device's newest emitted event. */
  late: number;
  offlinePeriods: number;
  /** Events uploaded after an offline period (in order, with their original timestamps). */
  backlogEvents: number;
  anomalies: number;
  batches: number;
  retryBatches: number;
  retryEvents: number;
}
