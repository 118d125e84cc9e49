import type { MetricStats, WindowRecord } from '@fleetpulse/contracts';

/** The statistics of a metric in a window record (contracts' MetricStatNames; the UI imports no contracts code). */
const MetricStatNames: readonly (keyof MetricStats)[] = [
  'count',
  'sum',
  'min',
  'max',
  'mean',
  'stddev',
  'first',
  'last',
];

/**
 * A device's window records as CSV: one row per window, oldest first; columns `windowStart` and `windowEnd` (ISO
 * 8601, UTC), `resolution`, then `<metric>.<stat>` for every metric any record holds (sorted) and every statistic
 * (count, sum, min, max, mean, stddev, first, last). A window without a metric leaves its cells empty.
 */
export function windowsCsv(records: readonly WindowRecord[]): string {
  const metrics = [...new Set(records.flatMap((r) => Object.keys(r.metrics)))].sort();
  const head = [
    'windowStart',
    'windowEnd',
    'resolution',
    ...metrics.flatMap((m) => MetricStatNames.map((s) => `${m}.${s}`)),
  ];
  const rows = [...records]
    .sort((a, b) => a.windowStart - b.windowStart)
    .map((r) => [
      new Date(r.windowStart).toISOString(),
      new Date(r.windowEnd).toISOString(),
      r.resolution,
      ...metrics.flatMap((m) => MetricStatNames.map((s) => (r.metrics[m] ? String(r.metrics[m][s]) : ''))),
    ]);
  return [head, ...rows].map((cols) => cols.map(cell).join(',')).join('\n') + '\n';
}

/** RFC 4180: a cell with a comma, quote or line break is quoted, quotes doubled. */
const cell = (v: string): string => (/[",\n\r]/.test(v) ? `"${v.replace(/"/g, '""')}"` : v);

/** Saves `text` as a file named `name` (a download from the page). */
export function download(name: string, text: string, type = 'text/csv'): void {
  const url = URL.createObjectURL(new Blob([text], { type }));
  const a = document.createElement('a');
  a.href = url;
  a.download = name;
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}
