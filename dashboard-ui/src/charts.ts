import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import type { AggregateRow, MetricStats } from '@fleetpulse/contracts';

const LivePoints = 300;

/**
 * A live chart of one metric of one device on uPlot (canvas): mean with a min-max band, the last LivePoints windows
 * of the finest resolution seen. Points arrive whenever; the canvas is redrawn at most once per frame.
 */
export class LiveChart {
  readonly plot: uPlot;
  private readonly xs: number[] = [];
  private readonly mean: number[] = [];
  private readonly min: number[] = [];
  private readonly max: number[] = [];
  private resolutionMs = Infinity;
  private pending = false;
  lastValue: number | null = null;

  constructor(
    parent: HTMLElement,
    readonly metric: string,
  ) {
    const el = document.createElement('div');
    el.className = 'chart';
    el.dataset.metric = metric;
    parent.appendChild(el);
    this.plot = new uPlot(chartOptions(metric, Math.max(300, parent.clientWidth - 16), 120), [[], [], [], []], el);
  }

  /** One window's statistics of this chart's metric (from a live window record). */
  add(windowStart: number, windowEnd: number, r: MetricStats): void {
    const size = windowEnd - windowStart;
    if (size < this.resolutionMs) {
      // A finer resolution takes over the chart.
      this.resolutionMs = size;
      this.xs.length = this.mean.length = this.min.length = this.max.length = 0;
    } else if (size > this.resolutionMs) return;
    const x = windowStart / 1000;
    const lastX = this.xs[this.xs.length - 1];
    if (lastX !== undefined && x <= lastX) {
      const i = this.xs.lastIndexOf(x);
      if (i < 0) return;
      this.mean[i] = r.mean;
      this.min[i] = r.min;
      this.max[i] = r.max;
    } else {
      this.xs.push(x);
      this.mean.push(r.mean);
      this.min.push(r.min);
      this.max.push(r.max);
      if (this.xs.length > LivePoints) for (const a of [this.xs, this.mean, this.min, this.max]) a.shift();
    }
    this.lastValue = r.last;
    if (!this.pending) {
      this.pending = true;
      requestAnimationFrame(() => {
        this.pending = false;
        this.plot.setData([this.xs, this.mean, this.min, this.max]);
      });
    }
  }

  get points(): number {
    return this.xs.length;
  }

  destroy(): void {
    this.plot.root.parentElement?.remove();
    this.plot.destroy();
  }
}

/** A history chart: one REST range at once. */
export function historyChart(parent: HTMLElement, metric: string, points: AggregateRow[]): uPlot {
  parent.replaceChildren();
  const el = document.createElement('div');
  el.className = 'chart';
  parent.appendChild(el);
  const data: uPlot.AlignedData = [
    points.map((p) => p.windowStart / 1000),
    points.map((p) => p.mean),
    points.map((p) => p.min),
    points.map((p) => p.max),
  ];
  return new uPlot(chartOptions(metric, Math.max(300, parent.clientWidth - 16), 180), data, el);
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
