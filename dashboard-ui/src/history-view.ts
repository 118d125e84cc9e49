import uPlot from 'uplot';
import type { DeviceMarkers, MetricSeries, Range } from './device-history';

/** Cursor sync group of a device's history charts (and its live ones: the same marker plugin). */
const SyncKey = 'device-history';
const AnomalyColour = '#e5484d';
const AlertFill = 'rgba(245, 140, 40, 0.18)';
const AlertEdge = 'rgba(214, 110, 10, 0.9)';

/**
 * A uPlot plugin that draws a device's markers over a chart, in its `draw` hook (so on every redraw, under the
 * cursor): alert episodes as shaded spans with a solid edge where they start (an episode still firing runs to the
 * chart's right edge), anomalies as red vertical lines with a triangle at the top. `markers()` is read at each draw,
 * so live ones show on the next redraw; `onDrawn` gets how many of each were in view (the chart's data attributes).
 */
export function markerPlugin(
  markers: () => DeviceMarkers | null,
  onDrawn?: (anomalies: number, alerts: number) => void,
): uPlot.Plugin {
  return {
    hooks: {
      draw: (u) => {
        const m = markers();
        const min = u.scales.x?.min;
        const max = u.scales.x?.max;
        if (!m || min === undefined || max === undefined) return onDrawn?.(0, 0);
        const range = { from: min * 1000, to: max * 1000 + 1 };
        const { left, top, width, height } = u.bbox;
        const ctx = u.ctx;
        const px = (ms: number) => Math.round(u.valToPos(ms / 1000, 'x', true));
        const spans = m.alertSpans(range);
        const anomalies = m.anomalies(range);
        ctx.save();
        ctx.beginPath();
        ctx.rect(left, top, width, height);
        ctx.clip();
        for (const s of spans) {
          const a = Math.max(left, px(s.from));
          const b = s.to === null ? left + width : Math.min(left + width, px(s.to));
          ctx.fillStyle = AlertFill;
          ctx.fillRect(a, top, Math.max(2, b - a), height);
          if (s.from >= range.from) {
            ctx.fillStyle = AlertEdge;
            ctx.fillRect(a, top, 2 * devicePixelRatio, height);
          }
        }
        ctx.strokeStyle = AnomalyColour;
        ctx.fillStyle = AnomalyColour;
        ctx.lineWidth = 1.5 * devicePixelRatio;
        const tri = 5 * devicePixelRatio;
        for (const a of anomalies) {
          const x = px(a.at);
          ctx.beginPath();
          ctx.setLineDash([4 * devicePixelRatio, 3 * devicePixelRatio]);
          ctx.moveTo(x, top);
          ctx.lineTo(x, top + height);
          ctx.stroke();
          ctx.setLineDash([]);
          ctx.beginPath();
          ctx.moveTo(x - tri, top);
          ctx.lineTo(x + tri, top);
          ctx.lineTo(x, top + tri * 1.6);
          ctx.closePath();
          ctx.fill();
        }
        ctx.restore();
        onDrawn?.(anomalies.length, spans.length);
      },
    },
  };
}

/**
 * The device's history: a chart per metric (mean line, min-max band) of one range at one resolution, all on the same
 * x range with synced cursors. Dragging across any chart calls `onZoom(from, to)` once (epoch ms); the caller loads
 * that range and shows it again. Markers (anomalies, alert spans) from `markers`.
 *
 * Data attributes for tests and readers: the root's `data-from`, `data-to` (ms), `data-resolution`, `data-charts`;
 * each chart's `data-metric`, `data-points`, `data-anomalies` and `data-alerts` (markers in view at its last draw).
 */
export class HistoryView {
  private plots: uPlot[] = [];
  private zoomPending: Range | null = null;
  private markers: DeviceMarkers | null = null;

  constructor(
    private readonly root: HTMLElement,
    private readonly onZoom: (from: number, to: number) => void,
  ) {}

  setMarkers(m: DeviceMarkers | null): void {
    this.markers = m;
    this.redraw();
  }

  /** Markers changed (a live anomaly or alert): drawn again, data unchanged. */
  redraw(): void {
    for (const p of this.plots) p.redraw(false, false);
  }

  show(series: Map<string, MetricSeries>, range: Range, resolution: string): void {
    this.clear();
    const width = Math.max(300, this.root.clientWidth - 16);
    for (const [metric, s] of series) {
      const el = document.createElement('div');
      el.className = 'chart';
      el.dataset.metric = metric;
      el.dataset.points = String(s.points);
      this.root.appendChild(el);
      const plot = new uPlot(
        this.options(metric, width, range, (anomalies, alerts) => {
          el.dataset.anomalies = String(anomalies);
          el.dataset.alerts = String(alerts);
        }),
        [s.xs, s.mean, s.min, s.max],
        el,
      );
      this.plots.push(plot);
    }
    Object.assign(this.root.dataset, {
      from: String(range.from),
      to: String(range.to),
      resolution,
      charts: String(series.size),
    });
  }

  /** A message in place of the charts (an error, nothing stored). */
  message(text: string): void {
    this.clear();
    const p = document.createElement('p');
    p.className = 'muted';
    p.textContent = text;
    this.root.appendChild(p);
    this.root.dataset.charts = '0';
  }

  clear(): void {
    for (const p of this.plots) p.destroy();
    this.plots = [];
    this.root.replaceChildren();
  }

  private options(
    metric: string,
    width: number,
    range: Range,
    onDrawn: (anomalies: number, alerts: number) => void,
  ): uPlot.Options {
    return {
      title: metric,
      width,
      height: 150,
      // The drag selects a range (no uPlot zoom of its own: the range is loaded again at the resolution it calls for).
      cursor: { drag: { x: true, y: false, setScale: false }, sync: { key: SyncKey } },
      legend: { show: false },
      scales: { x: { time: true, range: () => [range.from / 1000, range.to / 1000] } },
      series: [
        {},
        { label: 'mean', stroke: '#2b7bb9', width: 1.5 },
        { label: 'min', stroke: 'rgba(43,123,185,0.35)', width: 1 },
        { label: 'max', stroke: 'rgba(43,123,185,0.35)', width: 1 },
      ],
      bands: [{ series: [3, 2], fill: 'rgba(43,123,185,0.12)' }],
      plugins: [markerPlugin(() => this.markers, onDrawn)],
      hooks: { setSelect: [(u) => this.selected(u)] },
    };
  }

  /** A drag ended on a chart (synced charts report it too): one zoom, on the next turn. */
  private selected(u: uPlot): void {
    const { left, width } = u.select;
    if (width < 3) return;
    const from = u.posToVal(left, 'x') * 1000;
    const to = u.posToVal(left + width, 'x') * 1000;
    u.setSelect({ left: 0, top: 0, width: 0, height: 0 }, false);
    if (this.zoomPending) return;
    this.zoomPending = { from, to };
    setTimeout(() => {
      const z = this.zoomPending;
      this.zoomPending = null;
      if (z) this.onZoom(z.from, z.to);
    }, 0);
  }
}
