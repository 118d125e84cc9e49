import { Inject, Injectable } from '@nestjs/common';
import { transitionFromRow } from '@fleetpulse/alerting';
import {
  cqlBigintToNumber,
  metricStatsFromUdt,
  windowRecordFromRow,
  type AggregateRow,
  type AlertTransition,
  type AnomalyScore,
  type CqlBigint,
  type MetricStatsUdt,
  type WindowRecord,
} from '@fleetpulse/contracts';
import type { types } from 'cassandra-driver';
import type { DeviceScope } from './access';
import { CassandraService } from './cassandra.service';
import type { DashboardConfig } from './config';
import {
  DayMs,
  Limits,
  queryBuckets,
  type AlertQuery,
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

export interface AlertPage {
  alerts: AlertTransition[];
  /** windowStart of the newest transition not returned (pass it + 1 as `to` for the next page); null when complete. */
  next: number | null;
}

export interface AnomalyPage {
  scores: AnomalyScore[];
  /** windowStart of the newest score not returned (pass it + 1 as `to` for the next page); null when complete. */
  next: number | null;
}

const num = (v: unknown): number => cqlBigintToNumber(v as CqlBigint);

/**
 * Once rows were skipped (a window without the metric, a device out of scope), a read fetches at least this many rows
 * a round trip, doubling each round trip up to MaxFetch.
 */
const MinFetchAfterSkip = 100;
const MaxFetch = 5000;

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

/** History reads for the REST API, in the shapes of the contract (docs/contract.md, "Dashboard API"). */
@Injectable()
export class HistoryService {
  private readonly ks: string;
  /** Windows a history page reads at most (Limits.windowsScannedMax; lowered by tests). */
  scannedMax: number = Limits.windowsScannedMax;
  /** Rows a page of the device list or the anomalies reads at most (Limits.listScannedMax; lowered by tests). */
  listScannedMax: number = Limits.listScannedMax;

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
   * added while a client pages is listed if its token is past the client's cursor; none is listed twice. A
   * device-limited scope skips the devices it does not hold, reading at most `listScannedMax` rows a page:
   * its pages may hold fewer than `limit` devices (even none) and still have a next.
   */
  async devices(q: DevicesQuery, scope: DeviceScope): Promise<DevicesPage> {
    const from = q.next === undefined ? '' : ' WHERE token(device_id) >= token(?)';
    const { items, next } = await this.page(
      `SELECT device_id, last_seen, metrics FROM ${this.ks}.devices${from}`,
      [q.next === undefined ? [] : [q.next]],
      { limit: q.limit, scannedMax: this.listScannedMax },
      (r) => r.get('device_id') as string,
      (r, deviceId): DeviceSummary | undefined => {
        if (!scope.allows(deviceId)) return undefined;
        const lastSeen = r.get('last_seen') as CqlBigint | null;
        return {
          deviceId,
          lastSeen: lastSeen === null ? null : num(lastSeen),
          metrics: [...((r.get('metrics') as string[] | null) ?? [])].sort(),
        };
      },
    );
    return { devices: items, next };
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

  /** One page of a history read: the range's buckets in order, each only within [from, to) (see `page`). */
  private scan<T>(
    q: WindowsQuery,
    cql: string,
    params: (bucket: number) => unknown[],
    item: (r: types.Row, windowStart: number) => T | undefined,
  ): Promise<{ items: T[]; next: number | null }> {
    return this.page(
      cql,
      queryBuckets(q).map(params),
      { limit: q.limit, scannedMax: this.scannedMax },
      (r) => num(r.get('window_start')),
      item,
    );
  }

  /**
   * One page of a bounded read: the partitions (parameter lists of `cql`) in order, each page by page for as many rows
   * as the page still wants (+1 to learn whether a next page exists; more, growing, once rows were skipped), so a page
   * of items costs at most `limit + 1` rows however much there is to read. `key` is where a page would start, `item`
   * turns a row into what the page holds, or undefined to skip it. At most `scannedMax` rows are read; past that the
   * page ends early with `next` at the key of the first row not read.
   */
  private async page<K, T>(
    cql: string,
    partitions: unknown[][],
    bounds: { limit: number; scannedMax: number },
    key: (r: types.Row) => K,
    item: (r: types.Row, key: K) => T | undefined,
  ): Promise<{ items: T[]; next: K | null }> {
    const items: T[] = [];
    let scanned = 0;
    let fetchSize = 0;
    let skipped = false;
    for (const params of partitions) {
      let pageState: string | undefined;
      do {
        const want = bounds.limit + 1 - items.length;
        const grown = skipped ? Math.max(want, MinFetchAfterSkip, Math.min(fetchSize * 2, MaxFetch)) : want;
        fetchSize = Math.min(grown, bounds.scannedMax - scanned + 1);
        const rs = await this.db.execute(cql, [...params], { fetchSize, pageState });
        for (const r of rs.rows) {
          const k = key(r);
          if (scanned === bounds.scannedMax) return { items, next: k };
          scanned++;
          const it = item(r, k);
          if (it === undefined) {
            skipped = true;
            continue;
          }
          if (items.length === bounds.limit) return { items, next: k };
          items.push(it);
        }
        pageState = rs.pageState ?? undefined;
      } while (pageState !== undefined);
    }
    return { items, next: null };
  }

  /**
   * Anomalous scores, newest first: one partition per UTC day, newest day first. A device-limited scope skips the
   * other devices' rows of `anomalies_by_day`, reading at most `listScannedMax` rows a page.
   */
  async anomalies(q: AnomalyQuery, scope: DeviceScope): Promise<AnomalyPage> {
    const cols = 'device_id, window_start, resolution, model, model_version, score, features';
    const cql = q.deviceId
      ? `SELECT ${cols} FROM ${this.ks}.anomalies WHERE device_id = ? AND day = ? AND window_start >= ? AND window_start < ?`
      : `SELECT ${cols} FROM ${this.ks}.anomalies_by_day WHERE day = ? AND window_start >= ? AND window_start < ?`;
    const days: unknown[][] = [];
    const firstDay = Math.floor(q.from / DayMs) * DayMs;
    for (let day = Math.floor((q.to - 1) / DayMs) * DayMs; day >= firstDay; day -= DayMs)
      days.push(q.deviceId ? [q.deviceId, day, q.from, q.to] : [day, q.from, q.to]);
    const { items, next } = await this.page(
      cql,
      days,
      { limit: q.limit, scannedMax: this.listScannedMax },
      (r) => num(r.get('window_start')),
      (r) => (scope.allows(r.get('device_id') as string) ? rowToScore(r) : undefined),
    );
    return { scores: items, next };
  }

  /**
   * Alert transitions (contracts/cql/005-alerts.cql), newest window first: one partition per UTC day of the range,
   * newest day first, from `alerts_by_device` for one device or `alerts_by_day` for the fleet. `state` and a
   * device-limited scope are filtered as rows are read, so a page reads at most `listScannedMax` rows (and may then
   * hold fewer than `limit`, even none, with `next` set).
   */
  async alerts(q: AlertQuery, scope: DeviceScope): Promise<AlertPage> {
    const cql = q.deviceId
      ? `SELECT * FROM ${this.ks}.alerts_by_device WHERE device_id = ? AND day = ? AND window_start >= ? AND window_start < ?`
      : `SELECT * FROM ${this.ks}.alerts_by_day WHERE day = ? AND window_start >= ? AND window_start < ?`;
    const days: unknown[][] = [];
    const firstDay = Math.floor(q.from / DayMs) * DayMs;
    for (let day = Math.floor((q.to - 1) / DayMs) * DayMs; day >= firstDay; day -= DayMs)
      days.push(q.deviceId ? [q.deviceId, day, q.from, q.to] : [day, q.from, q.to]);
    const { items, next } = await this.page(
      cql,
      days,
      { limit: q.limit, scannedMax: this.listScannedMax },
      (r) => num(r.get('window_start')),
      (r) =>
        scope.allows(r.get('device_id') as string) && (q.state === undefined || r.get('state') === q.state)
          ? transitionFromRow(r)
          : undefined,
    );
    return { alerts: items, next };
  }
}
