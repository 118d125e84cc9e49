/**
 * The device view's history, the parts without DOM: which stored resolution a time range calls for, the zoom stack,
 * the charts' series from window records, the anomaly markers and alert spans drawn over them, and what a CSV export
 * of the range shown covers. `history-view.ts` draws them; `main.ts` fetches.
 */
import type { AlertTransition, AnomalyScore, WindowRecord } from '@fleetpulse/contracts';

/** Points a chart aims at, at most: auto picks the finest stored resolution that stays within it. */
export const PointBudget = 1500;
/** Window records one history load reads at most (so, points per chart); past it the load says it was cut. */
export const MaxHistoryWindows = 5000;
/** Markers kept per device: anomaly scores and alert transitions (the oldest go first). */
export const MaxAnomalies = 500;
export const MaxTransitions = 500;
/** A zoom narrower than this is taken for a click, not a range. */
export const MinZoomMs = 10_000;

/** `10s` -> 10000; NaN when not `<seconds>s`. */
export function resolutionMsOf(resolution: string): number {
  const m = /^(\d+)s$/.exec(resolution);
  return m ? Number(m[1]) * 1000 : NaN;
}

/**
 * The resolution a range of `spanMs` is drawn at: the finest of `stored` whose windows over the span stay within
 * `budget` points, else (a range too long for any) the coarsest. Null when none is stored.
 */
export function chooseResolution(spanMs: number, stored: readonly string[], budget = PointBudget): string | null {
  const sorted = stored
    .filter((r) => Number.isFinite(resolutionMsOf(r)))
    .sort((a, b) => resolutionMsOf(a) - resolutionMsOf(b));
  if (sorted.length === 0) return null;
  return sorted.find((r) => Math.ceil(spanMs / resolutionMsOf(r)) <= budget) ?? sorted[sorted.length - 1]!;
}

/**
 * The stored resolutions named by the API's `400` for a live-only one (`resolution 1s is live only (not stored);
 * stored: 10s,60s`); null when the message is another one.
 */
export function storedFromError(message: string): string[] | null {
  const m = /live only \(not stored\); stored: (\S*)$/.exec(message);
  if (!m) return null;
  return m[1] === 'none' || m[1] === '' ? [] : m[1]!.split(',');
}

export interface Range {
  /** Epoch ms, inclusive. */
  from: number;
  /** Epoch ms, exclusive. */
  to: number;
}

/** The range picked, then each zoom into it: `current` is the one shown; `back` undoes one zoom, `reset` all. */
export class ZoomStack {
  private readonly stack: Range[];

  constructor(base: Range) {
    this.stack = [base];
  }

  get current(): Range {
    return this.stack[this.stack.length - 1]!;
  }

  /** Zooms in this deep (0: the range picked). */
  get depth(): number {
    return this.stack.length - 1;
  }

  /** Zooms to `[from, to)` (ordered, clipped to the range shown); false (nothing changes) when narrower than `minMs`. */
  zoom(from: number, to: number, minMs = MinZoomMs): boolean {
    const cur = this.current;
    const a = Math.max(cur.from, Math.min(from, to));
    const b = Math.min(cur.to, Math.max(from, to));
    if (!(b - a >= minMs)) return false;
    // Bounded: a stack deeper than this is a user dragging forever.
    if (this.stack.length >= 50) this.stack.splice(1, 1);
    this.stack.push({ from: Math.floor(a), to: Math.ceil(b) });
    return true;
  }

  back(): boolean {
    if (this.stack.length === 1) return false;
    this.stack.pop();
    return true;
  }

  reset(base: Range = this.stack[0]!): void {
    this.stack.length = 0;
    this.stack.push(base);
  }
}

/** One metric's chart data: x in seconds (uPlot's time scale), mean and the min-max band; null where a window lacks it. */
export interface MetricSeries {
  xs: number[];
  mean: (number | null)[];
  min: (number | null)[];
  max: (number | null)[];
  /** Windows that hold the metric. */
  points: number;
}

/**
 * The series of every metric of `windows` (and of `metrics`, known to the device, even without a window in the
 * range), sorted by name; all share the x of every window, oldest first, at most `maxPoints` (the newest dropped).
 */
export function metricSeries(
  windows: readonly WindowRecord[],
  metrics: Iterable<string> = [],
  maxPoints = MaxHistoryWindows,
): Map<string, MetricSeries> {
  const sorted = [...windows].sort((a, b) => a.windowStart - b.windowStart).slice(0, maxPoints);
  const names = new Set(metrics);
  for (const w of sorted) for (const m of Object.keys(w.metrics)) names.add(m);
  const xs = sorted.map((w) => w.windowStart / 1000);
  const out = new Map<string, MetricSeries>();
  for (const m of [...names].sort()) {
    const s: MetricSeries = { xs, mean: [], min: [], max: [], points: 0 };
    for (const w of sorted) {
      const v = w.metrics[m];
      s.mean.push(v ? v.mean : null);
      s.min.push(v ? v.min : null);
      s.max.push(v ? v.max : null);
      if (v) s.points++;
    }
    out.set(m, s);
  }
  return out;
}

export interface AnomalyMarker {
  /** Window start, epoch ms. */
  at: number;
  resolution: string;
  model: string;
  score: number;
}

/** One alert episode of a rule on the device: from the window that fired it to the one that resolved it. */
export interface AlertSpan {
  ruleId: string;
  ruleName: string;
  /** The episode's first window, epoch ms. */
  from: number;
  /** The resolving window's start, epoch ms; null while firing. */
  to: number | null;
}

/**
 * A device's anomaly scores and alert transitions (REST history and live events), each once, at most `MaxAnomalies`
 * and `MaxTransitions` (the oldest windows go first), and what of them falls in a range.
 */
export class DeviceMarkers {
  private readonly scores = new Map<string, AnomalyScore>();
  private readonly transitions = new Map<string, AlertTransition>();

  constructor(
    readonly deviceId: string,
    private readonly maxAnomalies = MaxAnomalies,
    private readonly maxTransitions = MaxTransitions,
  ) {}

  /** Anomalous scores of this device (others, and non-anomalous ones, are passed over). */
  addAnomalies(scores: Iterable<AnomalyScore>): void {
    for (const s of scores) {
      if (s.deviceId !== this.deviceId || s.anomalous === false) continue;
      this.scores.set(`${s.windowStart}|${s.resolution}|${s.model}`, s);
    }
    trim(this.scores, this.maxAnomalies, (s) => s.windowStart);
  }

  addTransitions(transitions: Iterable<AlertTransition>): void {
    for (const t of transitions) if (t.deviceId === this.deviceId) this.transitions.set(t.id, t);
    trim(this.transitions, this.maxTransitions, (t) => t.windowStart);
  }

  get size(): { anomalies: number; transitions: number } {
    return { anomalies: this.scores.size, transitions: this.transitions.size };
  }

  /** Anomaly markers of windows starting in the range, oldest first (then by model). */
  anomalies(r: Range): AnomalyMarker[] {
    return [...this.scores.values()]
      .filter((s) => s.windowStart >= r.from && s.windowStart < r.to)
      .sort((a, b) => a.windowStart - b.windowStart || a.model.localeCompare(b.model))
      .map((s) => ({ at: s.windowStart, resolution: s.resolution, model: s.model, score: s.score }));
  }

  /** Alert episodes (rule and episode) that overlap the range, by start; an episode still firing runs to `to`. */
  alertSpans(r: Range): AlertSpan[] {
    return alertSpans(this.transitions.values()).filter((s) => s.from < r.to && (s.to === null || s.to > r.from));
  }
}

/**
 * Alert transitions as episodes: one per rule and episode (every transition names its episode, so a resolve whose
 * firing is older than the history read still gives its start), ended by its `resolved` transition, if any.
 */
export function alertSpans(transitions: Iterable<AlertTransition>): AlertSpan[] {
  const spans = new Map<string, AlertSpan>();
  for (const t of transitions) {
    const key = `${t.ruleId}|${t.deviceId}|${t.episode}`;
    let s = spans.get(key);
    if (!s) spans.set(key, (s = { ruleId: t.ruleId, ruleName: t.ruleName, from: t.episode, to: null }));
    if (t.state === 'resolved') s.to = Math.max(t.windowStart, t.episode);
  }
  return [...spans.values()].sort((a, b) => a.from - b.from || a.ruleId.localeCompare(b.ruleId));
}

/** Drops the entries of the oldest `at` until `max` remain. */
function trim<T>(m: Map<string, T>, max: number, at: (v: T) => number): void {
  if (m.size <= max) return;
  const drop = [...m.entries()].sort((a, b) => at(a[1]) - at(b[1])).slice(0, m.size - max);
  for (const [k] of drop) m.delete(k);
}

/** What a CSV export of the view covers: the range shown (zoomed or not) at the resolution shown, and its file name. */
export function csvExport(
  deviceId: string,
  range: Range,
  resolution: string,
): Range & { resolution: string; name: string } {
  const iso = (t: number) => new Date(t).toISOString().replace(/[:.]/g, '-');
  return { ...range, resolution, name: `${deviceId}-${resolution}-${iso(range.from)}_${iso(range.to)}.csv` };
}

/** `45 s`, `15 min`, `2 h 30 min`, `3.0 d`: how the view names the length of its range. */
export function spanLabel(ms: number): string {
  if (ms < 60_000) return `${Math.round(ms / 1000)} s`;
  const min = Math.round(ms / 60_000);
  if (min < 60) return `${min} min`;
  const h = Math.floor(min / 60);
  const rest = min % 60;
  if (h < 48) return rest === 0 ? `${h} h` : `${h} h ${rest} min`;
  return `${(ms / 86_400_000).toFixed(1)} d`;
}
