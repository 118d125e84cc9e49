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
import { overlappingTruth, simulateAggregates, truthByDevice } from '../testing';

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
  // One line per window record; a metric the window lacks leaves its columns empty.
  const windows = [...sim.records].sort(
    (a, b) => a.windowStart - b.windowStart || (a.deviceId < b.deviceId ? -1 : a.deviceId > b.deviceId ? 1 : 0),
  );
  const columns = MetricNames.flatMap((m) => Stats.map((s) => `${m}.${s}`));
  const out = createWriteStream(values.out);
  out.write(['deviceId', 'windowStart', 'label', 'kind', ...columns].join(',') + '\n');
  let positives = 0;
  for (const w of windows) {
    const hits = overlappingTruth(byDevice, w.deviceId, w.windowStart, w.windowEnd);
    if (hits.length > 0) positives++;
    const line = [w.deviceId, w.windowStart, hits.length > 0 ? 1 : 0, hits.map((h) => h.kind).join('+')];
    for (const m of MetricNames) {
      const stats = Object.prototype.hasOwnProperty.call(w.metrics, m) ? w.metrics[m] : undefined;
      for (const st of Stats) line.push(stats?.[st] ?? '');
    }
    if (!out.write(line.join(',') + '\n')) await once(out, 'drain');
  }
  out.end();
  await once(out, 'finish');
  process.stderr.write(
    `make-training-data: ${windows.length} window records (${positives} anomalous), ` +
      `${sim.truth.length} anomalies, in ${Date.now() - t0} ms -> ${values.out}\n`,
  );
}

main().catch((e: unknown) => {
  process.stderr.write(`make-training-data: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(1);
});
