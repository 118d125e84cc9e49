import { StateCode, stateName, type DeviceState, type FleetModel } from './fleet-model';

/** Cell colours by state code (Stale, Live, Anomalous, Alerting). */
export const Colours: readonly string[] = ['#c3cad3', '#2fbf71', '#f08c00', '#e5484d'];
export const colourOf = (s: DeviceState): string =>
  Colours[s === 'live' ? StateCode.Live : s === 'anomalous' ? StateCode.Anomalous : s === 'alerting' ? 3 : 0]!;

const MaxCell = 24;
const MinCell = 3;
/** At most one re-layout (sort of the shown devices) this often while devices keep arriving. */
const LayoutEveryMs = 250;
/** States also change with time alone (live -> stale): every cell is re-derived at least this often. */
const SweepEveryMs = 500;
const NotDrawn = 255;

/**
 * The fleet as a canvas grid: one cell per shown device (sorted by id), coloured by state. Drawing is incremental:
 * each frame re-derives the state of every shown device only when the model changed (or every SweepEveryMs), and
 * paints just the cells whose state differs from what the canvas holds, grouped by colour. A full redraw happens on
 * a new layout only (devices added, filter changed, resized). No DOM per device.
 *
 * The canvas says what it shows in data attributes, for tests and for anyone reading the page: `data-cells` (devices
 * shown), `data-cols`, `data-pitch` (CSS px from one cell to the next), `data-gap`.
 */
export class FleetGrid {
  /** Model slots shown, in cell order. */
  private order = new Int32Array(0);
  /** Cell index by model slot (-1: not shown). */
  private cellOf = new Int32Array(0);
  /** State code drawn, by cell. */
  private drawn = new Uint8Array(0);
  private cols = 1;
  private pitch = MaxCell;
  private gap = 1;
  private dpr = 1;
  private layoutDirty = true;
  private lastLayout = 0;
  private lastSweep = 0;
  private seenVersion = -1;
  private seenAdded = -1;
  private search = '';
  private states = new Set<number>([0, 1, 2, 3]);
  /** Shown devices per state code, as of the last sweep. */
  readonly counts = new Uint32Array(4);
  /** Bumped when counts may have changed. */
  countsVersion = 0;
  private ctx: CanvasRenderingContext2D;
  private width = 0;
  private height = 0;
  private hover = -1;

  constructor(
    private readonly canvas: HTMLCanvasElement,
    private readonly wrap: HTMLElement,
    private readonly tip: HTMLElement,
    private readonly model: FleetModel,
    private readonly onOpen: (deviceId: string) => void,
    private readonly describe: (slot: number) => string,
  ) {
    this.ctx = canvas.getContext('2d', { alpha: false })!;
    new ResizeObserver(() => (this.layoutDirty = true)).observe(wrap);
    canvas.addEventListener('mousemove', (e) => this.onHover(e));
    canvas.addEventListener('mouseleave', () => {
      this.hover = -1;
      tip.hidden = true;
    });
    canvas.addEventListener('click', (e) => {
      const slot = this.slotAt(e);
      if (slot >= 0) this.onOpen(this.model.ids[slot]!);
    });
  }

  setFilter(search: string, states: readonly DeviceState[]): void {
    this.search = search.trim().toLowerCase();
    this.states = new Set(
      states.map((s) =>
        s === 'live' ? StateCode.Live : s === 'anomalous' ? StateCode.Anomalous : s === 'alerting' ? 3 : 0,
      ),
    );
    this.layoutDirty = true;
    this.lastLayout = 0;
  }

  /** One animation frame's work: a layout if due, else the cells whose state changed. */
  frame(now = Date.now()): void {
    const t = performance.now();
    if (this.model.added !== this.seenAdded) this.layoutDirty = true;
    if (this.layoutDirty && t - this.lastLayout >= LayoutEveryMs) return this.layout(now, t);
    if (this.model.version === this.seenVersion && t - this.lastSweep < SweepEveryMs) return;
    this.sweep(now, t);
  }

  /** The shown devices: search and state filters, sorted by id; sizes the canvas; draws every cell. */
  private layout(now: number, t: number): void {
    this.layoutDirty = false;
    this.lastLayout = t;
    this.seenAdded = this.model.added;
    const m = this.model;
    const n = m.size;
    if (this.cellOf.length < n) this.cellOf = new Int32Array(Math.max(n, this.cellOf.length * 2));
    this.cellOf.fill(-1);
    const allStates = this.states.size === 4;
    const shown: number[] = [];
    for (let i = 0; i < n; i++) {
      if (this.search && !m.ids[i]!.toLowerCase().includes(this.search)) continue;
      if (!allStates && !this.states.has(m.stateAt(i, now))) continue;
      shown.push(i);
    }
    const ids = m.ids;
    shown.sort((a, b) => (ids[a]! < ids[b]! ? -1 : ids[a]! > ids[b]! ? 1 : 0));
    this.order = Int32Array.from(shown);
    for (let k = 0; k < shown.length; k++) this.cellOf[shown[k]!] = k;
    this.drawn = new Uint8Array(shown.length).fill(NotDrawn);

    // The largest cell that fits every device in the visible area (else the smallest, and the area scrolls).
    const w = Math.max(100, this.wrap.clientWidth);
    const h = Math.max(100, this.wrap.clientHeight);
    const count = Math.max(1, shown.length);
    let p = MaxCell;
    while (p > MinCell && Math.ceil(count / Math.floor(w / p)) * p > h) p--;
    this.pitch = p;
    this.gap = p >= 5 ? 1 : 0;
    this.cols = Math.max(1, Math.floor(w / p));
    const rows = Math.ceil(shown.length / this.cols);
    this.dpr = window.devicePixelRatio || 1;
    this.width = this.cols * p;
    this.height = Math.max(p, rows * p);
    this.canvas.style.width = `${this.width}px`;
    this.canvas.style.height = `${this.height}px`;
    this.canvas.width = Math.round(this.width * this.dpr);
    this.canvas.height = Math.round(this.height * this.dpr);
    this.ctx = this.canvas.getContext('2d', { alpha: false })!;
    this.ctx.setTransform(this.dpr, 0, 0, this.dpr, 0, 0);
    this.ctx.fillStyle = '#fff';
    this.ctx.fillRect(0, 0, this.width, this.height);
    const d = this.canvas.dataset;
    d.cells = String(shown.length);
    d.cols = String(this.cols);
    d.pitch = String(p);
    d.gap = String(this.gap);
    this.sweep(now, t);
  }

  /** Re-derives the state of every shown device; paints the cells that changed, one fillStyle per colour. */
  private sweep(now: number, t: number): void {
    this.lastSweep = t;
    this.seenVersion = this.model.version;
    const m = this.model;
    const order = this.order;
    const drawn = this.drawn;
    const counts = this.counts;
    counts.fill(0);
    // Cells to paint, by state code (indices into order).
    const paint: number[][] = [[], [], [], []];
    let leftFilter = false;
    const allStates = this.states.size === 4;
    for (let k = 0; k < order.length; k++) {
      const s = m.stateAt(order[k]!, now);
      counts[s]!++;
      if (s !== drawn[k]) {
        paint[s]!.push(k);
        drawn[k] = s;
        if (!allStates && !this.states.has(s)) leftFilter = true;
      }
    }
    this.countsVersion++;
    const ctx = this.ctx;
    const p = this.pitch;
    const size = p - this.gap;
    for (let s = 0; s < 4; s++) {
      const cells = paint[s]!;
      if (cells.length === 0) continue;
      ctx.fillStyle = Colours[s]!;
      for (const k of cells) ctx.fillRect((k % this.cols) * p, Math.floor(k / this.cols) * p, size, size);
    }
    // A device whose state left the state filter goes at the next layout (devices entering it come with it too).
    if (leftFilter || (!allStates && t - this.lastLayout > 2000)) this.layoutDirty = true;
    if (this.hover >= 0 && !this.tip.hidden) this.tip.textContent = this.describe(this.hover);
  }

  private slotAt(e: MouseEvent): number {
    const r = this.canvas.getBoundingClientRect();
    const x = e.clientX - r.left;
    const y = e.clientY - r.top;
    if (x < 0 || y < 0 || x >= this.width) return -1;
    const k = Math.floor(y / this.pitch) * this.cols + Math.floor(x / this.pitch);
    return k < this.order.length ? this.order[k]! : -1;
  }

  private onHover(e: MouseEvent): void {
    const slot = this.slotAt(e);
    this.hover = slot;
    if (slot < 0) return void (this.tip.hidden = true);
    this.tip.textContent = this.describe(slot);
    this.tip.dataset.device = this.model.ids[slot]!;
    this.tip.hidden = false;
    const wr = this.wrap.getBoundingClientRect();
    const x = e.clientX - wr.left + this.wrap.scrollLeft;
    const y = e.clientY - wr.top + this.wrap.scrollTop;
    const flip = e.clientX - wr.left > wr.width - 240;
    this.tip.style.left = `${flip ? x - 12 - this.tip.offsetWidth : x + 12}px`;
    this.tip.style.top = `${y + 12}px`;
  }

  /** The cell of a device as drawn, CSS px from the canvas' top left (null: not shown). */
  cellRect(deviceId: string): { x: number; y: number; size: number; state: DeviceState } | null {
    const slot = this.model.indexOf(deviceId);
    if (slot === undefined) return null;
    const k = this.cellOf[slot] ?? -1;
    if (k < 0 || k >= this.order.length) return null;
    return {
      x: (k % this.cols) * this.pitch,
      y: Math.floor(k / this.cols) * this.pitch,
      size: this.pitch - this.gap,
      state: stateName(this.drawn[k]!),
    };
  }
}
