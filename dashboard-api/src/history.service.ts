import { Inject, Injectable } from '@nestjs/common';
import type { AggregateRow, AnomalyScore, MetricStats, WindowRecord } from '@fleetpulse/contracts';
import type { types } from 'cassandra-driver';
import { CassandraService } from './cassandra.service';
import type { DashboardConfig } from './config';
import { DayMs, Limits, queryBuckets, type AnomalyQuery, type SeriesQuery, type WindowsQuery } from './query';
import { DashboardConfigToken } from './tokens';

export interface DeviceSummary {
  deviceId: string;
  /** End of the device's latest written window, epoch ms (null if never written). */
  lastSeen: number | null;
  metrics: string[];
}

export interface SeriesPage {
  deviceId: string;
  metric: string;
  resolution: string;
  /** v1 aggregate rows: the metric of each window that has it, oldest first. */
  points: AggregateRow[];
  /** windowStart to pass as `from` for the next page; null when complete. */
  next: number | null;
}

export interface WindowsPage {
  deviceId: string;
  resolution: string;
  /** Window records (final), oldest first. */
  windows: WindowRecord[];
  /** windowStart to pass as `from` for the next page; null when complete. */
  next: number | null;
}

export interface AnomalyPage {
  scores: AnomalyScore[];
  /** windowStart of the newest score not returned (pass it + 1 as `to` for the next page); null when complete. */
  next: number | null;
}

/** The devices table is read whole for GET /api/devices; more rows than this are cut (and said so in a header). */
export const MaxDevices = 100_000;

const num = (v: unknown): number => (typeof v === 'number' ? v : Number(v as types.Long));

/** A `metric_stats` UDT as the driver decodes it (a null-prototype object) to a plain one, in the contract's order. */
function statsOf(v: unknown): MetricStats | undefined {
  if (typeof v !== 'object' || v === null) return undefined;
  const u = v as Record<keyof MetricStats, number>;
  return {
    count: u.count,
    sum: u.sum,
    min: u.min,
    max: u.max,
    mean: u.mean,
    stddev: u.stddev,
    first: u.first,
    last: u.last,
  };
}

/** Once windows were skipped (no such metric), a history read fetches at least this many rows a round trip. */
const MinFetchAfterSkip = 100;

function rowToScore(r: types.Row): AnomalyScore {
  return {
    deviceId: r.get('device_id') as string,
    resolution: r.get('resolution') as string,
    windowStart: num(r.get('window_start')),
    model: r.get('model') as string,
    modelVersion: r.get('model_version') as string,
    score: r.get('score') as number,
    anomalous: true,
    features: (r.get('features') as Record<string, number> | null) ?? {},
  };
}

/** History reads for the REST API, in the shapes of the contract (shared/design.md, "Dashboard API"). */
@Injectable()
export class HistoryService {
  private readonly ks: string;
  /** Windows a history page reads at most (Limits.windowsScannedMax; lowered by tests). */
  scannedMax: number = Limits.windowsScannedMax;

  constructor(
    private readonly db: CassandraService,
    @Inject(DashboardConfigToken) config: DashboardConfig,
  ) {
    this.ks = config.keyspace;
  }

  async deviceExists(deviceId: string): Promise<boolean> {
    const rs = await this.db.execute(`SELECT device_id FROM ${this.ks}.devices WHERE device_id = ?`, [deviceId]);
    return rs.rowLength > 0;
  }

  async devices(): Promise<{ devices: DeviceSummary[]; truncated: boolean }> {
    const rs = await this.db.execute(`SELECT device_id, last_seen, metrics FROM ${this.ks}.devices`, [], {
      fetchSize: 5000,
    });
    const devices: DeviceSummary[] = [];
    // The result set pages on demand as it is iterated.
    for await (const r of rs) {
      if (devices.length >= MaxDevices) return { devices, truncated: true };
      const lastSeen = r.get('last_seen') as types.Long | null;
      const metrics = (r.get('metrics') as string[] | null) ?? [];
      devices.push({
        deviceId: r.get('device_id') as string,
        lastSeen: lastSeen === null ? null : num(lastSeen),
        metrics: [...metrics].sort(),
      });
    }
    devices.sort((a, b) => (a.deviceId < b.deviceId ? -1 : a.deviceId > b.deviceId ? 1 : 0));
    return { devices, truncated: false };
  }

  /**
   * Points of one metric, oldest first, from the window records: `metrics[?]` selects only that metric's stats, and
   * windows without it are skipped.
   */
  async series(q: SeriesQuery): Promise<SeriesPage> {
    const cql =
      `SELECT window_start, window_end, metrics[?] AS stats FROM ${this.ks}.windows ` +
      `WHERE device_id = ? AND resolution = ? AND bucket = ? AND window_start >= ? AND window_start < ?`;
    const { deviceId, metric, resolution } = q;
    const { items, next } = await this.scan(
      q,
      cql,
      (bucket) => [metric, deviceId, resolution, bucket, q.from, q.to],
      (r, windowStart): AggregateRow | undefined => {
        const s = statsOf(r.get('stats'));
        return s && { deviceId, metric, resolution, windowStart, windowEnd: num(r.get('window_end')), ...s };
      },
    );
    return { deviceId, metric, resolution, points: items, next };
  }

  /** Window records, oldest first, every metric of each. */
  async windows(q: WindowsQuery): Promise<WindowsPage> {
    const cql =
      `SELECT window_start, window_end, metrics FROM ${this.ks}.windows ` +
      `WHERE device_id = ? AND resolution = ? AND bucket = ? AND window_start >= ? AND window_start < ?`;
    const { deviceId, resolution } = q;
    const { items, next } = await this.scan(
      q,
      cql,
      (bucket) => [deviceId, resolution, bucket, q.from, q.to],
      (r, windowStart): WindowRecord | undefined => {
        const stored = r.get('metrics') as Record<string, unknown> | null;
        if (stored === null) return undefined;
        const metrics: Record<string, MetricStats> = {};
        let any = false;
        for (const [name, v] of Object.entries(stored)) {
          const s = statsOf(v);
          if (!s) continue;
          metrics[name] = s;
          any = true;
        }
        return any
          ? { deviceId, resolution, windowStart, windowEnd: num(r.get('window_end')), final: true, metrics }
          : undefined;
      },
    );
    return { deviceId, resolution, windows: items, next };
  }

  /**
   * One page of a history read: the buckets of the range in order, each read only within [from, to) and page by page
   * for as many rows as the page still wants (+1 to learn whether a next page exists), so a page of complete windows
   * costs at most `limit + 1` rows however wide the range. `item` turns a row into what
   * the page holds, or undefined to skip it. At most `scannedMax` windows are read; past that the page
   * ends early with `next` at the first window not read.
   */
  private async scan<T>(
    q: WindowsQuery,
    cql: string,
    params: (bucket: number) => unknown[],
    item: (r: types.Row, windowStart: number) => T | undefined,
  ): Promise<{ items: T[]; next: number | null }> {
    const items: T[] = [];
    let scanned = 0;
    let skipped = false;
    for (const bucket of queryBuckets(q)) {
      let pageState: string | undefined;
      do {
        const want = q.limit + 1 - items.length;
        const fetchSize = Math.min(skipped ? Math.max(want, MinFetchAfterSkip) : want, this.scannedMax - scanned + 1);
        const rs = await this.db.execute(cql, params(bucket), { fetchSize, pageState });
        for (const r of rs.rows) {
          const windowStart = num(r.get('window_start'));
          if (scanned === this.scannedMax) return { items, next: windowStart };
          scanned++;
          const it = item(r, windowStart);
          if (it === undefined) {
            skipped = true;
            continue;
          }
          if (items.length === q.limit) return { items, next: windowStart };
          items.push(it);
        }
        pageState = rs.pageState ?? undefined;
      } while (pageState !== undefined);
    }
    return { items, next: null };
  }

  /** Anomalous scores, newest first: one partition per UTC day, newest day first. */
  async anomalies(q: AnomalyQuery): Promise<AnomalyPage> {
    const cols = 'device_id, window_start, resolution, model, model_version, score, features';
    const cql = q.deviceId
      ? `SELECT ${cols} FROM ${this.ks}.anomalies WHERE device_id = ? AND day = ? AND window_start >= ? AND window_start < ? LIMIT ?`
      : `SELECT ${cols} FROM ${this.ks}.anomalies_by_day WHERE day = ? AND window_start >= ? AND window_start < ? LIMIT ?`;
    const scores: AnomalyScore[] = [];
    const firstDay = Math.floor(q.from / DayMs) * DayMs;
    for (let day = Math.floor((q.to - 1) / DayMs) * DayMs; day >= firstDay; day -= DayMs) {
      const want = q.limit + 1 - scores.length;
      const params = q.deviceId ? [q.deviceId, day, q.from, q.to, want] : [day, q.from, q.to, want];
      const rs = await this.db.execute(cql, params, { fetchSize: want });
      for (const r of rs.rows) scores.push(rowToScore(r));
      if (scores.length > q.limit) break;
    }
    const more = scores.length > q.limit;
    const next = more ? scores[q.limit]!.windowStart : null;
    if (more) scores.length = q.limit;
    return { scores, next };
  }
}
