import type { ResolvedConfig } from './config';
import { D_MAXTS, D_RECV, D_RES, D_SILENT, D_SNAP, RS } from './device-rows';
import type { PartitionState } from './partition-state';
import type { DeviceStateTuple, PartitionCheckpoint } from './types';

/*
 * A partition's state to and from its checkpoint (types.ts, PartitionCheckpoint): what the aggregator stores so that
 * a restart from the commit offset gives exactly the results of an uninterrupted run.
 */

/** A stored number, or -Infinity for none (null). */
const num = (x: unknown): number => (typeof x === 'number' ? x : -Infinity);
/** A state number as stored: null for none (-Infinity). */
const fin = (x: number): number | null => (Number.isFinite(x) ? x : null);

/**
 * The partition's checkpoint (v2, incremental): the devices changed since the previous one become checkpoint
 * `ps.seq + 1`.
 */
export function takeCheckpoint(
  ps: PartitionState,
  config: ResolvedConfig,
  commitOffset: string | null,
): PartitionCheckpoint {
  const last = ps.lastOffset === null ? -1 : Number(ps.lastOffset);
  const through = Math.max(last, ps.through);
  // The offset as read (exact beyond 2^53, where the numbers only order records).
  const throughText = last >= ps.through ? ps.lastOffset : ps.throughStr;
  const seq = ++ps.seq;
  const devices = ps.takeChanged(seq, through);
  return {
    v: 2,
    epoch: ps.epoch,
    seq,
    resolutions: [...config.labels],
    allowedLatenessMs: config.allowedLatenessMs,
    idleTimeoutMs: config.idleTimeoutMs,
    commitOffset,
    throughOffset: throughText,
    processingTime: fin(ps.proc),
    devices,
  };
}

/**
 * Resumes the partition from a checkpoint of the same configuration (else throws). A v2 checkpoint's devices are
 * read back as they report (the aggregator's restoreDevices); a v1 checkpoint holds every device in one value:
 * returned, oldest received first, for the caller to restore now.
 */
export function resumeFrom(ps: PartitionState, cp: PartitionCheckpoint, config: ResolvedConfig): DeviceStateTuple[] {
  if (
    (cp.v !== 1 && cp.v !== 2) ||
    cp.resolutions.join(',') !== config.labels.join(',') ||
    cp.allowedLatenessMs !== config.allowedLatenessMs ||
    cp.idleTimeoutMs !== config.idleTimeoutMs
  )
    throw new Error('checkpoint was taken with another configuration (resolutions, lateness or idle timeout)');
  ps.proc = num(cp.processingTime);
  ps.startCommit = cp.commitOffset;
  if (cp.throughOffset !== null) {
    ps.through = Number(cp.throughOffset);
    ps.throughStr = cp.throughOffset;
  }
  if (cp.v === 2) {
    ps.epoch = cp.epoch!;
    ps.seq = ps.persistedSeq = cp.seq ?? 0;
    ps.lookups = true;
    return [];
  }
  return [...cp.devices].sort((a, b) => num(a[2]) - num(b[2]));
}

/**
 * One stored device state into the partition's memory, its records up to `silentThrough` already in it. Returns the
 * device's index; the caller closes it at once if it is idle at the partition's processing time.
 */
export function restoreDeviceRow(ps: PartitionState, row: DeviceStateTuple, silentThrough: number): number {
  const di = ps.addDevice(String(row[0]), num(row[3]));
  const o = di * ps.ds;
  const dr = ps.rows;
  dr[o + D_MAXTS] = num(row[1]);
  dr[o + D_RECV] = num(row[2]);
  const nRes = (ps.ds - D_RES) / RS;
  for (let r = 0; r < nRes; r++) dr[o + D_RES + RS * r] = num(row[4 + r]);
  dr[o + D_SILENT] = silentThrough;
  dr[o + D_SNAP] = ps.persistedSeq;
  return di;
}
