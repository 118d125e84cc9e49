import { Inject, Injectable } from '@nestjs/common';
import type { AggregateRow, AnomalyScore } from '@fleetpulse/contracts';
import type { types } from 'cassandra-driver';
import { CassandraService } from './cassandra.service';
import type { DashboardConfig } from './config';
import { DayMs, seriesBuckets, type AnomalyQuery, type SeriesQuery } from './query';
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
  points: AggregateRow[];
  /** windowStart of the first point not returned: pass it as `from` for the next page; null when complete. */
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

function rowToAggregate(r: types.Row): AggregateRow {
  return {
    deviceId: r.get('device_id') as string,
    metric: r.get('metric') as string,
    resolution: r.get('resolution') as string,
    windowStart: num(r.get('window_start')),
    windowEnd: num(r.get('window_end')),
    count: num(r.get('count')),
    sum: r.get('sum') as number,
    min: r.get('min') as number,
    max: r.get('max') as number,
    mean: r.get('mean') as number,
    stddev: r.get('stddev') as number,
    first: r.get('first') as number,
    last: r.get('last') as number,
  };
}

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
   * Points of one series, oldest first: the buckets of the range in order, each read with the rows still wanted
   * (+1 to learn whether a next page exists), so a page costs at most `limit + 1` rows however wide the range.
   */
  async series(q: SeriesQuery): Promise<SeriesPage> {
    const cql =
      `SELECT device_id, metric, resolution, window_start, window_end, count, sum, min, max, mean, stddev, first, last ` +
      `FROM ${this.ks}.aggregates WHERE device_id = ? AND metric = ? AND resolution = ? AND bucket = ? ` +
      `AND window_start >= ? AND window_start < ? LIMIT ?`;
    const points: AggregateRow[] = [];
    for (const bucket of seriesBuckets(q)) {
      const want = q.limit + 1 - points.length;
      const rs = await this.db.execute(cql, [q.deviceId, q.metric, q.resolution, bucket, q.from, q.to, want], {
        fetchSize: want,
      });
      for (const r of rs.rows) points.push(rowToAggregate(r));
      if (points.length > q.limit) break;
    }
    const more = points.length > q.limit;
    const next = more ? points[q.limit]!.windowStart : null;
    if (more) points.length = q.limit;
    return { deviceId: q.deviceId, metric: q.metric, resolution: q.resolution, points, next };
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
