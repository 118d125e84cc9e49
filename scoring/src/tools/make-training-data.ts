/**
 * Writes training data for scoring/train: one CSV line per device and 10 s window of a simulated fleet, with every
 * stat of every metric and the ground-truth label (the window overlaps an injected anomaly of that device).
 *
 *   node scoring/dist/tools/make-training-data.js --out data.csv [--devices 100] [--hours 2] [--seed 7]
 */
import { createWriteStream } from 'node:fs';
import { once } from 'node:events';
import { parseArgs } from 'node:util';
import { MetricNames } from '@fleetpulse/simulator';
import { overlappingTruth, simulateAggregates, truthByDevice } from '../sim-data';

const Stats = ['count', 'min', 'max', 'mean', 'stddev', 'first', 'last'] as const;

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      out: { type: 'string' },
      devices: { type: 'string', default: '100' },
      hours: { type: 'string', default: '2' },
      seed: { type: 'string', default: '7' },
      resolution: { type: 'string', default: '10s' },
    },
  });
  if (values.out === undefined) throw new Error('--out <file.csv> is required');
  const t0 = Date.now();
  const sim = simulateAggregates({
    devices: Number(values.devices),
    durationMs: Number(values.hours) * 3_600_000,
    seed: Number(values.seed),
    resolution: values.resolution,
  });
  const byDevice = truthByDevice(sim.truth);
  // Group rows per (device, window); a window lacking a metric leaves its columns empty.
  const windows = new Map<string, { deviceId: string; start: number; end: number; stats: Map<string, number> }>();
  for (const r of sim.rows) {
    const k = `${r.deviceId}|${r.windowStart}`;
    let w = windows.get(k);
    if (!w) windows.set(k, (w = { deviceId: r.deviceId, start: r.windowStart, end: r.windowEnd, stats: new Map() }));
    for (const s of Stats) w.stats.set(`${r.metric}.${s}`, r[s]);
  }
  const columns = MetricNames.flatMap((m) => Stats.map((s) => `${m}.${s}`));
  const out = createWriteStream(values.out);
  out.write(['deviceId', 'windowStart', 'label', 'kind', ...columns].join(',') + '\n');
  let positives = 0;
  for (const w of [...windows.values()].sort((a, b) => a.start - b.start || (a.deviceId < b.deviceId ? -1 : 1))) {
    const hits = overlappingTruth(byDevice, w.deviceId, w.start, w.end);
    if (hits.length > 0) positives++;
    const line = [w.deviceId, w.start, hits.length > 0 ? 1 : 0, hits.map((h) => h.kind).join('+')];
    for (const c of columns) line.push(w.stats.get(c) ?? '');
    if (!out.write(line.join(',') + '\n')) await once(out, 'drain');
  }
  out.end();
  await once(out, 'finish');
  process.stderr.write(
    `make-training-data: ${windows.size} windows (${positives} anomalous) from ${sim.rows.length} rows, ` +
      `${sim.truth.length} anomalies, in ${Date.now() - t0} ms -> ${values.out}\n`,
  );
}

main().catch((e: unknown) => {
  process.stderr.write(`make-training-data: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(1);
});
