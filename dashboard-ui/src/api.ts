import type { AggregateRow, AlertRule, AlertTransition, AnomalyScore, WindowRecord } from '@fleetpulse/contracts';
import type {
  AlertRuleView,
  DeviceSummary,
  LoginRequest,
  ModelsAnswer,
  SeriesPage,
  SessionInfo,
  WindowsPage,
} from '@fleetpulse/dashboard-api/wire';

/** Devices per request, and how many the overview loads at most (live ones are added as they report). */
const DevicePageSize = 5000;
const MaxListedDevices = 100_000;

/** The API said 401: no session (signed out, expired, or never signed in). */
export class Unauthorized extends Error {
  override name = 'Unauthorized';
}

/** Called on every 401 of a data request (the session ended): the UI goes back to its login page. */
let unauthorized: () => void = () => undefined;
export const onUnauthorized = (fn: () => void): void => void (unauthorized = fn);

/** An error answer of the API: its `error`, and `errors` when it names several problems (a refused alert rule). */
export class ApiError extends Error {
  override name = 'ApiError';
  constructor(
    message: string,
    readonly status: number,
    readonly errors: string[] = [message],
  ) {
    super(message);
  }
}

async function errorOf(res: Response): Promise<Error> {
  const body = (await res.json().catch(() => ({}))) as { error?: string; errors?: string[] };
  const message = body.error ?? `${res.status} ${res.statusText}`;
  return res.status === 401 ? new Unauthorized(message) : new ApiError(message, res.status, body.errors);
}

async function getResponse(path: string): Promise<Response> {
  const res = await fetch(path, { headers: { accept: 'application/json' } });
  if (!res.ok) {
    const e = await errorOf(res);
    if (e instanceof Unauthorized) unauthorized();
    throw e;
  }
  return res;
}

/** Who is signed in (the session cookie), or null when nobody is. */
export async function fetchSession(): Promise<SessionInfo | null> {
  const res = await fetch('/api/session', { headers: { accept: 'application/json' } });
  if (res.status === 401) return null;
  if (!res.ok) throw await errorOf(res);
  return (await res.json()) as SessionInfo;
}

/** Exchanges a token for the session cookie (HttpOnly: this page never sees it); Unauthorized for a wrong token. */
export async function login(token: string): Promise<SessionInfo> {
  const body: LoginRequest = { token };
  const res = await fetch('/api/login', {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json' },
    body: JSON.stringify(body),
  });
  if (!res.ok) throw await errorOf(res);
  return (await res.json()) as SessionInfo;
}

/** Ends the session (its live sockets are closed by the API) and removes the cookie. */
export async function logout(): Promise<void> {
  await fetch('/api/session', { method: 'DELETE' });
}

const getJson = async <T>(path: string): Promise<T> => (await (await getResponse(path)).json()) as T;

/**
 * The device list, page by page (header `X-Next` is the `next` of the following page), up to `max` devices; `onPage`
 * gets each page as it arrives, so a large fleet shows up while it loads.
 */
export async function fetchDevices(
  onPage: (devices: DeviceSummary[]) => void,
  max = MaxListedDevices,
): Promise<{ count: number; cut: boolean }> {
  let count = 0;
  let next: string | null = null;
  do {
    const p = new URLSearchParams({ limit: String(Math.min(DevicePageSize, max - count)) });
    if (next !== null) p.set('next', next);
    const res = await getResponse(`/api/devices?${p.toString()}`);
    const page = (await res.json()) as DeviceSummary[];
    onPage(page);
    count += page.length;
    next = res.headers.get('X-Next');
  } while (next !== null && count < max);
  return { count, cut: next !== null };
}
export const fetchAnomalies = (q: { deviceId?: string; from?: number; to?: number; limit?: number }) => {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(q)) if (v !== undefined) p.set(k, String(v));
  return getJson<AnomalyScore[]>(`/api/anomalies?${p.toString()}`);
};

export const fetchModels = () => getJson<ModelsAnswer>('/api/models');

/**
 * Every point of one metric in a range, page by page (`next`), up to `maxPoints`: the per-metric endpoint extracts
 * the metric from the stored window records, so only that metric crosses the wire. A resolution that is not stored
 * (live only) is an error naming the stored ones.
 */
export async function fetchSeries(
  deviceId: string,
  metric: string,
  resolution: string,
  from: number,
  to: number,
  maxPoints = 20_000,
): Promise<{ points: AggregateRow[]; cut: boolean }> {
  const points: AggregateRow[] = [];
  let cursor: number | null = from;
  while (cursor !== null && points.length < maxPoints) {
    const p = new URLSearchParams({ resolution, from: String(cursor), to: String(to), limit: '5000' });
    const page: SeriesPage = await getJson<SeriesPage>(
      `/api/devices/${encodeURIComponent(deviceId)}/metrics/${encodeURIComponent(metric)}?${p.toString()}`,
    );
    points.push(...page.points);
    cursor = page.next;
  }
  return { points, cut: cursor !== null };
}

/**
 * A device's window records (every metric) of one resolution starting in `[from, to)`, page by page, up to
 * `maxWindows`: what the live view missed while the API was away. A live-only resolution is an error naming the
 * stored ones.
 */
export async function fetchWindows(
  deviceId: string,
  resolution: string,
  from: number,
  to: number,
  maxWindows = 5000,
): Promise<WindowRecord[]> {
  return (await fetchWindowRange(deviceId, resolution, from, to, maxWindows)).windows;
}

/** fetchWindows, saying whether the range had more than `maxWindows` (`cut`: the newest were left out). */
export async function fetchWindowRange(
  deviceId: string,
  resolution: string,
  from: number,
  to: number,
  maxWindows = 5000,
): Promise<{ windows: WindowRecord[]; cut: boolean }> {
  const windows: WindowRecord[] = [];
  let cursor: number | null = from;
  while (cursor !== null && windows.length < maxWindows) {
    const limit = Math.min(1000, maxWindows - windows.length);
    const p = new URLSearchParams({ resolution, from: String(cursor), to: String(to), limit: String(limit) });
    const page: WindowsPage = await getJson<WindowsPage>(
      `/api/devices/${encodeURIComponent(deviceId)}/windows?${p.toString()}`,
    );
    windows.push(...page.windows);
    cursor = page.next;
  }
  return { windows, cut: cursor !== null };
}

// ---- alerts (docs/contract.md, "Alerts (v2)")
export const fetchRules = () => getJson<AlertRuleView[]>('/api/alerts/rules');

/** Transitions, newest window first (default: the last 24 h). */
export const fetchAlerts = (q: { state?: string; deviceId?: string; from?: number; to?: number; limit?: number }) => {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(q)) if (v !== undefined) p.set(k, String(v));
  return getJson<AlertTransition[]>(`/api/alerts?${p.toString()}`);
};

/**
 * Transitions of `[from, to)` (`to` default now, `from` the 24 h before), newest first, following `X-Next-To` up to
 * `max`; each id once (a page boundary may repeat the rows of one window start).
 */
export async function fetchAlertHistory(
  q: { deviceId?: string; from?: number; to?: number },
  max = 5000,
): Promise<AlertTransition[]> {
  const out = new Map<string, AlertTransition>();
  let to: string | null = q.to === undefined ? null : String(q.to);
  for (let pages = 0; pages < 50 && out.size < max; pages++) {
    const p = new URLSearchParams({ limit: String(Math.min(1000, max - out.size)) });
    if (q.deviceId !== undefined) p.set('deviceId', q.deviceId);
    if (q.from !== undefined) p.set('from', String(q.from));
    if (to !== null) p.set('to', to);
    const res = await getResponse(`/api/alerts?${p.toString()}`);
    for (const t of (await res.json()) as AlertTransition[]) out.set(t.id, t);
    to = res.headers.get('X-Next-To');
    if (to === null) break;
  }
  return [...out.values()];
}

/** Creates a rule (admin tokens): the stored rule, or an ApiError naming every bad field (`errors`). */
export async function createRule(rule: Omit<AlertRule, 'id' | 'createdAt'>): Promise<AlertRuleView> {
  const res = await fetch('/api/alerts/rules', {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json' },
    body: JSON.stringify(rule),
  });
  if (!res.ok) {
    const e = await errorOf(res);
    if (e instanceof Unauthorized) unauthorized();
    throw e;
  }
  return (await res.json()) as AlertRuleView;
}

export async function deleteRule(id: string): Promise<void> {
  const res = await fetch(`/api/alerts/rules/${encodeURIComponent(id)}`, { method: 'DELETE' });
  if (!res.ok) {
    const e = await errorOf(res);
    if (e instanceof Unauthorized) unauthorized();
    throw e;
  }
}
