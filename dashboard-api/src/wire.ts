/**
 * What the dashboard API answers and accepts beyond the contracts' records: REST bodies and socket.io messages. Types
 * only, importing nothing but types, so the browser UI takes them from `@fleetpulse/dashboard-api/wire` without
 * pulling in Nest or Node (the window records, points and scores themselves are `@fleetpulse/contracts` types).
 */
import type { AggregateRow, AlertRule, WindowRecord } from '@fleetpulse/contracts';

/**
 * One entry of `GET /api/devices?limit=&next=`. The answer is an array of these in storage order (by the token of
 * the device id, stable from page to page); header `X-Next` holds the `next` of the following page, absent on the
 * last one.
 */
export interface DeviceSummary {
  deviceId: string;
  /** End of the device's latest written window, epoch ms (null if never written). */
  lastSeen: number | null;
  /** Every metric the device has reported, sorted. */
  metrics: string[];
}

/** `GET /api/devices/:id/metrics/:metric`. */
export interface SeriesPage {
  deviceId: string;
  metric: string;
  resolution: string;
  /** v1 aggregate rows: the metric of each window that has it, oldest first. */
  points: AggregateRow[];
  /** windowStart to pass as `from` for the next page; null when complete. */
  next: number | null;
}

/** `GET /api/devices/:id/windows`. */
export interface WindowsPage {
  deviceId: string;
  resolution: string;
  /** Window records (final), oldest first. */
  windows: WindowRecord[];
  /** windowStart to pass as `from` for the next page; null when complete. */
  next: number | null;
}

/**
 * One model of the scoring service's status, as far as the dashboard reads it. The API passes the scoring service's
 * entries on as they come (scoring's `ModelStatus` has more fields); it does not check them.
 */
export interface ModelStatus {
  name: string;
  file: string | null;
  active: { version: string; features: string[]; resolution: string; loadedAt: string } | null;
  lastError: { at: string; file: string; reason: string } | null;
  /** Taken out of service after crashing the session host (docs/contract.md, "Scoring"); null or absent: not. */
  quarantined?: { at: string; file: string; version: string; crashes: number; reason: string } | null;
}

/** `GET /api/models`: always 200; `error` says why `models` is empty when the scoring service could not be asked. */
export interface ModelsAnswer {
  models: ModelStatus[];
  error?: string;
}

/**
 * What a client may send with `subscribe` / `unsubscribe` on `/live`. The contract's forms are `{"deviceId": "..."}`
 * and `{"fleet": true}`; two optional additions narrow what a subscription carries:
 * - `resolution: "10s"`: only window records of that resolution (anomalies are sent whatever their resolution);
 * - `batch: true`: instead of one `aggregate` event per window record, one `aggregates` event (an array of records)
 *   per flush, which is what a fleet overview of thousands of devices wants.
 * `unsubscribe` leaves every subscription of that device (or of the fleet), whatever its options.
 */
export interface LiveSubscription {
  deviceId?: string;
  fleet?: boolean;
  resolution?: string;
  batch?: boolean;
}

/** The ack of `subscribe` / `unsubscribe`. */
export interface SubscribeAck {
  ok: boolean;
  error?: string;
}

/** `POST /api/login` (and `POST /api/session`): the body, JSON. */
export interface LoginRequest {
  token: string;
}

/**
 * Who is signed in: the answer of `GET /api/session` and of a login. Never the token or the session id.
 * - `role`: `viewer` reads; `admin` may also change state (alert rules);
 * - `devices`: the device-id patterns the token is limited to, or null for every device;
 * - `via`: `session` (the cookie) or `token` (a bearer token on this request);
 * - `expiresAt`: when the session ends, epoch ms (null for a bearer token).
 */
export interface SessionInfo {
  role: 'viewer' | 'admin';
  devices: string[] | null;
  via: 'session' | 'token';
  expiresAt: number | null;
}

/**
 * A stored alert rule as `GET /api/alerts/rules` lists it (and `POST` answers it, `201`): its id and creation time
 * (epoch ms) with the rule. `webhook` is shown to admin tokens only (a hook URL may hold a secret).
 */
export type AlertRuleView = Omit<AlertRule, 'id' | 'createdAt' | 'webhook'> & {
  id: string;
  createdAt: number;
  webhook?: string;
};

/** A `400` of `POST /api/alerts/rules`: every problem of the rule, each naming its field; `error` joins them. */
export interface RuleErrors {
  error: string;
  errors: string[];
}
