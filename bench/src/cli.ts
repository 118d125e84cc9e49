#!/usr/bin/env node
/**
 * `npm run bench -- [suite ...] [--quick] [--out file.json]`: the project's benchmarks, each next to the baseline its
 * issue names, in one run. Prints a table per suite and writes every figure as JSON (default bench/results/latest.json).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { cpus } from 'node:os';
import { parseArgs } from 'node:util';
import { benchCore } from './core';
import { benchDashboard } from './dashboard';
import { benchE2e } from './e2e';
import { benchIngest } from './ingest';
import { benchMqtt } from './mqtt';
import { benchParse } from './parse';
import { benchProcessor } from './processor';
import { benchScoring } from './scoring';

const help = `Usage: npm run bench -- [suite ...] [--quick] [--out <file.json>]

Suites (default: all):
  parse      native parse+validate+encode vs TypeScript fallback vs bare JSON.parse (one core)
  core       stream-processor aggregation core alone: events/s, bytes per open window (one core)
  ingest     ingestion service -> Kafka (acks=all) events/s, p50/p99, peak RSS; next to Kafka's ProducerPerformance
  processor  Kafka -> stream-processor -> Cassandra events/s and rows/s, peak RSS; next to a plain insert loop
             and to \`npm run replay\` of the same records
  scoring    onnxruntime-node scores/s at batch 1/64/1024 vs Python onnxruntime; swap-to-first-score; loop lag; RSS
  mqtt       events/s over MQTT (QoS 1, PUBACK after Kafka) next to HTTP, same batches
  dashboard  window close -> socket.io client p50/p99; updates/s fanned out to 200 clients with API CPU and RSS
  e2e        event ingestion -> its 1 s aggregate at a socket.io client, through a running stack (npm start);
             not in the default set
Options:
  --quick    shorter runs (for a smoke test; figures are noisier)
  --out      where to write the JSON results (default bench/results/latest.json)
  --help     this text
The machine is shared and has 2 cores: run on a quiet machine and compare figures of one run side by side.`;

type Suite = 'parse' | 'core' | 'ingest' | 'mqtt' | 'processor' | 'scoring' | 'dashboard' | 'e2e';
const allSuites: Suite[] = ['parse', 'core', 'ingest', 'mqtt', 'processor', 'scoring', 'dashboard'];

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: { quick: { type: 'boolean' }, out: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
  });
  if (values.help) return void console.log(help);
  const unknown = positionals.filter((p) => !allSuites.includes(p as Suite) && p !== 'e2e');
  if (unknown.length > 0)
    throw new Error(`unknown suite(s) ${unknown.join(', ')}; choose from ${allSuites.join(', ')}`);
  const suites = positionals.length > 0 ? (positionals as Suite[]) : allSuites;
  const quick = values.quick === true;
  const results: Record<string, unknown> = {
    startedAt: new Date().toISOString(),
    quick,
    node: process.version,
    cpus: cpus().length,
  };
  for (const suite of suites) {
    console.error(`\n== ${suite} ==`);
    const started = Date.now();
    results[suite] = await run(suite, quick);
    console.error(`(${suite}: ${((Date.now() - started) / 1000).toFixed(0)} s)`);
  }
  const out = values.out ?? join(__dirname, '..', 'results', 'latest.json');
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, JSON.stringify(results, null, 2) + '\n');
  console.error(`\nresults written to ${out}`);
}

const fmt = (n: number, digits = 0) =>
  n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });

async function run(suite: Suite, quick: boolean): Promise<unknown> {
  switch (suite) {
    case 'parse': {
      const rows = [];
      for (const groupByDevice of [false, true])
        rows.push(...(await benchParse({ groupByDevice, ...(quick ? { runs: 3, runMs: 300 } : {}) })));
      console.table(
        rows.map((r) => ({
          parser: r.parser,
          grouped: r.groupByDevice,
          'MB/s': fmt(r.mbPerSec, 1),
          'events/s': fmt(r.eventsPerSec),
        })),
      );
      return rows;
    }
    case 'core': {
      const r = await benchCore(quick ? { seconds: 60 } : {});
      console.table({
        'rows lazy': { 'events/s': fmt(r.eventsPerSec), 'rows/s': fmt(r.rowsPerSec) },
        ...(r.serialized
          ? {
              'rows serialised': { 'events/s': fmt(r.serialized.eventsPerSec), 'rows/s': fmt(r.serialized.rowsPerSec) },
            }
          : {}),
      });
      return r;
    }
    case 'ingest': {
      const r = await benchIngest(quick ? { seconds: 5 } : {});
      console.table({
        'ingestion service (HTTP -> Kafka, acks=all)': {
          'events/s': fmt(r.service.eventsPerSec),
          'p50 ms': fmt(r.service.p50Ms, 1),
          'p99 ms': fmt(r.service.p99Ms, 1),
          'peak RSS MB': fmt(r.service.peakRssMb),
        },
        'Kafka ProducerPerformance, same records': {
          'events/s': fmt(r.ceiling.eventsPerSec),
          'p50 ms': '',
          'p99 ms': '',
          'peak RSS MB': '',
        },
      });
      console.error(`service / ceiling = ${(r.ratio * 100).toFixed(0)}%; statuses ${JSON.stringify(r.service.status)}`);
      return r;
    }
    case 'processor': {
      const r = await benchProcessor(quick ? { events: 200_000 } : {});
      console.table({
        'stream-processor (Kafka -> Cassandra)': {
          'events/s': fmt(r.processor.eventsPerSec),
          'rows/s': fmt(r.processor.rowsPerSec),
          'peak RSS MB': fmt(r.processor.peakRssMb),
        },
        'plain prepared-insert loop, same rows': {
          'events/s': '',
          'rows/s': fmt(r.ceiling.rowsPerSec),
          'peak RSS MB': '',
        },
        'unlogged single-partition batches of 20, same rows': {
          'events/s': '',
          'rows/s': fmt(r.batchedCeiling.rowsPerSec),
          'peak RSS MB': '',
        },
        'replay of the same topic (npm run replay)': {
          'events/s': fmt(r.replay.eventsPerSec),
          'rows/s': '',
          'peak RSS MB': '',
        },
      });
      return r;
    }
    case 'mqtt': {
      const r = await benchMqtt(quick ? { seconds: 3 } : {});
      console.table(
        r.rows.map((d) => ({
          door: d.door,
          batches: d.batches,
          'events/s': fmt(d.eventsPerSec),
          'p50 ms': fmt(d.p50Ms, 1),
          'p99 ms': fmt(d.p99Ms, 1),
          failures: d.failures,
        })),
      );
      console.error(`ingestion peak RSS ${fmt(r.peakRssMb)} MB`);
      return r;
    }
    case 'e2e': {
      const r = await benchE2e(quick ? { seconds: 15 } : {});
      console.table({
        'event -> 1 s aggregate at a socket.io client': {
          windows: r.windows,
          'p50 ms': fmt(r.p50Ms),
          'p99 ms': fmt(r.p99Ms),
          'max ms': fmt(r.maxMs),
        },
      });
      return r;
    }
    case 'scoring': {
      const r = await benchScoring({
        ...(quick ? { seconds: 0.5, rounds: 1, swaps: 20 } : {}),
        log: (l) => console.error(l),
      });
      console.table(
        r.throughput.map((t) => ({
          batch: t.batch,
          'node scores/s': fmt(t.nodeInProcess),
          'node (service child) scores/s': fmt(t.nodeSessionHost),
          'python scores/s': t.python === null ? 'n/a' : fmt(t.python),
          'node/python': t.ratio === null ? 'n/a' : fmt(t.ratio, 2),
        })),
      );
      console.error(
        `rename -> first score ms: ${r.swapToFirstScoreMs.map((x) => x.toFixed(0)).join(', ')}; loop lag p99 ms: in-process ${r.loopLag.inProcess.p99.toFixed(1)}, service ${r.loopLag.sessionHost.p99.toFixed(1)}; RSS after ${r.rss.swaps} swaps: in-process ${r.rss.inProcess.before.toFixed(0)} -> ${r.rss.inProcess.after.toFixed(0)} MiB, service ${r.rss.sessionHost.parentBefore.toFixed(0)} -> ${r.rss.sessionHost.parentAfter.toFixed(0)} MiB (child ${r.rss.sessionHost.childAfter.toFixed(0)} MiB)`,
      );
      return r;
    }
    case 'dashboard': {
      const out = [];
      for (const batch of [false, true]) {
        const r = await benchDashboard({
          batch,
          ...(quick ? { seconds: 3, rates: [250] } : {}),
          log: (l) => console.error(l),
        });
        console.table(
          r.levels.map((l) => ({
            mode: batch ? 'batch' : 'per row',
            'rows/s in': l.producedPerSec,
            'updates/s out': fmt(l.deliveredPerSec),
            'p50 ms': fmt(l.latencyMs.p50),
            'p99 ms': fmt(l.latencyMs.p99),
            'API CPU %': fmt(l.apiCpuPercent),
            'API RSS MiB': fmt(l.apiRssMiB),
          })),
        );
        out.push(r);
      }
      return out;
    }
  }
}

main().catch((e: unknown) => {
  console.error(`bench: ${e instanceof Error ? e.message : String(e)}`);
  process.exit(1);
});
