import { Inject, Injectable } from '@nestjs/common';
import {
  cqlBigintToNumber,
  metricStatsFromUdt,
  windowRecordFromRow,
  type AggregateRow,
  type AnomalyScore,
  type CqlBigint,
  type MetricStatsUdt,
  type WindowRecord,
} from '@fleetpulse/contracts';
import type { types } from 'cassandra-driver';
import { CassandraService } from './cassandra.service';
import type { DashboardConfig } from './config';
import {
  DayMs,
  Limits,
  queryBuckets,
  type AnomalyQuery,
  type DevicesQuery,
  type SeriesQuery,
  type WindowsQuery,
} from './query';
import { DashboardConfigToken } from './tokens';
import type { DeviceSummary, SeriesPage, WindowsPage } from './wire';

export interface DevicesPage {
  devices: DeviceSummary[];
  /** The device that starts the next page (pass it as `next`); null when complete. */
  next: string | null;
}

export interface AnomalyPage {
  scores: AnomalyScore[];
  /** windowStart of the newest score not returned (pass it + 1 as `to` for the next page); null when complete. */
  next: number | null;
}

const num = (v: unknown): number => cqlBigintToNumber(v as CqlBigint);

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

  /**
   * One page of the device list in token order of the device id: the order Cassandra reads the table in, so a page
   * costs `limit + 1` rows however many devices there are (the extra row is where the next page starts). A device
   * added while a client pages is listed if its token is past the client's cursor; none is listed twice.
   */
  async devices(q: DevicesQuery): Promise<DevicesPage> {
    const from = q.next === undefined ? '' : ' WHERE token(device_id) >= token(?)';
    const rs = await this.db.execute(
      `SELECT device_id, last_seen, metrics FROM ${this.ks}.devices${from} LIMIT ?`,
      q.next === undefined ? [q.limit + 1] : [q.next, q.limit + 1],
      { fetchSize: q.limit + 1 },
    );
    const devices = rs.rows.map((r): DeviceSummary => {
      const lastSeen = r.get('last_seen') as CqlBigint | null;
      return {
        deviceId: r.get('device_id') as string,
        lastSeen: lastSeen === null ? null : num(lastSeen),
        metrics: [...((r.get('metrics') as string[] | null) ?? [])].sort(),
      };
    });
    const next = devices.length > q.limit ? devices.pop()!.deviceId : null;
    return { devices, next };
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
        const s = metricStatsFromUdt(r.get('stats') as MetricStatsUdt | null);
        return s && { deviceId, metric, resolution, windowStart, windowEnd: num(r.get('window_end')), ...s };
      },
    );
    return { deviceId, metric, resolution, points: items, next };
  }

  /** Window records, oldest first, every metric of each. */
  async windows(q: WindowsQuery): Promise<WindowsPage> {
    const cql =
      `SELECT device_id, resolution, window_start, window_end, metrics FROM ${this.ks}.windows ` +
      `WHERE device_id = ? AND resolution = ? AND bucket = ? AND window_start >= ? AND window_start < ?`;
    const { deviceId, resolution } = q;
    const { items, next } = await this.scan(
      q,
      cql,
      (bucket) => [deviceId, resolution, bucket, q.from, q.to],
      (r): WindowRecord | undefined => {
        const record = windowRecordFromRow(r);
        // A record holds at least one metric (contract); a row without any is not one.
        return Object.keys(record.metrics).length > 0 ? record : undefined;
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
