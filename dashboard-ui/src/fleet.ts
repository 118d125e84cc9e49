/** One row of the fleet overview. */
export interface FleetDevice {
  deviceId: string;
  lastSeen: number | null;
  metrics: Set<string>;
  anomalies: number;
  lastAnomalyAt: number | null;
  /** Last value (`last`) of the overview's metric, and its resolution. */
  value: number | null;
}

const RowHeight = 28;
const Overscan = 8;
const StaleMs = 60_000;
const RecentAnomalyMs = 10 * 60_000;

export function statusOf(d: FleetDevice, now: number): 'anomaly' | 'stale' | 'ok' | 'unknown' {
  if (d.lastAnomalyAt !== null && now - d.lastAnomalyAt < RecentAnomalyMs) return 'anomaly';
  if (d.lastSeen === null) return 'unknown';
  return now - d.lastSeen > StaleMs ? 'stale' : 'ok';
}

export function ago(t: number | null, now: number): string {
  if (t === null) return '—';
  const s = Math.round((now - t) / 1000);
  if (s < 0) return 'now';
  if (s < 60) return `${s}s ago`;
  if (s < 3600) return `${Math.floor(s / 60)}m ago`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ago`;
  return `${Math.floor(s / 86400)}d ago`;
}

/**
 * Virtualised list: a spacer gives the scroll height of every row, and only the rows in view (plus a few) exist in
 * the DOM, reused from a pool, so 10,000 devices cost as much as 40. Updates only mark the list dirty; it renders at
 * most once per animation frame.
 */
export class FleetList {
  private readonly devices = new Map<string, FleetDevice>();
  private order: FleetDevice[] = [];
  private orderDirty = true;
  private dirty = true;
  private filter = '';
  private selected: string | null = null;
  private readonly pool: HTMLDivElement[] = [];

  constructor(
    private readonly scroll: HTMLElement,
    private readonly spacer: HTMLElement,
    private readonly rows: HTMLElement,
    private readonly onSelect: (deviceId: string) => void,
  ) {
    scroll.addEventListener('scroll', () => this.markDirty(), { passive: true });
    new ResizeObserver(() => this.markDirty()).observe(scroll);
    rows.addEventListener('click', (e) => {
      const row = (e.target as HTMLElement).closest<HTMLElement>('[data-device]');
      if (row?.dataset.device) this.onSelect(row.dataset.device);
    });
    const tick = () => {
      if (this.dirty) this.render();
      requestAnimationFrame(tick);
    };
    requestAnimationFrame(tick);
    // "last seen" ages even without data.
    setInterval(() => this.markDirty(), 1000);
  }

  get size(): number {
    return this.devices.size;
  }

  get(deviceId: string): FleetDevice | undefined {
    return this.devices.get(deviceId);
  }

  upsert(deviceId: string): FleetDevice {
    let d = this.devices.get(deviceId);
    if (!d) {
      d = { deviceId, lastSeen: null, metrics: new Set(), anomalies: 0, lastAnomalyAt: null, value: null };
      this.devices.set(deviceId, d);
      this.orderDirty = true;
    }
    this.dirty = true;
    return d;
  }

  setFilter(f: string): void {
    this.filter = f.trim().toLowerCase();
    this.orderDirty = true;
    this.markDirty();
  }

  select(deviceId: string | null): void {
    this.selected = deviceId;
    this.markDirty();
  }

  markDirty(): void {
    this.dirty = true;
  }

  private render(): void {
    this.dirty = false;
    if (this.orderDirty) {
      this.orderDirty = false;
      const all = [...this.devices.values()];
      this.order = (this.filter ? all.filter((d) => d.deviceId.toLowerCase().includes(this.filter)) : all).sort(
        (a, b) => (a.deviceId < b.deviceId ? -1 : a.deviceId > b.deviceId ? 1 : 0),
      );
    }
    // Only what changed is written: an unchanged attribute written again still invalidates style (10,000 devices
    // updating mark the list dirty every frame).
    setStyle(this.spacer, 'height', `${this.order.length * RowHeight}px`);
    const first = Math.max(0, Math.floor(this.scroll.scrollTop / RowHeight) - Overscan);
    const count = Math.ceil(this.scroll.clientHeight / RowHeight) + 2 * Overscan;
    const last = Math.min(this.order.length, first + count);
    const now = Date.now();
    let used = 0;
    for (let i = first; i < last; i++, used++) {
      const d = this.order[i]!;
      let el = this.pool[used];
      if (!el) {
        el = document.createElement('div');
        el.className = 'fleet-row';
        el.innerHTML = '<span></span><span></span><span></span><span></span><span></span>';
        this.pool.push(el);
        this.rows.appendChild(el);
      }
      setStyle(el, 'display', '');
      setStyle(el, 'transform', `translateY(${i * RowHeight}px)`);
      if (el.dataset.device !== d.deviceId) el.dataset.device = d.deviceId;
      const status = statusOf(d, now);
      if (el.dataset.status !== status) el.dataset.status = status;
      const sel = d.deviceId === this.selected;
      if (el.classList.contains('selected') !== sel) el.classList.toggle('selected', sel);
      const cells = el.children;
      setText(cells[0], d.deviceId);
      setText(cells[1], ago(d.lastSeen, now));
      setText(cells[2], status);
      setText(cells[3], d.value === null ? '' : d.value.toFixed(2));
      setText(cells[4], d.anomalies ? String(d.anomalies) : '');
    }
    for (let i = used; i < this.pool.length; i++) setStyle(this.pool[i]!, 'display', 'none');
  }
}

function setStyle(el: HTMLElement, prop: 'display' | 'transform' | 'height', value: string): void {
  if (el.style[prop] !== value) el.style[prop] = value;
}

function setText(el: Element | undefined, text: string): void {
  if (el && el.textContent !== text) el.textContent = text;
}
