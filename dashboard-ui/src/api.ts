import type { AggregateRow, AnomalyScore, MetricStats, WindowRecord } from '@fleetpulse/contracts';

export type { AggregateRow, AnomalyScore, MetricStats, WindowRecord };

export interface DeviceSummary {
  deviceId: string;
  lastSeen: number | null;
  metrics: string[];
}

export interface SeriesPage {
  deviceId: string;
  metric: string;
  resolution: string;
  points: AggregateRow[];
  next: number | null;
}

export interface ModelStatus {
  name: string;
  file: string | null;
  active: { version: string; features: string[]; resolution: string; loadedAt: string } | null;
  lastError: { at: string; file: string; reason: string } | null;
}

async function getJson<T>(path: string): Promise<T> {
  const res = await fetch(path, { headers: { accept: 'application/json' } });
  if (!res.ok) {
    const body = (await res.json().catch(() => ({}))) as { error?: string };
    throw new Error(body.error ?? `${res.status} ${res.statusText}`);
  }
  return (await res.json()) as T;
}

export const fetchDevices = () => getJson<DeviceSummary[]>('/api/devices');

export const fetchAnomalies = (q: { deviceId?: string; from?: number; to?: number; limit?: number }) => {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(q)) if (v !== undefined) p.set(k, String(v));
  return getJson<AnomalyScore[]>(`/api/anomalies?${p.toString()}`);
};

export const fetchModels = () => getJson<{ models: ModelStatus[]; error?: string }>('/api/models');

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
