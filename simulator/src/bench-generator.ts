/**
 * Throughput of the in-process generator (and of encoding) on one core:
 * `node simulator/dist/bench-generator.js [devices] [events]`.
 */
import { createFleet } from './fleet';
import { encodeBatch } from './encode';

function run(devices: number, events: number, encode: 'none' | 'json' | 'ndjson'): number {
  const fleet = createFleet({ devices, seed: 42, start: Date.UTC(2025, 10, 22), rate: devices * 2, maxEvents: events });
  let bytes = 0;
  const t0 = process.hrtime.bigint();
  for (const batch of fleet.batches()) if (encode !== 'none') bytes += encodeBatch(batch.events, encode).length;
  const s = Number(process.hrtime.bigint() - t0) / 1e9;
  const rate = fleet.stats.emitted / s;
  const extra = encode === 'none' ? '' : `, ${(bytes / fleet.stats.emitted).toFixed(0)} B/event`;
  process.stdout.write(`${devices} devices, ${encode}: ${Math.round(rate).toLocaleString('en-US')} events/s${extra}\n`);
  return rate;
}

const devices = Number(process.argv[2] ?? 10_000);
const events = Number(process.argv[3] ?? 2_000_000);
run(devices, events / 4, 'none'); // warm-up
for (const encode of ['none', 'json', 'ndjson'] as const) run(devices, events, encode);
