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

/** What the aggregator produced since the last {@link WindowAggregator.drain}. */
export interface AggregatorOutput {
  windows: ClosedWindow[];
  late: LateEvent[];
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
  windowsClosed: number;
  rowsEmitted: number;
  openWindows: number;
  devices: number;
  partitions: number;
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

/**
 * What a restart needs besides the committed offset: each device's event-time state (JSON-serialisable; `null`
 * stands for "none yet"). Store it with, or before, committing `commitOffset`, and only after every window drained
 * so far has been written.
 */
export interface PartitionCheckpoint {
  v: 1;
  resolutions: string[];
  allowedLatenessMs: number;
  idleTimeoutMs: number;
  /** Where the consumer restarts: the first record of the oldest open window. */
  commitOffset: string | null;
  /** The last offset this state has seen; the restart re-reads up to here silently (no late reports). */
  throughOffset: string | null;
  processingTime: number | null;
  /** [deviceId, maxTs, lastReceivedAt, knownFrom, ...closed-before frontier per resolution] */
  devices: (string | number | null)[][];
}
