#!/usr/bin/env node
/**
 * `npm run bench -- [suite ...] [--quick] [--out file.json]`: the project's benchmarks, each next to the baseline its
 * issue names, in one run. Prints a table per suite and writes every figure as JSON (default bench/results/latest.json).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { cpus } from 'node:os';
import { parseArgs } from 'node:util';
import { benchAlerts, type Spread } from './alerts';
import { benchCore } from './core';
import { benchDashboard } from './dashboard';
import { benchE2e } from './e2e';
import { benchCluster } from './cluster';
import { benchFleet, type FleetPhase } from './fleet';
import { benchFleetUi } from './fleet-ui';
import { benchIngest, type IngestionTarget } from './ingest';
import { benchMillion } from './million';
import { benchMqtt } from './mqtt';
import { benchParse, type Result as ParseResult } from './parse';
import type { ParseTelemetry } from '@fleetpulse/native';
import { benchProcessor } from './processor';
import { benchScoring } from './scoring';
import { benchScoringDrain } from './scoring-drain';
import { keepServiceLogs } from './services';

const help = `Usage: npm run bench -- [suite ...] [--quick] [--out <file.json>]

Suites (default: parse core ingest mqtt processor scoring dashboard):
  parse      native parse+validate+encode vs TypeScript fallback vs bare JSON.parse (one core): bodies of 500 events
             and of one event, JSON and NDJSON, one record per event and grouped by device (as ingestion parses)
  core       stream-processor aggregation core alone (one core): events/s and windows/s, lazy and with every
             window record serialised (recordJson, what it publishes); bytes per open window; goal 2,000,000 events/s
  ingest     ingestion service -> Kafka (acks=all) events/s, p50/p99, peak RSS; next to Kafka's ProducerPerformance
             (which writes the same record values ingestion produced)
  processor  pre-filled topic -> stream-processor process -> Cassandra + metrics.aggregates, committed to the end:
             events/s, windows/s, rows/s, peak RSS; run with every resolution stored and with 1s live only
             (FLEETPULSE_STORED_RESOLUTIONS=10s,60s). Next to Cassandra's insert ceilings for the processor's own
             window rows (its aggregator run in-process over the same events and devices), written
             through its AggregateStore drain by drain (rows into fleetpulse.windows, plus the store's device-list
             updates): one INSERT per row (512 in flight), the processor's unlogged batches (by replica set, <= 50,
             128 in flight), and its single-partition batches of <= 20 from before (a reference);
             goal: processor rows/s >= 70% of its batched ceiling. And \`npm run replay\` of the same topic.
  scoring    scores/s at batch 1/64/1024: the service's path (Scorer steps through the session host) vs Python
             onnxruntime (service/python), onnxruntime-node in-process beside; swap-to-first-score; loop lag; RSS
  mqtt       events/s over MQTT (QoS 1, PUBACK after Kafka) next to HTTP, same batches
  dashboard  window close -> socket.io client p50/p99; updates/s fanned out to 200 clients with API CPU and RSS
Not in the default set (long, or need a running stack):
  e2e        event ingestion -> its 1 s aggregate, and -> the provisional record holding it, at a socket.io client,
             through a running stack (npm start), while 10,000 other devices post at 1 Hz; probes at 10 Hz and 1 Hz,
             the provisional path split at metrics.live (produced, read back) and the client
  scoring-drain  the scoring service draining 108,000 window records through Kafka, its steps' scores and offsets
             in one transaction (exactly once, the default) and not (FLEETPULSE_SCORING_TRANSACTIONS=off), in turns
  fleet      realtime load -> ingestion process -> Kafka -> stream-processor process -> Cassandra, on its own topic:
             10,000 devices x 5 Hz (50,000 events/s, 4 metrics) for 60 s then x 1 Hz for 60 s; offered and
             accepted events/s, processor events/s and events not yet read, CPU per process, end delay (last answer ->
             committed at the end and last windows in Cassandra); then steps of 10k/20k/50k events/s for the
             highest sustained rate. With every resolution stored and with 1s live only. About 20 minutes.
  million    1,000,000 devices reporting once then 10,000 of them for 60 s, one processor process: time to consume,
             longest gap without commits / reads, peak RSS (goal <= 1 GB), resident / evicted / looked-up devices;
             then a SIGTERM and a SIGKILL half way through a backlog: restart to reading and to caught up.
  cluster    on the local cluster (\`npm run stack -- up --cluster\`, started if not up): 10,000 events/s through the
             ingestion process and one processor while broker 2, then Cassandra node 3, are stopped and brought back:
             accepted events/s and latency per phase, accepted events lost (read back from Kafka), devices whose
             1 s windows miss or double a reading, end delay, time for each node to come back; then a pre-filled
             topic drained by 1, 2 and 3 processor instances (events/s). About 6 minutes.
  fleet-ui   the dashboard's fleet overview in headless Chromium while 10,000 devices each close a 1 s window a
             second (one API process on the real Kafka): frame intervals p50/p95/p99, main-thread busy ms per frame,
             long tasks, JS heap; then the same with the load stopped (this machine's floor). About 2 minutes.
  alerts     window close -> alert webhook received (goal p99 <= 1 s): ingestion, stream-processor, dashboard-api
             (the rule is made through POST /api/alerts/rules) and alerting as processes on the local stack, a
             webhook receiver in the bench; 50 devices at 2 Hz crossing a threshold every 3 s while 10,000 others
             post at 1 Hz, for 60 s: receipt - the window record's Kafka timestamp (and - the window's end)
             p50/p95/p99/max, stages, webhooks lost. About 3 minutes.
Options:
  --quick    shorter runs (for a smoke test; figures are noisier): processor 200,000 events; fleet 10 s phases
             and steps; million 100,000 devices
  --out      where to write the JSON results (default bench/results/latest.json)
  --cpu-prof <dir>  alerts: a V8 CPU profile of the alerting process written there (node --cpu-prof); ingest, mqtt:
             of the ingestion process
  --ingestion <main.js>  ingest, mqtt: run this ingestion build (default ingestion/dist/main.js), e.g. another
             commit's built in a copy of its own, to compare builds side by side with the same bench
  --baseline-native <dir>  parse: also run this build of the native package (its dist/index.js; e.g. another
             commit's, built in a copy of its own), interleaved with this one's in the same runs
  --batch-size <n>  ingest, mqtt: events per request / PUBLISH (default 500; mqtt skips its 50-device batches under 50)
  --connections <n>  ingest, mqtt: concurrent connections (default 32 / 16)
  --seconds <n>  ingest, mqtt: measured seconds (default 20 / 10 a shape)
  --help     this text
The machine is shared and has 2 cores: run on a quiet machine and compare figures of one run side by side.`;

type Suite =
  | 'parse'
  | 'core'
  | 'ingest'
  | 'mqtt'
  | 'processor'
  | 'scoring'
  | 'dashboard'
  | 'e2e'
  | 'fleet'
  | 'million'
  | 'cluster'
  | 'fleet-ui'
  | 'alerts'
  | 'scoring-drain';
const allSuites: Suite[] = ['parse', 'core', 'ingest', 'mqtt', 'processor', 'scoring', 'dashboard'];
const extraSuites: Suite[] = ['e2e', 'fleet', 'million', 'cluster', 'fleet-ui', 'alerts', 'scoring-drain'];

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      quick: { type: 'boolean' },
      out: { type: 'string' },
      'cpu-prof': { type: 'string' },
      ingestion: { type: 'string' },
      'baseline-native': { type: 'string' },
      'batch-size': { type: 'string' },
      connections: { type: 'string' },
      seconds: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) return void console.log(help);
  const unknown = positionals.filter((p) => ![...allSuites, ...extraSuites].includes(p as Suite));
  if (unknown.length > 0)
    throw new Error(`unknown suite(s) ${unknown.join(', ')}; choose from ${[...allSuites, ...extraSuites].join(', ')}`);
  const suites = positionals.length > 0 ? (positionals as Suite[]) : allSuites;
  const baselineNative = values['baseline-native'] === undefined ? undefined : loadNative(values['baseline-native']);
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
    results[suite] = await run(suite, quick, values['cpu-prof'], doorOptions(values), baselineNative);
    console.error(`(${suite}: ${((Date.now() - started) / 1000).toFixed(0)} s)`);
  }
  const out = values.out ?? join(__dirname, '..', 'results', 'latest.json');
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, JSON.stringify(results, null, 2) + '\n');
  console.error(`\nresults written to ${out}`);
}

const fmt = (n: number, digits = 0) =>
  n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });

/** What --ingestion, --batch-size, --connections, --seconds and --cpu-prof say for the door suites (ingest, mqtt). */
interface DoorOptions {
  target: IngestionTarget;
  batchSize?: number;
  connections?: number;
  seconds?: number;
}

function doorOptions(values: {
  ingestion?: string;
  'batch-size'?: string;
  connections?: string;
  seconds?: string;
  'cpu-prof'?: string;
}): DoorOptions {
  const count = (name: string, v: string | undefined): number | undefined => {
    if (v === undefined) return undefined;
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1) throw new Error(`--${name}: a whole number >= 1, not "${v}"`);
    return n;
  };
  const prof = values['cpu-prof'];
  return {
    target: {
      ...(values.ingestion === undefined ? {} : { script: resolve(values.ingestion) }),
      ...(prof === undefined ? {} : { nodeArgs: ['--cpu-prof', `--cpu-prof-dir=${resolve(prof)}`] }),
    },
    batchSize: count('batch-size', values['batch-size']),
    connections: count('connections', values.connections),
    seconds: count('seconds', values.seconds),
  };
}

/** The door options that were given (so that each suite keeps its own defaults for the rest). */
function given(d: DoorOptions, quickSeconds: number | undefined): Record<string, unknown> {
  const seconds = d.seconds ?? quickSeconds;
  return {
    target: d.target,
    ...(d.batchSize === undefined ? {} : { batchSize: d.batchSize }),
    ...(d.connections === undefined ? {} : { connections: d.connections }),
    ...(seconds === undefined ? {} : { seconds }),
  };
}

/** Another build's native parse, from its package directory (or its dist/index.js). */
function loadNative(path: string): ParseTelemetry {
  const full = resolve(path);
  const entry = full.endsWith('.js') ? full : join(full, 'dist', 'index.js');
  const built = createRequire(__filename)(entry) as { nativeParseTelemetry?: ParseTelemetry; nativeLoadError?: Error };
  if (built.nativeParseTelemetry === undefined)
    throw new Error(
      `--baseline-native ${path}: its addon did not load (${built.nativeLoadError?.message ?? 'no nativeParseTelemetry'}); build it there first (npm run build:native -w native)`,
    );
  return built.nativeParseTelemetry;
}

async function run(
  suite: Suite,
  quick: boolean,
  cpuProfDir: string | undefined,
  door: DoorOptions,
  baselineNative?: ParseTelemetry,
): Promise<unknown> {
  switch (suite) {
    case 'alerts': {
      const r = await benchAlerts({
        ...(quick ? { seconds: 20, backgroundDevices: 2000 } : {}),
        ...(cpuProfDir === undefined ? {} : { cpuProfDir }),
      });
      const row = (s: Spread) => ({
        count: s.count,
        'p50 ms': fmt(s.p50),
        'p95 ms': fmt(s.p95),
        'p99 ms': fmt(s.p99),
        'max ms': fmt(s.max),
      });
      console.table({
        'window record (Kafka timestamp) -> webhook received': row(r.closeToWebhookMs),
        'window end -> webhook received': row(r.windowEndToWebhookMs),
        'stage: window record -> evaluated (transition at)': row(r.stagesMs.recordToEvaluated),
        'stage: evaluated -> on the alerts topic': row(r.stagesMs.evaluatedToTopic),
        'stage: alerts topic -> webhook received': row(r.stagesMs.topicToWebhook),
        'reference: window record -> read by the bench': row(r.recordToBenchReadMs),
        'before: window end -> window record (processor)': row(r.windowEndToRecordMs),
      });
      console.error(
        `goal p99 <= 1,000 ms: ${r.goalMet ? 'met' : 'not met'}; expected ${r.expected} transitions (from ${fmt(r.windows)} window records), ` +
          `${r.onTopic} on the alerts topic, ${r.delivered} received, lost ${r.lost}, unexpected ${r.extra}, repeats ${r.duplicates}, ` +
          `from other alerting processes ${r.foreign}, ` +
          `bad signatures ${r.badSignatures}; ${r.alertDevices} alert devices at ${r.alertHz} Hz, ${fmt(r.backgroundDevices)} at 1 Hz; cores: ` +
          Object.entries(r.cores)
            .map(([k, v]) => `${k} ${v.toFixed(2)}`)
            .join(', ') +
          `; load average ${r.loadAverage.join(' ')}`,
      );
      return r;
    }
    case 'parse': {
      const rows: ParseResult[] = [];
      for (const batchSize of [500, 1])
        for (const contentType of ['json', 'ndjson'] as const)
          for (const groupByDevice of [false, true])
            rows.push(
              ...(await benchParse({
                batchSize,
                contentType,
                groupByDevice,
                baselineNative,
                ...(quick ? { runs: 3, runMs: 300 } : {}),
              })),
            );
      const jsonParse = (r: ParseResult) =>
        rows.find(
          (x) =>
            x.parser === 'JSON.parse' &&
            x.eventsPerBody === r.eventsPerBody &&
            x.contentType === r.contentType &&
            x.groupByDevice === r.groupByDevice,
        )!.mbPerSec;
      console.table(
        rows.map((r) => ({
          parser: r.parser,
          'events/body': r.eventsPerBody,
          type: r.contentType,
          grouped: r.groupByDevice,
          'MB/s': fmt(r.mbPerSec, 1),
          'events/s': fmt(r.eventsPerSec),
          'x JSON.parse': fmt(r.mbPerSec / jsonParse(r), 2),
        })),
      );
      return rows;
    }
    case 'core': {
      const r = await benchCore(quick ? { seconds: 60 } : {});
      console.table({
        'windows not read': { 'events/s': fmt(r.eventsPerSec), 'windows/s': fmt(r.windowsPerSec) },
        ...(r.serialized
          ? {
              'every window record serialised (recordJson), and the provisional snapshots': {
                'events/s': fmt(r.serialized.eventsPerSec),
                'windows/s': fmt(r.serialized.windowsPerSec),
                'snapshots/s': fmt(r.serialized.snapshotsPerSec),
              },
            }
          : {}),
      });
      const met = (x: boolean | null) => (x === null ? 'n/a' : x ? 'met' : 'not met');
      console.error(
        `goal ${fmt(r.goal.eventsPerSec)} events/s: lazy ${met(r.goal.lazyMet)}, serialised ${met(r.goal.serializedMet)}` +
          (r.memory
            ? `; ${fmt(r.memory.bytesPerOpenWindow)} bytes per open window, ${fmt(r.memory.bytesPerDeviceWithWindows)} per device with its first windows${r.memory.exactGc ? '' : ' (no --expose-gc: rough)'}`
            : ''),
      );
      return r;
    }
    case 'ingest': {
      const r = await benchIngest(given(door, quick ? 5 : undefined));
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
      console.error(
        `CPU per accepted event: ingestion ${fmt(r.service.ingestionCpuUsPerEvent, 1)} µs, ` +
          `load process ${fmt(r.service.loadCpuUsPerEvent, 1)} µs`,
      );
      return r;
    }
    case 'processor': {
      const r = await benchProcessor(quick ? { events: 200_000 } : {});
      const table: Record<string, Record<string, string>> = {};
      const blank = { 'events/s': '', 'windows published/s': '', 'rows/s': '', 'rows/request': '', 'peak RSS MB': '' };
      for (const run of r.runs)
        table[`stream-processor, stored ${run.stored}`] = {
          ...blank,
          'events/s': fmt(run.eventsPerSec),
          'windows published/s': fmt(run.windowsPublishedPerSec),
          'rows/s': fmt(run.rowsPerSec),
          'peak RSS MB': fmt(run.peakRssMb),
        };
      for (const c of r.ceilings)
        for (const x of [c.single, c.batched, c.before])
          table[
            `${x.method}${x.method.endsWith('(before)') ? ' (reference)' : ''}, ${x.concurrency} in flight, rows of ${c.stored}`
          ] = {
            ...blank,
            'rows/s': fmt(x.rowsPerSec),
            'rows/request': fmt(x.rowsPerRequest, 1),
          };
      if (r.replay)
        table['replay of the same topic (npm run replay)'] = { ...blank, 'events/s': fmt(r.replay.eventsPerSec) };
      console.table(table);
      for (const run of r.runs)
        console.error(
          `stored ${run.stored}: ${fmt(run.seconds, 1)} s from the first event read (${fmt(run.startupSeconds, 1)} s start-up before), ` +
            `${fmt(run.cpuSeconds / run.seconds, 2)} cores of processor CPU, ${fmt(run.flushes)} flushes of ${fmt(run.flushMeanMs)} ms on average, ` +
            `${fmt(run.late)} late events, rows written ${fmt(run.rowsWritten)} (the same events close ${fmt(run.rowsExpected)})`,
        );
      for (const c of r.ceilings)
        console.error(
          `stored ${c.stored}: processor rows/s / batched ceiling rows/s = ${(c.ratio * 100).toFixed(0)}% (goal >= 70%); ` +
            `each ceiling wrote ${fmt(c.batched.rows)} rows and ${fmt(c.batched.deviceUpdates)} device-list updates`,
        );
      console.error(
        `windows closed for these events: ${JSON.stringify(r.windows)}; late events in them: ${fmt(r.inputLate)}`,
      );
      return r;
    }
    case 'cluster': {
      const r = await benchCluster(
        quick ? { eventsPerSec: 2000, phaseSeconds: 8, drainDevices: 2000, drainSeconds: 10 } : {},
      );
      console.table(
        r.phases.map((p) => ({
          phase: p.name,
          seconds: p.seconds,
          'accepted/s': fmt(p.acceptedPerSec),
          'p50 / p99 / max ms': `${fmt(p.latencyMs.p50)} / ${fmt(p.latencyMs.p99)} / ${fmt(p.latencyMs.max)}`,
          'refused, sent again': p.refused,
        })),
      );
      console.error(
        `offered ${fmt(r.offeredPerSec)} events/s; accepted ${fmt(r.accepted)}, lost ${r.lost}, late for 1 s ${fmt(r.lateFor1s)}, devices with wrong 1 s windows ${r.wrongDevices}; end delay ${r.endDelayMs === null ? 'timeout' : `${fmt(r.endDelayMs)} ms`}; broker back in ${fmt(r.nodeBackMs.broker)} ms, Cassandra node in ${fmt(r.nodeBackMs.cassandra)} ms; load average ${r.loadAverage.join(' ')}`,
      );
      console.table(
        r.drains.map((d) => ({
          instances: d.instances,
          events: fmt(d.events),
          seconds: d.seconds,
          'events/s': fmt(d.eventsPerSec),
        })),
      );
      return r;
    }
    case 'fleet': {
      const r = await benchFleet(
        quick
          ? {
              scenario: [
                { hz: 5, seconds: 10 },
                { hz: 1, seconds: 10 },
              ],
              stepSeconds: 10,
              drainTimeoutMs: 180_000,
            }
          : {},
      );
      const delay = (x: number | null) => (x === null ? 'timeout' : fmt(x / 1000, 1));
      for (const run of r.runs) {
        const row = (p: FleetPhase) => ({
          'offered/s': fmt(p.offeredPerSec),
          'accepted/s': fmt(p.acceptedPerSec),
          'processor events/s': fmt(p.processorEventsPerSec),
          'events behind end/max': `${fmt(p.lagAtEnd)} / ${fmt(p.lagMax)}`,
          late: fmt(p.late),
          'flush ms (> 1 s)': `${fmt(p.flushMeanMs)} (${fmt(p.slowFlushes)})`,
          'p99 ms': fmt(p.latencyMs.p99),
          cores: Object.entries(p.cores)
            .map(([k, v]) => `${k} ${v.toFixed(2)}`)
            .join(', '),
        });
        const table: Record<string, Record<string, string>> = {};
        for (const p of run.scenario.phases) table[`${r.devices} x ${p.hz} Hz, ${p.seconds} s`] = row(p);
        for (const s of run.steps)
          table[`step ${fmt(s.eventsPerSec)}/s${s.sustained ? '' : ' (not sustained)'}`] = {
            ...row(s.phase),
            'end delay s': `${delay(s.endDelay.committedMs)} / ${delay(s.endDelay.windowsMs)}`,
          };
        console.error(`\nfleet, stored ${run.stored}:`);
        console.table(table);
        console.error(
          `end of sending -> committed at the end ${delay(run.scenario.endDelay.committedMs)} s, last ${run.scenario.endDelay.resolution} windows in Cassandra ${delay(run.scenario.endDelay.windowsMs)} s; ` +
            `highest sustained ${run.highestSustained === null ? 'none' : fmt(run.highestSustained)} events/s; ` +
            `peak RSS processor ${fmt(run.peakRssMb.processor)} MB, ingestion ${fmt(run.peakRssMb.ingestion)} MB; ` +
            `late events ${fmt(run.processor.late)} (the records themselves imply ${fmt(run.processor.inputLate)})`,
        );
      }
      return r;
    }
    case 'million': {
      const r = await benchMillion(quick ? { devices: 100_000 } : {});
      const c = r.consume;
      console.table({
        [`${fmt(r.devices)} devices once, then ${fmt(r.active)} for 60 s`]: {
          'to caught up s': fmt(c.seconds, 1),
          'events/s': fmt(c.eventsPerSec),
          'longest gap commits / reads s': `${fmt(c.longestCommitGapSeconds, 1)} / ${fmt(c.longestReadGapSeconds, 1)}`,
          'peak RSS MB': fmt(c.peakRssMb),
          'resident / evicted': `${fmt(c.state.residentDevices)} / ${fmt(c.state.evicted)}`,
          'lookups found / not': `${fmt(c.state.lookups.true ?? 0)} / ${fmt(c.state.lookups.false ?? 0)}`,
        },
        ...Object.fromEntries(
          r.restarts.map((x) => [
            `restart after ${x.signal} (backlog ${fmt(x.backlogEvents)} events)`,
            {
              'to caught up s': `${fmt(x.toConsumingSeconds, 1)} to reading, ${fmt(x.toCaughtUpSeconds, 1)} to caught up`,
              'events/s': '',
              'longest gap commits / reads s': '',
              'peak RSS MB': fmt(x.peakRssMb),
              'resident / evicted': `${fmt(x.state.residentDevices)} / ${fmt(x.state.evicted)}`,
              'lookups found / not': `${fmt(x.state.lookups.true ?? 0)} / ${fmt(x.state.lookups.false ?? 0)}`,
            },
          ]),
        ),
      });
      console.error(
        `peak RSS goal <= 1,024 MB: ${c.peakRssMb <= 1024 ? 'met' : 'not met'}; late events: first run ${fmt(c.state.late)}, after restarts ${r.restarts.map((x) => fmt(x.state.late)).join(', ')} (the records imply ${fmt(r.inputLate)})`,
      );
      return r;
    }
    case 'mqtt': {
      const r = await benchMqtt(given(door, quick ? 3 : undefined));
      console.table(
        r.rows.map((d) => ({
          door: d.door,
          batches: d.batches,
          'events/s': fmt(d.eventsPerSec),
          'p50 ms': fmt(d.p50Ms, 1),
          'p99 ms': fmt(d.p99Ms, 1),
          failures: d.failures,
          'ingestion CPU µs/event': fmt(d.ingestionCpuUsPerEvent, 1),
          'load CPU µs/event': fmt(d.loadCpuUsPerEvent, 1),
        })),
      );
      console.error(`ingestion peak RSS ${fmt(r.peakRssMb)} MB`);
      return r;
    }
    case 'e2e': {
      const r = await benchE2e(quick ? { seconds: 15, backgroundDevices: 2000 } : {});
      const rows: Record<string, Record<string, string>> = {
        'event -> 1 s aggregate at a socket.io client (10 Hz probe)': {
          count: fmt(r.windows),
          'p50 ms': fmt(r.p50Ms),
          'p99 ms': fmt(r.p99Ms),
          'max ms': fmt(r.maxMs),
        },
      };
      for (const p of r.probes) {
        const hz = `${fmt(1000 / p.intervalMs)} Hz probe`;
        const row = (f: typeof p.provisional) => ({
          count: fmt(f.events),
          'p50 ms': fmt(f.p50Ms),
          'p99 ms': fmt(f.p99Ms),
          'max ms': fmt(f.maxMs),
        });
        rows[`${hz}: 202 -> provisional record produced (its Kafka timestamp)`] = row(p.provisionalProduced);
        rows[`${hz}: 202 -> read from metrics.live`] = row(p.provisionalOnTopic);
        rows[`${hz}: 202 -> provisional record at a socket.io client`] = row(p.provisional);
      }
      console.table(rows);
      console.error(
        `background: ${fmt(r.backgroundDevices)} devices at 1 Hz (goal: provisional p99 <= 300 ms at 10,000)`,
      );
      return r;
    }
    case 'scoring-drain': {
      const r = await benchScoringDrain(quick ? { devices: 100, rounds: 1 } : {});
      console.table(
        Object.fromEntries(
          r.runs.map((run, i) => [
            `run ${i + 1}: transactions ${run.transactions ? 'on' : 'off'}`,
            { records: fmt(run.records), seconds: fmt(run.seconds, 1), 'records/s': fmt(run.recordsPerSec) },
          ]),
        ),
      );
      console.error(
        `median records/s: transactional (exactly once) ${fmt(r.transactional)}, at least once ${fmt(r.atLeastOnce)} (${fmt((100 * r.transactional) / r.atLeastOnce)}%)`,
      );
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
          'service path scores/s': fmt(t.nodeSessionHost),
          'python scores/s': t.python === null ? 'n/a' : fmt(t.python),
          'service/python': t.ratio === null ? 'n/a' : fmt(t.ratio, 2),
          'node in-process scores/s': fmt(t.nodeInProcess),
        })),
      );
      console.error(
        `rename -> first score ms: ${r.swapToFirstScoreMs.map((x) => x.toFixed(0)).join(', ')}; loop lag p99 ms: in-process ${r.loopLag.inProcess.p99.toFixed(1)}, service ${r.loopLag.sessionHost.p99.toFixed(1)}; RSS after ${r.rss.swaps} swaps: in-process ${r.rss.inProcess.before.toFixed(0)} -> ${r.rss.inProcess.after.toFixed(0)} MiB, service ${r.rss.sessionHost.parentBefore.toFixed(0)} -> ${r.rss.sessionHost.parentAfter.toFixed(0)} MiB (child ${r.rss.sessionHost.childAfter.toFixed(0)} MiB)`,
      );
      return r;
    }
    case 'fleet-ui': {
      const r = await benchFleetUi(quick ? { seconds: 10, warmupSeconds: 5, idleSeconds: 5 } : {});
      const row = (p: typeof r.load) => ({
        frames: p.frames,
        'p50 ms': fmt(p.intervalMs.p50, 1),
        'p95 ms': fmt(p.intervalMs.p95, 1),
        'p99 ms': fmt(p.intervalMs.p99, 1),
        'max ms': fmt(p.intervalMs.max, 1),
        'busy ms/frame': fmt(p.busyMsPerFrame, 1),
        'script ms/frame': fmt(p.scriptMsPerFrame, 1),
        'long tasks': p.longTasks,
        'longest ms': fmt(p.longestTaskMs),
      });
      console.table({ [`${r.devices} devices x 1 Hz`]: row(r.load), 'load stopped': row(r.idle) });
      console.error(
        `heap ${r.heapUsedMiB} MiB used / ${r.heapTotalMiB} MiB; ${fmt(r.producedPerSec)} records/s produced, ${fmt(r.apiRecordsInPerSec)} read by the API, ~${fmt(r.recordsPerSecAtPage)} reaching the page; API CPU ${r.apiCpuPercent}%; load average ${r.loadAverage.join(' ')}`,
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
  const logs = keepServiceLogs();
  if (logs !== undefined) console.error(`the services' logs are kept in ${logs}`);
  process.exit(1);
});
