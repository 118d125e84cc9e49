import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import type { MetricStats } from '@fleetpulse/contracts';

const LivePoints = 300;

/** The open window's snapshot (`"final": false`), drawn apart until its final record replaces it. */
interface Provisional {
  x: number;
  mean: number;
  min: number;
  max: number;
  last: number;
}

/**
 * A live chart of one metric of one device on uPlot (canvas): mean with a min-max band, the last LivePoints windows
 * of the finest resolution seen. Points arrive whenever; the canvas is redrawn at most once per frame.
 *
 * Provisional values (snapshots of the open window, `"final": false`) are drawn distinctly: a hollow point joined to
 * the last final one by a dashed segment, named "provisional" in the chart's caption. The final record of that window
 * replaces it; a provisional of a window no newer than the newest final point, or older than the one drawn, is
 * ignored. The element's data attributes say what is drawn (`data-final`: newest final window start, ms;
 * `data-provisional`: the provisional's, empty when none), for tests and for anyone reading the page.
 */
export class LiveChart {
  readonly plot: uPlot;
  private readonly el: HTMLElement;
  private readonly caption: HTMLElement;
  private readonly xs: number[] = [];
  private readonly mean: number[] = [];
  private readonly min: number[] = [];
  private readonly max: number[] = [];
  private provisional: Provisional | null = null;
  private resolutionMs = Infinity;
  private pending = false;
  lastValue: number | null = null;
  /** Whether lastValue is a provisional one. */
  lastProvisional = false;

  constructor(
    parent: HTMLElement,
    readonly metric: string,
    plugins: uPlot.Plugin[] = [],
  ) {
    const el = document.createElement('div');
    el.className = 'chart';
    el.dataset.metric = metric;
    el.dataset.final = '';
    el.dataset.provisional = '';
    this.caption = document.createElement('span');
    this.caption.className = 'provisional-tag';
    this.caption.hidden = true;
    el.appendChild(this.caption);
    parent.appendChild(el);
    this.el = el;
    this.plot = new uPlot(
      { ...liveChartOptions(metric, Math.max(300, parent.clientWidth - 16), 120), plugins },
      [[], [], [], [], []],
      el,
    );
  }

  /** The window size the chart shows, ms (Infinity until a point came). */
  get resolution(): number {
    return this.resolutionMs;
  }

  /** Window start of the newest final point, ms (null: none). */
  get newestFinal(): number | null {
    const x = this.xs[this.xs.length - 1];
    return x === undefined ? null : x * 1000;
  }

  /** One window's statistics of this chart's metric (from a live window record, or REST history when `final`). */
  add(windowStart: number, windowEnd: number, r: MetricStats, final = true): void {
    const size = windowEnd - windowStart;
    if (size < this.resolutionMs) {
      // A finer resolution takes over the chart.
      this.resolutionMs = size;
      this.xs.length = this.mean.length = this.min.length = this.max.length = 0;
      this.provisional = null;
    } else if (size > this.resolutionMs) return;
    const x = windowStart / 1000;
    const lastX = this.xs[this.xs.length - 1];
    if (!final) {
      // Older than the final data, or than the provisional drawn: ignored.
      if (lastX !== undefined && x <= lastX) return;
      if (this.provisional && x < this.provisional.x) return;
      this.provisional = { x, mean: r.mean, min: r.min, max: r.max, last: r.last };
      this.lastValue = r.last;
      this.lastProvisional = true;
      return this.redraw();
    }
    if (lastX !== undefined && x <= lastX) {
      // A window already drawn (or one from a gap being filled): in its place.
      const at = this.xs.lastIndexOf(x);
      const i = at >= 0 ? at : this.xs.findIndex((v) => v > x);
      if (at < 0) {
        if (this.xs.length >= LivePoints && i === 0) return;
        this.xs.splice(i, 0, x);
        this.mean.splice(i, 0, r.mean);
        this.min.splice(i, 0, r.min);
        this.max.splice(i, 0, r.max);
        if (this.xs.length > LivePoints) for (const a of [this.xs, this.mean, this.min, this.max]) a.shift();
        return this.redraw();
      }
      this.mean[i] = r.mean;
      this.min[i] = r.min;
      this.max[i] = r.max;
      if (i === this.xs.length - 1 && !this.provisional) this.lastValue = r.last;
    } else {
      this.xs.push(x);
      this.mean.push(r.mean);
      this.min.push(r.min);
      this.max.push(r.max);
      if (this.xs.length > LivePoints) for (const a of [this.xs, this.mean, this.min, this.max]) a.shift();
      // The final of the provisional's window (or of a newer one) replaces it.
      if (this.provisional && this.provisional.x <= x) this.provisional = null;
      if (!this.provisional) {
        this.lastValue = r.last;
        this.lastProvisional = false;
      }
    }
    this.redraw();
  }

  private redraw(): void {
    if (this.pending) return;
    this.pending = true;
    requestAnimationFrame(() => {
      this.pending = false;
      const p = this.provisional;
      const n = this.xs.length;
      if (!p) {
        this.plot.setData([this.xs, this.mean, this.min, this.max, this.xs.map(() => null)]);
      } else {
        // The provisional window is one more x: no mean or band there; its own series joins it to the last final.
        const dashed: (number | null)[] = this.xs.map(() => null);
        if (n > 0) dashed[n - 1] = this.mean[n - 1]!;
        dashed.push(p.mean);
        this.plot.setData([[...this.xs, p.x], [...this.mean, null], [...this.min, null], [...this.max, null], dashed]);
      }
      this.el.dataset.final = n > 0 ? String(this.xs[n - 1]! * 1000) : '';
      this.el.dataset.provisional = p ? String(p.x * 1000) : '';
      this.el.dataset.provisionalValue = p ? String(p.last) : '';
      this.el.dataset.windows = String(n);
      this.caption.hidden = !p;
      this.caption.textContent = p ? `provisional ${new Date(p.x * 1000).toLocaleTimeString()}: ${fmt(p.mean)}` : '';
      this.caption.title = 'the open window so far; replaced by its final value when the window closes';
    });
  }

  /** Whether the chart holds a final point of window `windowStart` (ms). */
  hasFinal(windowStart: number): boolean {
    return this.xs.includes(windowStart / 1000);
  }

  get points(): number {
    return this.xs.length;
  }

  destroy(): void {
    this.plot.root.parentElement?.remove();
    this.plot.destroy();
  }
}

const fmt = (v: number) => (Math.abs(v) >= 100 ? v.toFixed(1) : v.toFixed(2));

function liveChartOptions(metric: string, width: number, height: number): uPlot.Options {
  const o = chartOptions(metric, width, height);
  o.series.push({
    label: 'provisional',
    stroke: '#2b7bb9',
    width: 1.5,
    dash: [4, 4],
    spanGaps: false,
    // A hollow point at the provisional window only (the segment starts at the last final point).
    points: { show: true, size: 7, width: 1.5, stroke: '#2b7bb9', fill: '#fff', filter: (u) => [u.data[0].length - 1] },
  });
  return o;
}

function chartOptions(metric: string, width: number, height: number): uPlot.Options {
  return {
    title: metric,
    width,
    height,
    cursor: { drag: { x: true, y: false } },
    legend: { show: false },
    scales: { x: { time: true } },
    series: [
      {},
      { label: 'mean', stroke: '#2b7bb9', width: 1.5 },
      { label: 'min', stroke: 'rgba(43,123,185,0.35)', width: 1 },
      { label: 'max', stroke: 'rgba(43,123,185,0.35)', width: 1 },
    ],
    bands: [{ series: [3, 2], fill: 'rgba(43,123,185,0.12)' }],
  };
}
