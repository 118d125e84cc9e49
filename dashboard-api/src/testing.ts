import {
  resolutionMs,
  type AggregateRow,
  type AnomalyScore,
  type MetricStats,
  type WindowRecord,
} from '@fleetpulse/contracts';
import { loadConfig, type DashboardConfig } from './config';

/** The dashboard tokens of testConfig: an admin and a viewer for every device, a viewer limited to some devices. */
export const TestTokens = {
  admin: 'test-admin-token-1',
  viewer: 'test-viewer-token-1',
  tenant: 'test-tenant-token-1',
} as const;

/** `Authorization: Bearer <token>` as fetch headers. */
export const bearer = (token: string): Record<string, string> => ({ authorization: `Bearer ${token}` });

/**
 * A configuration for tests: port 0, the TestTokens (the tenant's limited to `tenantDevices`), everything else from
 * the environment as the launcher sets it, and `env` over that.
 */
export function testConfig(
  overrides: Partial<DashboardConfig> = {},
  tenantDevices: readonly string[] = ['tenant-*'],
  env: NodeJS.ProcessEnv = {},
): DashboardConfig {
  return {
    ...loadConfig({
      ...process.env,
      FLEETPULSE_DASHBOARD_PORT: '0',
      FLEETPULSE_DASHBOARD_HOST: '127.0.0.1',
      FLEETPULSE_DASHBOARD_ADMIN_TOKENS: TestTokens.admin,
      FLEETPULSE_DASHBOARD_VIEWER_TOKENS: [
        TestTokens.viewer,
        ...tenantDevices.map((d) => `${TestTokens.tenant}=${d}`),
      ].join(','),
      ...env,
    }),
    ...overrides,
  };
}

/** Statistics of a window whose events were around `value` (4 events; `last` is `value`). */
export function metricStats(value: number): MetricStats {
  return {
    count: 4,
    sum: value * 4,
    min: value - 1,
    max: value + 1,
    mean: value,
    stddev: 0.5,
    first: value - 0.5,
    last: value,
  };
}

/** A final window record of `deviceId` with `values` (metric -> value, see metricStats). */
export function windowRecord(
  deviceId: string,
  windowStart: number,
  values: Record<string, number>,
  resolution = '1s',
): WindowRecord {
  const metrics: Record<string, MetricStats> = {};
  for (const [m, v] of Object.entries(values)) metrics[m] = metricStats(v);
  return {
    deviceId,
    resolution,
    windowStart,
    windowEnd: windowStart + resolutionMs(resolution),
    final: true,
    metrics,
  };
}

/** The v1 point of one metric that windowRecord(deviceId, windowStart, {[metric]: value}, resolution) holds. */
export function aggregateRow(
  deviceId: string,
  metric: string,
  windowStart: number,
  value: number,
  resolution = '1s',
): AggregateRow {
  return {
    deviceId,
    metric,
    resolution,
    windowStart,
    windowEnd: windowStart + resolutionMs(resolution),
    ...metricStats(value),
  };
}

export function anomalyScore(deviceId: string, windowStart: number, score = 0.9): AnomalyScore {
  return {
    deviceId,
    resolution: '10s',
    windowStart,
    model: 'iforest',
    modelVersion: '3',
    score,
    anomalous: true,
    features: { 'temp.mean': 99.5 },
  };
}

/** Resolves with the first `n` events `name` on `socket` (rejects after `timeoutMs`). */
export function collect<T>(
  socket: { on(ev: string, fn: (v: T) => void): unknown; off(ev: string, fn: (v: T) => void): unknown },
  name: string,
  n: number,
  timeoutMs = 10_000,
): Promise<T[]> {
  return new Promise((resolve, reject) => {
    const got: T[] = [];
    const timer = setTimeout(() => {
      socket.off(name, on);
      reject(new Error(`got ${got.length} of ${n} "${name}" events in ${timeoutMs} ms`));
    }, timeoutMs);
    const on = (v: T) => {
      got.push(v);
      if (got.length >= n) {
        clearTimeout(timer);
        socket.off(name, on);
        resolve(got);
      }
    };
    socket.on(name, on);
  });
}
