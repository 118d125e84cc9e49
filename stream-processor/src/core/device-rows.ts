/*
 * The aggregator's flat state, by offset: a device is a row of doubles in its partition's Float64Array, an open window
 * a block of the partition's slab (window-slab.ts). Flat, so that an event touches few cache lines.
 */

/** Block header, before the metric stats. */
export const B_START = 0;
/** Absolute slot, in the partition's commit queue, of the record that opened it. */
export const B_SLOT = 1;
/** The seqs folded in: the contiguous run [seqLo, seqHi] plus, rarely, a set of the others (flag B_SET). */
export const B_SEQLO = 2;
export const B_SEQHI = 3;
/** Block of the next open window of the same device and resolution, or -1. */
export const B_NEXT = 4;
export const B_SET = 5;
/** Header size: the metric stats start here. */
export const H = 6;

/** Device row. */
export const D_MAXTS = 0;
export const D_RECV = 1;
/** Windows up to the one holding this event time may include records before the run's start (range mode). */
export const D_KNOWN = 2;
export const D_LAYOUT = 3;
export const D_OPEN = 4;
/** Stamp of its live idle-queue entry, or -1 when it is not waiting to go idle. */
export const D_QSTAMP = 5;
/** Index of its live entry in the idle FIFO, or -1 (in the heap, or not waiting). */
export const D_QPOS = 6;
/** Seq of the checkpoint that holds its current state (>= 0); -1: changed, listed in `dirty`; -2: new, not listed. */
export const D_SNAP = 7;
/** Its records up to this offset are already in its state (restored): folded again silently, never reported twice. */
export const D_SILENT = 8;
/** 1 while the device is listed for a provisional snapshot of its finest open window (PartitionState.live), else 0. */
export const D_LIVE = 9;
/** When (the caller's clock, ms) its last provisional snapshot was taken, or -Infinity. */
export const D_LIVE_AT = 10;
/**
 * Per resolution r at D_RES + RS*r: frontier (windows ending at or before it are closed), head block, tail block, and
 * the tail window's start (so that opening the next window reads no block).
 */
export const D_RES = 11;
export const RS = 4;
