/**
 * Feature assembly: aggregate rows (one per device, metric, resolution and window) gathered into windows, until a
 * window holds every metric the active models need at its resolution. The wait is bounded: a window is let go,
 * complete or not, when a newer window of the same device and resolution arrives, or `maxWaitMs` of processing
 * time after its first row. A waiting window pins the offset of its first row (see `pinnedOffset`).
 */
import type { AggregateRow } from '@fleetpulse/contracts';
import { splitFeature } from './model-spec';

export interface WindowRows {
  deviceId: string;
  resolution: string;
  windowStart: number;
  partition: number;
  /** Offset of its first row: what a commit must not pass while the window waits. */
  firstOffset: bigint;
  /** Processing time of its first row, ms. */
  firstSeen: number;
  rows: Map<string, AggregateRow>;
}

/** metric names needed per resolution (the union over the active models). */
export type Needs = ReadonlyMap<string, ReadonlySet<string>>;

export function needsOf(models: Iterable<{ spec: { resolution: string; features: readonly string[] } }>): Needs {
  const m = new Map<string, Set<string>>();
  for (const { spec } of models) {
    let s = m.get(spec.resolution);
    if (!s) m.set(spec.resolution, (s = new Set()));
    for (const f of spec.features) s.add(splitFeature(f)[0]);
  }
  return m;
}

/**
 * The feature vector of one window for one model, written into `out` at `at`; false if a feature is missing or
 * not finite (the window cannot be scored by that model).
 */
export function fillVector(w: WindowRows, features: readonly string[], out: Float32Array, at: number): boolean {
  for (let i = 0; i < features.length; i++) {
    const [metric, stat] = splitFeature(features[i]!);
    const row = w.rows.get(metric);
    if (!row) return false;
    const v = row[stat];
    if (typeof v !== 'number' || !Number.isFinite(v)) return false;
    out[at + i] = v;
  }
  return true;
}

export function featureObject(w: WindowRows, features: readonly string[]): Record<string, number> {
  const o: Record<string, number> = {};
  for (const f of features) {
    const [metric, stat] = splitFeature(f);
    o[f] = w.rows.get(metric)![stat];
  }
  return o;
}

export class WindowAssembler {
  private needs: Needs = new Map();
  /** key `${resolution}|${deviceId}` -> waiting windows of that device, oldest first. */
  private readonly byDevice = new Map<string, WindowRows[]>();
  private count = 0;

  constructor(private readonly maxWaitMs: number) {}

  setNeeds(n: Needs): void {
    this.needs = n;
  }

  get waiting(): number {
    return this.count;
  }

  private complete(w: WindowRows): boolean {
    const need = this.needs.get(w.resolution);
    if (!need) return true;
    for (const m of need) if (!w.rows.has(m)) return false;
    return true;
  }

  /**
   * Adds one row; returns the windows it lets go (its own once complete, older ones of its device). Rows at a
   * resolution no model uses are ignored (nothing to wait for, nothing pinned).
   */
  add(partition: number, offset: bigint, row: AggregateRow, now: number): WindowRows[] {
    const need = this.needs.get(row.resolution);
    if (!need?.has(row.metric)) return [];
    const k = `${row.resolution}|${row.deviceId}`;
    let list = this.byDevice.get(k);
    if (!list) this.byDevice.set(k, (list = []));
    const out: WindowRows[] = [];
    let w = list.find((x) => x.windowStart === row.windowStart);
    if (!w) {
      // A newer window of the device: the older ones will get no more rows.
      while (list.length > 0 && list[0]!.windowStart < row.windowStart) {
        out.push(list.shift()!);
        this.count--;
      }
      w = {
        deviceId: row.deviceId,
        resolution: row.resolution,
        windowStart: row.windowStart,
        partition,
        firstOffset: offset,
        firstSeen: now,
        rows: new Map(),
      };
      list.push(w);
      list.sort((a, b) => a.windowStart - b.windowStart);
      this.count++;
    }
    w.rows.set(row.metric, row);
    if (this.complete(w)) {
      list.splice(list.indexOf(w), 1);
      this.count--;
      out.push(w);
    }
    if (list.length === 0) this.byDevice.delete(k);
    return out;
  }

  /** Windows waiting since before `now - maxWaitMs` (or all with `all`), let go. */
  expire(now: number, all = false): WindowRows[] {
    const out: WindowRows[] = [];
    for (const [k, list] of this.byDevice) {
      while (list.length > 0 && (all || now - list[0]!.firstSeen >= this.maxWaitMs)) {
        out.push(list.shift()!);
        this.count--;
      }
      if (list.length === 0) this.byDevice.delete(k);
    }
    return out;
  }

  /** Forgets a revoked partition's windows (its next owner re-reads them from the committed offset). */
  dropPartition(partition: number): void {
    for (const [k, list] of this.byDevice) {
      const keep = list.filter((w) => w.partition !== partition);
      this.count -= list.length - keep.length;
      if (keep.length === 0) this.byDevice.delete(k);
      else this.byDevice.set(k, keep);
    }
  }

  /** The smallest first offset of the partition's waiting windows, or null. */
  pinnedOffset(partition: number): bigint | null {
    let min: bigint | null = null;
    for (const list of this.byDevice.values())
      for (const w of list) if (w.partition === partition && (min === null || w.firstOffset < min)) min = w.firstOffset;
    return min;
  }
}
