/*
 * A deliberately naive restatement of the contract's window rules (docs/contract.md, "Windows", as made precise in
 * aggregator.ts), for property tests: string keys, every folded value kept, stats recomputed from scratch at close,
 * every device rescanned on every processing-time step, lateness checked against the unaligned watermark. The
 * Welford recurrence runs over the values in arrival order, as the aggregator's does, so floats match exactly.
 */
import type { AggregateRow, TelemetryEvent } from '@fleetpulse/contracts';
import { resolutionMs, windowStart } from '@fleetpulse/contracts';
import { ClosedWindow, type CloseReason } from './closed-window';
import type { LateEvent } from './types';

export type PlainWindow = ReturnType<ClosedWindow['toJSON']>;

export type Op =
  | { kind: 'record'; partition: number; offset: string; value: TelemetryEvent | TelemetryEvent[] }
  | { kind: 'advance'; partition: number; ms: number }
  | { kind: 'flush'; partition: number };

interface RefWindow {
  deviceId: string;
  res: number;
  start: number;
  firstOffset: bigint;
  /** Per metric, the folded values with their event time, in arrival order. */
  values: Map<string, { x: number; ts: number }[]>;
  seqs: number[];
}

interface RefDevice {
  maxTs: number;
  lastRecv: number;
  knownFrom: number;
  /** Per resolution: end of the window that held maxTs when the device last went idle (or was flushed). */
  idleEnd: number[];
  metricOrder: string[];
}

interface RefPartition {
  range: boolean;
  proc: number;
  devices: Map<string, RefDevice>;
  open: Map<string, RefWindow>;
  lastOffset: bigint | null;
}

export class ReferenceAggregator {
  readonly labels: string[];
  readonly sizes: number[];
  readonly parts = new Map<number, RefPartition>();
  retries = 0;
  late = 0;
  events = 0;

  constructor(
    labels: string[],
    readonly lateness: number,
    readonly idle: number,
  ) {
    const pairs = labels.map((l) => ({ l, ms: resolutionMs(l) })).sort((a, b) => a.ms - b.ms);
    this.labels = pairs.map((p) => p.l);
    this.sizes = pairs.map((p) => p.ms);
  }

  assign(partition: number, range = false): void {
    this.parts.set(partition, { range, proc: -Infinity, devices: new Map(), open: new Map(), lastOffset: null });
  }

  apply(op: Op): { windows: PlainWindow[]; late: LateEvent[] } {
    const out = { windows: [] as PlainWindow[], late: [] as LateEvent[] };
    const p = this.parts.get(op.partition)!;
    if (op.kind === 'advance') this.setProc(op.partition, p, op.ms, out.windows);
    else if (op.kind === 'flush') {
      for (const [id, d] of p.devices) this.closeAll(op.partition, p, id, d, 'flush', out.windows);
    } else {
      p.lastOffset = BigInt(op.offset);
      const events = Array.isArray(op.value) ? op.value : [op.value];
      for (const e of events) this.event(op.partition, p, op.offset, e, out);
    }
    return out;
  }

  /** Minimum over open windows of their first record's offset, else last offset + 1. */
  safeCommitOffset(partition: number): string | null {
    const p = this.parts.get(partition)!;
    let min: bigint | null = null;
    for (const w of p.open.values()) if (min === null || w.firstOffset < min) min = w.firstOffset;
    if (min !== null) return min.toString();
    return p.lastOffset === null ? null : (p.lastOffset + 1n).toString();
  }

  openWindows(): number {
    let n = 0;
    for (const p of this.parts.values()) n += p.open.size;
    return n;
  }

  private key(deviceId: string, res: number, start: number): string {
    return `${deviceId}|${res}|${start}`;
  }

  private setProc(partition: number, p: RefPartition, ms: number, out: PlainWindow[]): void {
    if (ms <= p.proc) return;
    p.proc = ms;
    for (const [id, d] of p.devices)
      if (d.lastRecv + this.idle <= p.proc) this.closeAll(partition, p, id, d, 'idle', out);
  }

  private closeAll(
    partition: number,
    p: RefPartition,
    id: string,
    d: RefDevice,
    reason: CloseReason,
    out: PlainWindow[],
  ): void {
    this.sizes.forEach((S, r) => (d.idleEnd[r] = Math.max(d.idleEnd[r]!, windowStart(d.maxTs, S) + S)));
    const mine = [...p.open.values()]
      .filter((w) => w.deviceId === id)
      .sort((a, b) => a.res - b.res || a.start - b.start);
    for (const w of mine) this.emit(partition, p, d, w, reason, out);
  }

  private isClosed(d: RefDevice, r: number, start: number): boolean {
    const end = start + this.sizes[r]!;
    return end <= d.maxTs - this.lateness || end <= d.idleEnd[r]!;
  }

  private event(
    partition: number,
    p: RefPartition,
    offset: string,
    e: TelemetryEvent,
    out: { windows: PlainWindow[]; late: LateEvent[] },
  ): void {
    this.events++;
    const recv = e.receivedAt ?? p.proc;
    this.setProc(partition, p, recv, out.windows);
    let d = p.devices.get(e.deviceId);
    if (!d) {
      d = {
        maxTs: -Infinity,
        lastRecv: -Infinity,
        knownFrom: p.range ? e.ts : -Infinity,
        idleEnd: this.sizes.map(() => -Infinity),
        metricOrder: [],
      };
      p.devices.set(e.deviceId, d);
    }
    for (const m of Object.keys(e.metrics)) if (!d.metricOrder.includes(m)) d.metricOrder.push(m);
    const missed: string[] = [];
    let retry = false;
    this.sizes.forEach((S, r) => {
      const start = windowStart(e.ts, S);
      if (this.isClosed(d, r, start)) {
        missed.push(this.labels[r]!);
        return;
      }
      const k = this.key(e.deviceId, r, start);
      let w = p.open.get(k);
      if (w && e.seq !== undefined && w.seqs.includes(e.seq)) {
        retry = true;
        return;
      }
      if (!w) {
        w = { deviceId: e.deviceId, res: r, start, firstOffset: BigInt(offset), values: new Map(), seqs: [] };
        p.open.set(k, w);
      }
      if (e.seq !== undefined) w.seqs.push(e.seq);
      for (const [m, x] of Object.entries(e.metrics)) {
        const list = w.values.get(m) ?? [];
        list.push({ x, ts: e.ts });
        w.values.set(m, list);
      }
    });
    if (retry) this.retries++;
    else if (missed.length > 0) {
      this.late++;
      out.late.push({ partition, offset, event: e, missed: missed.join(',') });
    }
    d.maxTs = Math.max(d.maxTs, e.ts);
    const watermark = d.maxTs - this.lateness;
    const closing = [...p.open.values()]
      .filter((w) => w.deviceId === e.deviceId && w.start + this.sizes[w.res]! <= watermark)
      .sort((a, b) => a.res - b.res || a.start - b.start);
    for (const w of closing) this.emit(partition, p, d, w, 'watermark', out.windows);
    d.lastRecv = Math.max(d.lastRecv, recv);
    if (p.proc > -Infinity && d.lastRecv + this.idle <= p.proc)
      this.closeAll(partition, p, e.deviceId, d, 'idle', out.windows);
  }

  private emit(
    partition: number,
    p: RefPartition,
    d: RefDevice,
    w: RefWindow,
    reason: CloseReason,
    out: PlainWindow[],
  ) {
    p.open.delete(this.key(w.deviceId, w.res, w.start));
    const S = this.sizes[w.res]!;
    const rows: AggregateRow[] = [];
    for (const metric of d.metricOrder) {
      const vals = w.values.get(metric);
      if (!vals) continue;
      let n = 0;
      let mean = 0;
      let m2 = 0;
      let sum = 0;
      for (const { x } of vals) {
        n++;
        if (n === 1) {
          mean = x;
          m2 = 0;
          sum = x;
        } else {
          const delta = x - mean;
          mean = mean + delta / n;
          m2 = m2 + delta * (x - mean);
          sum = sum + x;
        }
      }
      let first = vals[0]!;
      let last = vals[0]!;
      for (const v of vals) {
        if (v.ts < first.ts) first = v;
        if (v.ts >= last.ts) last = v;
      }
      rows.push({
        deviceId: w.deviceId,
        metric,
        resolution: this.labels[w.res]!,
        windowStart: w.start,
        windowEnd: w.start + S,
        count: n,
        sum,
        min: Math.min(...vals.map((v) => v.x)),
        max: Math.max(...vals.map((v) => v.x)),
        mean,
        stddev: m2 > 0 ? Math.sqrt(m2 / n) : 0,
        first: first.x,
        last: last.x,
      });
    }
    out.push({
      partition,
      deviceId: w.deviceId,
      resolution: this.labels[w.res]!,
      windowStart: w.start,
      windowEnd: w.start + S,
      reason,
      // Range mode: the window must lie wholly after the one that held the device's first event in the run.
      complete: reason !== 'flush' && w.start >= windowStart(d.knownFrom, S) + S,
      rows,
    });
  }
}

/** Canonical order for comparing outputs whose order within one step is not part of the contract. */
export function sortWindows(ws: readonly (ClosedWindow | PlainWindow)[]): PlainWindow[] {
  const key = (w: PlainWindow) => `${w.partition}|${w.deviceId}|${w.resolution.padStart(8, '0')}|${w.windowStart}`;
  return ws
    .map((w) => (w instanceof ClosedWindow ? w.toJSON() : w))
    .map((w) => ({ ...w, rows: [...w.rows].sort((a, b) => (a.metric < b.metric ? -1 : a.metric > b.metric ? 1 : 0)) }))
    .sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0));
}
