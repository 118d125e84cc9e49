import './style.css';
import type { AlertTransition, AnomalyScore, WindowRecord } from '@fleetpulse/contracts';
import type { ModelStatus, SessionInfo } from '@fleetpulse/dashboard-api/wire';
import {
  fetchAnomalies,
  fetchDevices,
  fetchAlertHistory,
  fetchModels,
  fetchWindowRange,
  fetchWindows,
  fetchSession,
  login,
  logout,
  onUnauthorized,
  Unauthorized,
} from './api';
import { AlertsView } from './alerts';
import { LiveChart } from './charts';
import { FleetList } from './fleet';
import { FleetOverview } from './fleet-view';
import { download, windowsCsv } from './device-csv';
import {
  chooseResolution,
  csvExport,
  DeviceMarkers,
  MaxHistoryWindows,
  metricSeries,
  resolutionMsOf,
  spanLabel,
  storedFromError,
  ZoomStack,
  type Range,
} from './device-history';
import { HistoryView, markerPlugin } from './history-view';
import { Live, type ConnState } from './live';

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;

/** The list shows this metric's last value. */
const OverviewMetric = 'temp';
const FeedMax = 200;

const fleet = new FleetList($('fleet-scroll'), $('fleet-spacer'), $('fleet-rows'), (id) => selectDevice(id));
$<HTMLInputElement>('filter').addEventListener('input', (e) => fleet.setFilter((e.target as HTMLInputElement).value));
/** The landing page: the fleet as a grid (fleet-view.ts); a device opened hides it, "Fleet" brings it back. */
const overview = new FleetOverview($('overview'), (id) => selectDevice(id));

// ---- connection indicator, and the banner while the API is away
const conn = $('conn');
const banner = $('live-banner');
/** When the live connection was lost (null: connected, or never yet). */
let lostAt: number | null = null;
function setConn(state: ConnState, detail?: string): void {
  if (state === 'reconnecting' || (state === 'offline' && conn.dataset.state === 'live')) {
    lostAt ??= Date.now();
    banner.dataset.state = 'lost';
    banner.textContent = `Connection to the dashboard API lost (${detail ?? 'no answer'}): reconnecting… Live values are paused; what is missed meanwhile is filled in from history once it is back.`;
    banner.hidden = false;
  }
  conn.dataset.state = state;
  conn.title = detail ?? '';
  conn.querySelector('span')!.textContent =
    state === 'live'
      ? 'live'
      : state === 'reconnecting'
        ? 'reconnecting…'
        : state === 'offline'
          ? 'offline'
          : 'connecting…';
}

// ---- live data: v2 window records, every metric of one device, resolution and window
function seen(r: WindowRecord): void {
  // A provisional record (the open window so far) comes for the open device only; the fleet list shows final ones.
  if (r.final === false) return;
  const d = fleet.upsert(r.deviceId);
  if (d.lastSeen === null || r.windowEnd > d.lastSeen) d.lastSeen = r.windowEnd;
  for (const m of Object.keys(r.metrics)) d.metrics.add(m);
  const overview = r.metrics[OverviewMetric];
  if (overview) d.value = overview.last;
}

function onAggregate(r: WindowRecord): void {
  seen(r);
  overview.record(r);
  if (r.deviceId === selected) liveRecord(r);
}

/** The live socket, once signed in (the session cookie authenticates its handshake). */
let live: Live | undefined;
/** The alerts panel (alerts.ts), once signed in. */
let alerts: AlertsView | undefined;

// ---- fleet overview
/** Whether the device list stopped at fetchDevices' bound: then the others show up as they report live. */
let listCut = false;

async function loadFleet(): Promise<void> {
  try {
    const listed = await fetchDevices((devices) => {
      for (const dev of devices) {
        overview.listed(dev.deviceId, dev.lastSeen);
        const d = fleet.upsert(dev.deviceId);
        if (dev.lastSeen !== null && (d.lastSeen === null || dev.lastSeen > d.lastSeen)) d.lastSeen = dev.lastSeen;
        for (const m of dev.metrics) d.metrics.add(m);
      }
    });
    listCut = listed.cut;
    const anomalies = await fetchAnomalies({ limit: 5000 });
    const counted = new Map<string, { n: number; last: number }>();
    for (const a of anomalies) {
      overview.anomaly(a, false);
      const c = counted.get(a.deviceId) ?? { n: 0, last: 0 };
      c.n++;
      c.last = Math.max(c.last, a.windowStart);
      counted.set(a.deviceId, c);
    }
    for (const [id, c] of counted) {
      const d = fleet.upsert(id);
      d.anomalies = Math.max(d.anomalies, c.n);
      d.lastAnomalyAt = Math.max(d.lastAnomalyAt ?? 0, c.last);
    }
    if (feed.childElementCount === 0) for (const a of anomalies.slice(0, FeedMax).reverse()) addAnomaly(a, false);
    updateCounts();
  } catch (e) {
    setConn('offline', String(e));
  }
}

function updateCounts(): void {
  $('counts').textContent = `${fleet.size.toLocaleString()} devices${listCut ? ' (list cut; more report live)' : ''}`;
}

// ---- anomaly feed
const feed = $<HTMLOListElement>('anomalies');
const feedKeys = new Set<string>();
function addAnomaly(s: AnomalyScore, live: boolean): void {
  const key = `${s.deviceId}|${s.windowStart}|${s.resolution}|${s.model}`;
  if (feedKeys.has(key)) return;
  feedKeys.add(key);
  if (live) {
    if (markers?.deviceId === s.deviceId) {
      markers.addAnomalies([s]);
      redrawMarkers();
    }
    overview.anomaly(s);
    const d = fleet.upsert(s.deviceId);
    d.anomalies++;
    d.lastAnomalyAt = Math.max(d.lastAnomalyAt ?? 0, s.windowStart);
  }
  const li = document.createElement('li');
  li.dataset.device = s.deviceId;
  li.dataset.key = key;
  li.className = live ? 'new' : '';
  const t = new Date(s.windowStart).toLocaleTimeString();
  li.innerHTML = `<time></time> <b></b> <span></span>`;
  li.children[0]!.textContent = t;
  li.children[1]!.textContent = s.deviceId;
  li.children[2]!.textContent = `${s.model} v${s.modelVersion} · ${s.resolution} · score ${s.score.toFixed(3)}`;
  li.addEventListener('click', () => selectDevice(s.deviceId));
  feed.prepend(li);
  while (feed.childElementCount > FeedMax) {
    const old = feed.lastElementChild as HTMLElement;
    feedKeys.delete(old.dataset.key ?? '');
    old.remove();
  }
}

// ---- device detail
let selected: string | null = null;
const charts = new Map<string, LiveChart>();
const liveCharts = $('live-charts');

function selectDevice(id: string): void {
  overview.show(false);
  $('device').hidden = false;
  if (selected === id) return;
  if (selected) live?.unsubscribe(`device:${selected}`);
  selected = id;
  fleet.select(id);
  $('device-title').textContent = id;
  for (const c of charts.values()) c.destroy();
  charts.clear();
  $('device-values').textContent = '';
  $('gap-status').textContent = '';
  live?.subscribe(`device:${id}`, { deviceId: id });
  markers = new DeviceMarkers(id);
  historyView.setMarkers(markers);
  historyView.clear();
  shown = null;
  void reloadHistory(true);
}

/** Back to the fleet overview: the device view closes (its subscription with it). */
function showFleet(): void {
  if (selected) live?.unsubscribe(`device:${selected}`);
  selected = null;
  fleet.select(null);
  for (const c of charts.values()) c.destroy();
  charts.clear();
  historyView.clear();
  markers = null;
  zoom = null;
  shown = null;
  $('device').hidden = true;
  overview.show(true);
}
{
  const back = document.createElement('button');
  back.id = 'to-fleet';
  back.type = 'button';
  back.textContent = '← Fleet';
  back.addEventListener('click', showFleet);
  $('device').querySelector('.panel-head')!.prepend(back);
}

/** A live window record of the selected device: one point on the chart of each of its metrics. */
function liveRecord(r: WindowRecord): void {
  for (const [metric, stats] of Object.entries(r.metrics)) {
    let c = charts.get(metric);
    if (!c) {
      c = new LiveChart(liveCharts, metric, [markerPlugin(() => markers)]);
      charts.set(metric, c);
    }
    c.add(r.windowStart, r.windowEnd, stats, r.final !== false);
  }
  scheduleValues();
}

/**
 * Back after the API was away (a restart): the open device's window records of the missed span, from REST, at the
 * live charts' resolution, from the newest final point they hold (or from when the connection was lost, less a
 * minute) to now, and the history chart reloaded. A live-only resolution cannot be filled: the reason is shown and
 * the history chart (a stored resolution) covers the span.
 */
async function fillGap(since: number): Promise<void> {
  const id = selected;
  if (!id) return void (banner.hidden = true);
  const status = $('gap-status');
  const shown = [...charts.values()];
  const resMs = shown.find((c) => Number.isFinite(c.resolution))?.resolution ?? 10_000;
  const resolution = `${resMs / 1000}s`;
  const newest = Math.max(...shown.map((c) => c.newestFinal ?? -Infinity));
  const from = Number.isFinite(newest) ? newest + resMs : since - 60_000;
  const to = Date.now();
  banner.dataset.state = 'back';
  banner.textContent = 'Reconnected: filling the gap from history…';
  void reloadHistory(zoom === null || zoom.depth === 0);
  try {
    const windows = await fetchWindows(id, resolution, from, to);
    if (selected !== id) return;
    for (const r of windows) liveRecord(r);
    status.textContent = `gap filled: ${windows.length} ${resolution} windows from history`;
    status.dataset.filled = String(windows.length);
  } catch (e) {
    status.textContent = `gap not filled: ${e instanceof Error ? e.message : String(e)}`;
    status.dataset.filled = '';
  }
  banner.hidden = true;
}

function reconnected(): void {
  const since = lostAt ?? Date.now();
  lostAt = null;
  void alerts?.load();
  void loadFleet();
  void fillGap(since);
}

let valuesPending = false;
function scheduleValues(): void {
  if (valuesPending) return;
  valuesPending = true;
  requestAnimationFrame(() => {
    valuesPending = false;
    $('device-values').replaceChildren(
      ...[...charts.values()]
        .sort((a, b) => a.metric.localeCompare(b.metric))
        .flatMap((c, i) => {
          const span = document.createElement('span');
          span.textContent = `${c.metric} ${c.lastValue?.toFixed(2) ?? '—'}`;
          if (c.lastProvisional) {
            span.className = 'provisional';
            span.title = 'provisional: the open window so far';
          }
          return i === 0 ? [span] : ['  ·  ', span];
        }),
    );
  });
}

// ---- history: every metric of the device over a range, at the resolution the range calls for (device-history.ts)
const rangeSel = $<HTMLSelectElement>('hist-range');
const resSel = $<HTMLSelectElement>('hist-res');
const historyView = new HistoryView($('history-chart'), (from, to) => {
  if (zoom?.zoom(from, to)) void loadHistory();
});
/** The range picked and the zooms into it (null: no device, or a bad custom range). */
let zoom: ZoomStack | null = null;
/** The open device's anomaly and alert markers, drawn over its history and live charts. */
let markers: DeviceMarkers | null = null;
/** The stored resolutions, once an answer of the API named them (a live-only one's 400); until then the picker's. */
let stored: string[] | null = null;
/** What the history charts show: the CSV export takes the same. */
let shown: { deviceId: string; range: Range; resolution: string; windows: WindowRecord[]; cut: boolean } | null = null;
/** Loads in order: an answer for a range no longer wanted (zoomed again meanwhile) is dropped. */
let historySeq = 0;

/** The range of the picker (`last …` ends now), or why it has none. */
function pickedRange(): Range | string {
  if (rangeSel.value !== 'custom') {
    const to = Date.now();
    return { from: to - Number(rangeSel.value), to };
  }
  const from = Date.parse($<HTMLInputElement>('hist-from').value);
  const to = Date.parse($<HTMLInputElement>('hist-to').value);
  return Number.isFinite(from) && Number.isFinite(to) && from < to ? { from, to } : 'pick a from before a to';
}

/**
 * The history again: from the picker's range (`fresh`: a device opened, the range or Load picked, a reconnect;
 * a `last …` range then ends now, and the zooms are forgotten), or the range shown (the resolution changed).
 */
function reloadHistory(fresh: boolean): Promise<void> {
  if (!selected) return Promise.resolve();
  if (fresh || !zoom) {
    const r = pickedRange();
    if (typeof r === 'string') {
      zoom = null;
      $('hist-status').textContent = r;
      return Promise.resolve();
    }
    zoom = new ZoomStack(r);
    void loadMarkers(r);
  }
  return loadHistory();
}

rangeSel.addEventListener('change', () => {
  const custom = rangeSel.value === 'custom';
  $('hist-from').hidden = !custom;
  $('hist-to').hidden = !custom;
  if (!custom) void reloadHistory(true);
});
$('hist-load').addEventListener('click', () => void reloadHistory(true));
resSel.addEventListener('change', () => void reloadHistory(false));
$('hist-back').addEventListener('click', () => {
  if (zoom?.back()) void loadHistory();
});
$('hist-reset').addEventListener('click', () => {
  if (zoom && zoom.depth > 0) {
    zoom.reset();
    void loadHistory();
  }
});
$('hist-csv').addEventListener('click', () => void exportCsv());

/** Resolutions to choose from: the stored ones once known, else the picker's. */
const candidates = (): string[] =>
  stored ?? [...resSel.options].map((o) => o.value).filter((r) => Number.isFinite(resolutionMsOf(r)));

/** The picker names the live-only resolutions as such, once the API said which are stored. */
function markLiveOnly(): void {
  for (const o of resSel.options)
    if (o.value !== 'auto') o.textContent = stored && !stored.includes(o.value) ? `${o.value} (live only)` : o.value;
}

const fmtTime = (ms: number, span: number) =>
  span >= 86_400_000 ? new Date(ms).toLocaleString() : new Date(ms).toLocaleTimeString();

/**
 * The range shown, every metric of the device's window records (`/api/devices/:id/windows`, pages followed, at most
 * MaxHistoryWindows). Auto picks the resolution from the range; a 400 naming the stored resolutions (auto tried a
 * live-only one) teaches them, and auto tries again once. A manual live-only choice shows the API's reason.
 */
async function loadHistory(): Promise<void> {
  const id = selected;
  const status = $('hist-status');
  if (!id || !zoom) return;
  const seq = ++historySeq;
  const range = zoom.current;
  const span = range.to - range.from;
  $('hist-back').hidden = $('hist-reset').hidden = zoom.depth === 0;
  $('hist-span').textContent =
    `${fmtTime(range.from, span)} – ${fmtTime(range.to, span)} (${spanLabel(span)}${zoom.depth > 0 ? ', zoomed' : ''})`;
  const manual = resSel.value === 'auto' ? null : resSel.value;
  status.textContent = 'loading…';
  for (let attempt = 0; ; attempt++) {
    const resolution = manual ?? chooseResolution(span, candidates());
    const shownRes = $('hist-resolution');
    if (!resolution) {
      shownRes.textContent = 'resolution: none stored';
      historyView.message('no resolution is stored: history is live only');
      return void (status.textContent = '');
    }
    shownRes.textContent = `resolution: ${resolution} (${manual ? 'manual' : 'auto'})`;
    shownRes.dataset.resolution = resolution;
    shownRes.dataset.auto = String(!manual);
    try {
      const { windows, cut } = await fetchWindowRange(id, resolution, range.from, range.to, MaxHistoryWindows);
      if (seq !== historySeq || selected !== id) return;
      const series = metricSeries(windows, fleet.get(id)?.metrics ?? []);
      historyView.show(series, range, resolution);
      shown = { deviceId: id, range, resolution, windows, cut };
      status.textContent =
        `${windows.length.toLocaleString()} windows · ${series.size} metrics` +
        (cut ? ` (cut at ${MaxHistoryWindows.toLocaleString()}: zoom in or pick a coarser resolution)` : '');
      return;
    } catch (e) {
      if (seq !== historySeq || selected !== id) return;
      const message = e instanceof Error ? e.message : String(e);
      const named = storedFromError(message);
      if (named) {
        stored = named;
        markLiveOnly();
        if (!manual && attempt === 0) continue;
      }
      shown = null;
      historyView.message(message);
      status.textContent = `error: ${message}`;
      return;
    }
  }
}

/**
 * The device's anomalies (`GET /api/anomalies?deviceId=`) and alert transitions (`GET /api/alerts?deviceId=`, from a
 * day earlier: an episode that fired before the range and resolved in it) of a range, at most 31 days (the API's
 * bound) back from its end, into the markers; live ones are added as they come.
 */
async function loadMarkers(r: Range): Promise<void> {
  const m = markers;
  if (!m) return;
  const from = Math.max(r.from, r.to - 31 * 86_400_000 + 60_000);
  try {
    const [scores, transitions] = await Promise.all([
      fetchAnomalies({ deviceId: m.deviceId, from, to: r.to, limit: 1000 }),
      fetchAlertHistory(
        { deviceId: m.deviceId, from: Math.max(from - 86_400_000, r.to - 31 * 86_400_000 + 60_000), to: r.to },
        1000,
      ),
    ]);
    m.addAnomalies(scores);
    m.addTransitions(transitions);
    redrawMarkers();
  } catch (e) {
    $('hist-status').textContent = `markers: ${e instanceof Error ? e.message : String(e)}`;
  }
}

function redrawMarkers(): void {
  historyView.redraw();
  for (const c of charts.values()) c.plot.redraw(false, false);
}

/** Alert transitions (REST at start and after a reconnect, or live): the fleet grid, and the open device's markers. */
function alertTransitions(ts: readonly AlertTransition[]): void {
  for (const t of ts) overview.alert(t);
  if (markers && ts.some((t) => t.deviceId === markers?.deviceId)) {
    markers.addTransitions(ts);
    redrawMarkers();
  }
}

/**
 * CSV of what the charts show: the range (zoomed or not) at its resolution, every metric of each window record. A
 * `last …` range not zoomed is shown again first, ending now (so the file holds what was written meanwhile).
 */
async function exportCsv(): Promise<void> {
  const status = $('hist-status');
  if (zoom && zoom.depth === 0 && rangeSel.value !== 'custom') await reloadHistory(true);
  const s = shown;
  if (!s) return void (status.textContent = 'nothing shown to export');
  const c = csvExport(s.deviceId, s.range, s.resolution);
  status.textContent = 'exporting…';
  try {
    // What is drawn, unless the load was cut: then the whole range (up to 100,000 windows).
    const windows = s.cut ? await fetchWindows(s.deviceId, c.resolution, c.from, c.to, 100_000) : s.windows;
    download(c.name, windowsCsv(windows));
    status.textContent = `exported ${windows.length.toLocaleString()} windows`;
  } catch (e) {
    status.textContent = `error: ${e instanceof Error ? e.message : String(e)}`;
  }
}

// ---- models
async function loadModels(): Promise<void> {
  const body = $('models').querySelector('tbody')!;
  try {
    const { models, error } = await fetchModels();
    $('models-error').textContent = error ?? '';
    body.replaceChildren(...models.map(modelRow));
  } catch (e) {
    $('models-error').textContent = String(e);
  }
}

function modelRow(m: ModelStatus): HTMLTableRowElement {
  const tr = document.createElement('tr');
  const cells = [
    m.name,
    m.active?.version ?? '—',
    m.active?.resolution ?? '',
    m.active?.features.join(', ') ?? '',
    m.quarantined
      ? `quarantined: ${m.quarantined.reason} (${m.quarantined.at})`
      : m.lastError
        ? `${m.lastError.reason} (${m.lastError.at})`
        : '',
  ];
  for (const c of cells) tr.insertCell().textContent = c;
  if (m.lastError || m.quarantined) tr.className = 'has-error';
  return tr;
}

// ---- signing in and out
/** The dashboard, once signed in: who in the header, the live socket, the fleet and the models. */
function start(who: SessionInfo): void {
  $('login').hidden = true;
  for (const id of ['app', 'session', 'conn']) $(id).hidden = false;
  $('who').textContent = `${who.role} · ${who.devices === null ? 'all devices' : who.devices.join(', ')}`;
  $('who').title = who.expiresAt === null ? '' : `signed in until ${new Date(who.expiresAt).toLocaleString()}`;
  // Transitions from REST (at start and after a reconnect) set the fleet grid's alerting state as live ones do.
  alerts = new AlertsView($('alerts-panel'), who, selectDevice, alertTransitions);
  live = new Live({
    aggregate: onAggregate,
    aggregates: (records) => {
      for (const r of records) onAggregate(r);
    },
    anomaly: (s) => addAnomaly(s, true),
    alert: (t) => {
      alertTransitions([t]);
      alerts?.alert(t);
    },
    state: setConn,
    reconnected,
    unauthorized: signedOut,
  });
  // Every resolution: the overview keeps the finest of each device (its liveness, events/s), whatever they are.
  live.subscribe('fleet', { fleet: true, batch: true });
  void loadFleet();
  void alerts.load();
  void loadModels();
  setInterval(updateCounts, 1000);
  setInterval(() => void loadModels(), 10_000);
}

function showLogin(message = ''): void {
  for (const id of ['app', 'session', 'conn']) $(id).hidden = true;
  $('login').hidden = false;
  $('login-error').textContent = message;
  $<HTMLInputElement>('token').focus();
}

/** The session ended while the dashboard ran (a 401, or the API closed the socket): a fresh page asks for a token. */
let leaving = false;
function signedOut(): void {
  if (leaving) return;
  leaving = true;
  location.reload();
}
onUnauthorized(signedOut);

$('login').addEventListener('submit', (e) => {
  e.preventDefault();
  const input = $<HTMLInputElement>('token');
  $('login-error').textContent = '';
  login(input.value.trim()).then(
    (who) => {
      input.value = '';
      start(who);
    },
    (err: unknown) =>
      showLogin(
        err instanceof Unauthorized
          ? 'unknown token'
          : `cannot sign in: ${err instanceof Error ? err.message : String(err)}`,
      ),
  );
});

$('signout').addEventListener('click', () => {
  leaving = true;
  void logout().finally(() => location.reload());
});

fetchSession().then(
  (who) => (who ? start(who) : showLogin()),
  (e: unknown) => showLogin(`cannot reach the dashboard API: ${e instanceof Error ? e.message : String(e)}`),
);
