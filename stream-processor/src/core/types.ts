import type { TelemetryEvent } from '@fleetpulse/contracts';
import type { ClosedWindow } from './closed-window';

/** An event none of whose closed windows took it; goes to telemetry.late with header `missed`. */
export interface LateEvent {
  partition: number;
  offset: string;
  event: TelemetryEvent;
  /** The resolutions whose window had closed, smallest first, comma-separated: `1s,10s`. */
  missed: string;
}

/**
 * An event that would give its device more distinct metric names than the limit (contract v2, "cardinality"): not
 * folded anywhere; goes to telemetry.dlq with `reason`.
 */
export interface RejectedEvent {
  partition: number;
  offset: string;
  event: TelemetryEvent;
  reason: string;
}

/** What the aggregator produced since the last {@link WindowAggregator.drain}. */
export interface AggregatorOutput {
  windows: ClosedWindow[];
  late: LateEvent[];
  rejected: RejectedEvent[];
}

export interface AggregatorStats {
  /** Events ingested (each element of an array record counts). */
  events: number;
  /** Events whose seq the device had already sent inside an open window of some resolution. */
  retries: number;
  /** Events reported late (see {@link LateEvent}). */
  late: number;
  /** Late events per resolution label. */
  lateByResolution: Record<string, number>;
  /** Events refused for the metric-name limit (see {@link RejectedEvent}). */
  rejected: number;
  windowsClosed: number;
  rowsEmitted: number;
  openWindows: number;
  /** Devices in memory (with open windows, waiting to go idle, or quiet and cached). */
  devices: number;
  /** Devices that left memory (quiet, their state stored) since the start. */
  evicted: number;
  /** Devices read back from the state store since the start. */
  restored: number;
  partitions: number;
  /** Metric layouts held, shared by devices (bounded by compaction past 16,384). */
  layouts: number;
}

/**
 * How a partition's first record relates to what came before it.
 * - `beginning`: nothing came before (the topic's first offset, or a test): every row is complete.
 * - `resume`: a restart after a crash or a rebalance, from a {@link PartitionCheckpoint} taken by an earlier run; the
 *   rows are exactly those an uninterrupted run writes.
 * - `range`: a replay (or a restart without a checkpoint) starting mid-stream with no state. A device's records before
 *   the range are unknown, so its windows up to and including the one holding its first event in the range are
 *   marked `complete: false`. Exact when each device's earlier records are not newer than its first event in the
 *   range and receivedAt does not go back across the start (what ingestion produces).
 */
export type PartitionStart =
  { kind: 'beginning' } | { kind: 'resume'; checkpoint: PartitionCheckpoint } | { kind: 'range' };

/** A device's event-time state: [deviceId, maxTs, lastReceivedAt, knownFrom, ...frontier per resolution]; null: none. */
export type DeviceStateTuple = (string | number | null)[];

/** A device's state as stored (see DeviceStateStore), with the last offset it had seen. */
export interface StoredDeviceState {
  state: DeviceStateTuple;
  /** Records of the device up to this offset are already in `state`: re-read, they are not reported again. */
  through: number;
}

/**
 * What a restart needs besides the committed offset (JSON-serialisable). Store it with, or before, committing
 * `commitOffset`, and only after every window drained so far has been written.
 *
 * v2 (bounded state) is incremental: `devices` holds only the devices whose state changed since the previous
 * checkpoint of the partition; write them to the device state store (keyed by `epoch`) before the rest, the header.
 * A restart reads the header only; each device's state is read back when its next record arrives. v1 (every device,
 * one value) is still restored.
 */
export interface PartitionCheckpoint {
  v: 1 | 2;
  /** v2: names the run whose device states belong to this partition's history (a fresh start begins a new one). */
  epoch?: string;
  /** v2: sequence number of this checkpoint within the epoch; {@link WindowAggregator.persisted} takes it. */
  seq?: number;
  resolutions: string[];
  allowedLatenessMs: number;
  idleTimeoutMs: number;
  /** Where the consumer restarts: the first record of the oldest open window. */
  commitOffset: string | null;
  /** The last offset this state has seen; the restart re-reads up to here silently (no late reports). */
  throughOffset: string | null;
  processingTime: number | null;
  /** v1: every device; v2: those changed since the previous checkpoint. */
  devices: DeviceStateTuple[];
}
