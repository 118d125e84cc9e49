import type { AlertTransition, AnomalyScore, WindowRecord } from '@fleetpulse/contracts';
import { FleetGrid, Colours } from './fleet-grid';
import { FleetModel, States, StateCode, stateName, type DeviceState } from './fleet-model';

const fmtInt = (n: number) => Math.round(n).toLocaleString('en-US');

function ago(t: number, now: number): string {
  if (t <= 0) return 'never';
  const s = Math.round((now - t) / 1000);
  if (s < 1) return 'now';
  if (s < 120) return `${s} s ago`;
  if (s < 7200) return `${Math.round(s / 60)} min ago`;
  return new Date(t).toLocaleString();
}

/** A pipeline delay as text ("—" before anything came). */
function delay(end: number, now: number): string {
  if (end <= 0) return '—';
  // A window ending after now (a clock ahead of this one's) reads as no delay.
  const ms = Math.max(0, now - end);
  return ms < 10_000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.round(ms / 1000)} s`;
}

const StateCodes: Record<DeviceState, number> = {
  stale: StateCode.Stale,
  live: StateCode.Live,
  anomalous: StateCode.Anomalous,
  alerting: StateCode.Alerting,
};

/**
 * The fleet overview, the landing page: headline figures, a search box and state filters over a canvas grid of every
 * device (fleet-grid.ts), a tooltip on hover, a click opens the device. Fed by the fleet subscription's batches
 * (`aggregates`), anomalies, `alert` transitions and the REST device list.
 *
 * Figures (each element has `data-value`, the number, for tests):
 * - online / stale: devices with a record within the model's live span (15 s) of wall clock / the others;
 * - events/s in: the events the records carry (a record's largest metric `count`, finest resolution of each
 *   device), by second of arrival, averaged over 10 s;
 * - anomalous: devices with an anomalous score in the last 10 minutes; alerts firing: open (rule, device) episodes;
 * - delay, windows: now - windowEnd of the newest final window record that reached this page (the processor's
 *   lateness allowance, its publishing, the API and the socket: the age of what the fleet shows);
 *   delay, scores: now - the end of the newest anomalous score's window that reached the page (the same plus
 *   scoring; only anomalous scores are streamed, so it grows while none are). Per-service stage delays from the
 *   services' own metrics are not read by the dashboard (yet).
 */
export class FleetOverview {
  readonly model = new FleetModel();
  readonly grid: FleetGrid;
  private visible = true;
  private readonly figures = new Map<string, HTMLElement>();
  private readonly legend = new Map<DeviceState, HTMLElement>();
  private readonly search: HTMLInputElement;
  private readonly boxes: HTMLInputElement[] = [];
  private seenCounts = -1;

  constructor(
    private readonly root: HTMLElement,
    onOpen: (deviceId: string) => void,
  ) {
    root.innerHTML = `
      <div class="panel-head">
        <h2>Fleet overview</h2>
        <input class="fleet-search" type="search" placeholder="search devices" aria-label="search devices" />
        <span class="fleet-states" role="group" aria-label="states"></span>
      </div>
      <div class="fleet-figures"></div>
      <div class="fleet-grid-wrap"><canvas class="fleet-grid"></canvas><div class="fleet-tip" role="tooltip" hidden></div></div>`;
    const q = <T extends HTMLElement>(sel: string) => root.querySelector<T>(sel)!;
    this.search = q<HTMLInputElement>('.fleet-search');
    const states = q('.fleet-states');
    for (const s of States) {
      const label = document.createElement('label');
      label.dataset.state = s;
      label.innerHTML = `<input type="checkbox" checked /><i></i><span></span> <b>0</b>`;
      label.querySelector('i')!.style.background = Colours[StateCodes[s]]!;
      label.querySelector('span')!.textContent = s;
      const box = label.querySelector('input')!;
      box.value = s;
      this.boxes.push(box);
      box.addEventListener('change', () => this.applyFilter());
      this.legend.set(s, label.querySelector('b')!);
      states.appendChild(label);
    }
    const figs = q('.fleet-figures');
    for (const [key, label, title] of [
      ['online', 'online', 'devices with a record in the last 15 s'],
      ['stale', 'stale', 'devices without a record in the last 15 s'],
      [
        'events',
        'events/s in',
        "events in the records that reached this page (a record's largest metric count), a second, over 10 s",
      ],
      ['anomalous', 'anomalous', 'devices with an anomalous score in the last 10 minutes'],
      ['alerts', 'alerts firing', 'alert episodes firing (rule and device)'],
      ['delay-windows', 'delay: windows', 'now - end of the newest final window that reached this page'],
      ['delay-scores', 'delay: scores', 'now - end of the window of the newest anomalous score that reached this page'],
    ] as const) {
      const el = document.createElement('div');
      el.dataset.fig = key;
      el.title = title;
      el.innerHTML = '<b>—</b><span></span>';
      el.querySelector('span')!.textContent = label;
      figs.appendChild(el);
      this.figures.set(key, el);
    }
    this.search.addEventListener('input', () => this.applyFilter());
    this.grid = new FleetGrid(
      q<HTMLCanvasElement>('.fleet-grid'),
      q('.fleet-grid-wrap'),
      q('.fleet-tip'),
      this.model,
      onOpen,
      (slot) => this.describe(slot),
    );
    const tick = () => {
      if (this.visible) {
        this.grid.frame();
        if (this.grid.countsVersion !== this.seenCounts) this.drawLegend();
      }
      requestAnimationFrame(tick);
    };
    requestAnimationFrame(tick);
    setInterval(() => this.visible && this.drawFigures(), 1000);
  }

  /** Shown (the landing page) or hidden (a device is open): hidden, nothing is drawn. */
  show(on: boolean): void {
    this.visible = on;
    this.root.hidden = !on;
    if (on) this.drawFigures();
  }

  records(rs: readonly WindowRecord[]): void {
    for (const r of rs) this.model.record(r);
  }

  record(r: WindowRecord): void {
    this.model.record(r);
  }

  anomaly(s: AnomalyScore, live = true): void {
    this.model.anomaly(s, live);
  }

  alert(t: AlertTransition): void {
    this.model.alert(t);
  }

  listed(deviceId: string, lastSeen: number | null): void {
    this.model.listed(deviceId, lastSeen);
  }

  private applyFilter(): void {
    this.grid.setFilter(
      this.search.value,
      this.boxes.filter((b) => b.checked).map((b) => b.value as DeviceState),
    );
  }

  private describe(slot: number): string {
    const d = this.model.detail(slot);
    const now = Date.now();
    const state = stateName(this.model.stateAt(slot, now));
    const parts = [`${d.deviceId} · ${state}`, `last record ${ago(d.seenAt, now)}`];
    if (d.windowEnd > 0) parts.push(`window to ${new Date(d.windowEnd).toLocaleTimeString()}, ${d.events} events`);
    if (d.anomalyAt > 0) parts.push(`anomaly at ${new Date(d.anomalyAt).toLocaleTimeString()}`);
    if (d.rules > 0) parts.push(`${d.rules} alert${d.rules > 1 ? 's' : ''} firing`);
    return parts.join('\n');
  }

  private drawLegend(): void {
    this.seenCounts = this.grid.countsVersion;
    for (const [s, el] of this.legend) {
      const v = String(this.grid.counts[StateCodes[s]]);
      if (el.textContent !== v) el.textContent = v;
    }
  }

  private setFig(key: string, value: number, text: string): void {
    const el = this.figures.get(key)!;
    el.dataset.value = String(value);
    el.firstElementChild!.textContent = text;
  }

  private drawFigures(): void {
    const now = Date.now();
    const s = this.model.summary(now);
    this.setFig('online', s.online, `${fmtInt(s.online)} / ${fmtInt(s.devices)}`);
    this.setFig('stale', s.stale, fmtInt(s.stale));
    this.setFig('events', s.eventsPerSec, fmtInt(s.eventsPerSec));
    this.setFig('anomalous', s.anomalous, fmtInt(s.anomalous));
    this.setFig('alerts', s.alertsFiring, fmtInt(s.alertsFiring));
    const w = this.model.newestWindowEnd;
    const sc = this.model.newestScoreEnd;
    this.setFig('delay-windows', w > 0 ? now - w : -1, delay(w, now));
    this.setFig('delay-scores', sc > 0 ? now - sc : -1, delay(sc, now));
  }
}
