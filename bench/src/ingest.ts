import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { kafkaBrokers, loadStackConfig, stackUp, stderrLogger } from '@fleetpulse/compose';
import { kafkaDeps, resolveClasspath } from '@fleetpulse/compose/java';
import { parseTelemetry } from '@fleetpulse/native';
import { benchPayloads } from './parse';
import {
  freePort,
  cpuSeconds,
  memoryMb,
  runScript,
  startService,
  waitReady,
  withBenchTopic,
  type ServiceProcess,
} from './services';

/**
 * Which ingestion build the door suites run, so that two builds can be measured side by side by the same bench
 * (e.g. git HEAD's, built in a copy of its own, against the working tree's).
 */
export interface IngestionTarget {
  /** [ingestion/dist/main.js of this repo] - the ingestion entry point to run. */
  script?: string;
  /** Node options for its process (e.g. `--cpu-prof`). */
  nodeArgs?: string[];
}

/** The ingestion service as users run it (development tokens), from `target`'s build, its MQTT door off unless given. */
export async function startIngestionTarget(
  name: string,
  target: IngestionTarget,
  options: { topic: string; port?: number; mqttPort?: number },
): Promise<ServiceProcess> {
  const port = options.port ?? (await freePort());
  return startService(
    name,
    target.script ?? join(__dirname, '..', '..', 'ingestion', 'dist', 'main.js'),
    {
      FLEETPULSE_ENV: 'development',
      FLEETPULSE_INGESTION_HOST: '127.0.0.1',
      FLEETPULSE_INGESTION_PORT: String(port),
      FLEETPULSE_INGESTION_TOPIC: options.topic,
      FLEETPULSE_MQTT_PORT: options.mqttPort === undefined ? 'off' : String(options.mqttPort),
      FLEETPULSE_KAFKA_BROKERS: kafkaBrokers().join(','),
      // The door's throughput is what these suites measure: the dev token's default limit (1,000,000 events/s,
      // which the 500-event runs now pass) would answer 429 instead, and only 202s are counted.
      FLEETPULSE_TOKEN_EVENTS_PER_SECOND: '0',
    },
    port,
    target.nodeArgs ?? [],
  );
}

export interface BenchIngestOptions {
  /** [seconds=20] - measured load duration. */
  seconds?: number;
  /** [connections=32] - concurrent HTTP connections of the load generator. */
  connections?: number;
  /** [batchSize=500] - events per request. */
  batchSize?: number;
  /** [port=18080] */
  port?: number;
  /** [this repo's build] */
  target?: IngestionTarget;
}

export interface BenchIngestResult {
  service: {
    eventsPerSec: number;
    requestsPerSec: number;
    p50Ms: number;
    p99Ms: number;
    status: Record<string, number>;
    peakRssMb: number;
    seconds: number;
    /**
     * CPU (user + system) per accepted event, µs, of the ingestion process and of the load process during the
     * timed run: on a shared 2-core machine, what each costs per event whatever the load from elsewhere.
     */
    ingestionCpuUsPerEvent: number;
    loadCpuUsPerEvent: number;
  };
  /** Kafka's own ProducerPerformance with the same record values, acks=all, idempotent. */
  ceiling: {
    recordsPerSec: number;
    mbPerSec: number;
    eventsPerRecord: number;
    eventsPerSec: number;
    avgLatencyMs: number;
  };
  ratio: number;
}

/**
 * The ingestion service as a whole, as its own process: a load generator (another process) posts batches of
 * `batchSize` events over keep-alive HTTP; every 202 means Kafka acknowledged from all in-sync replicas. Then the
 * broker's ceiling for the same records: Kafka's ProducerPerformance replays the record values ingestion produced.
 */
export async function benchIngest(opts: BenchIngestOptions = {}): Promise<BenchIngestResult> {
  await stackUp({ log: stderrLogger });
  return withBenchTopic('ingest', (topic) => measureIngest(topic, opts));
}

async function measureIngest(topic: string, opts: BenchIngestOptions): Promise<BenchIngestResult> {
  const seconds = opts.seconds ?? 20;
  const connections = opts.connections ?? 32;
  const batchSize = opts.batchSize ?? 500;
  const port = opts.port ?? 18080;
  const dir = mkdtempSync(join(tmpdir(), 'fleetpulse-bench-'));
  const bodies = benchPayloads(batchSize, 64, 'json', Date.now() + 30_000);
  const bodiesFile = join(dir, 'bodies.json');
  writeFileSync(
    bodiesFile,
    JSON.stringify({
      bodies: bodies.map((b) => b.toString('base64')),
      contentType: 'application/json',
      eventsPerBody: batchSize,
    }),
  );

  const ingestion = await startIngestionTarget('ingestion', opts.target ?? {}, { port, topic });
  let peakRss = 0;
  const sampler = setInterval(() => (peakRss = Math.max(peakRss, memoryMb(ingestion.pid).rss)), 100);
  try {
    await waitReady(ingestion, 30_000);
    const worker = join(__dirname, 'load-worker.js');
    const url = `http://127.0.0.1:${port}/v1/telemetry`;
    await runScript(worker, [url, 'dev-token', bodiesFile, String(connections), '3'], {}, true); // warm-up
    const cpuBefore = cpuSeconds(ingestion.pid);
    const report = JSON.parse(
      await runScript(worker, [url, 'dev-token', bodiesFile, String(connections), String(seconds)], {}, true),
    ) as {
      requests: number;
      status: Record<string, number>;
      eventsAccepted: number;
      seconds: number;
      cpuSeconds: number;
      latencyMs: { p50: number; p99: number };
    };
    const ingestionCpu = cpuSeconds(ingestion.pid) - cpuBefore;
    peakRss = Math.max(peakRss, memoryMb(ingestion.pid).hwm);
    const service = {
      eventsPerSec: report.eventsAccepted / report.seconds,
      requestsPerSec: report.requests / report.seconds,
      p50Ms: report.latencyMs.p50,
      p99Ms: report.latencyMs.p99,
      status: report.status,
      peakRssMb: peakRss,
      seconds: report.seconds,
      ingestionCpuUsPerEvent: (ingestionCpu / report.eventsAccepted) * 1e6,
      loadCpuUsPerEvent: (report.cpuSeconds / report.eventsAccepted) * 1e6,
    };
    const ceiling = await kafkaCeiling(
      bodies,
      dir,
      Math.max(200_000, Math.round((service.eventsPerSec * seconds) / batchSize) * 10),
    );
    return { service, ceiling, ratio: service.eventsPerSec / ceiling.eventsPerSec };
  } finally {
    clearInterval(sampler);
    await ingestion.stop();
  }
}

/** ProducerPerformance (kafka-tools) with ingestion's own record values for these bodies, to a fresh topic. */
async function kafkaCeiling(bodies: Buffer[], dir: string, numRecords: number): Promise<BenchIngestResult['ceiling']> {
  const now = Date.now();
  const values: string[] = [];
  let events = 0;
  for (const body of bodies) {
    const r = parseTelemetry(body, {
      contentType: 'json',
      receivedAt: now,
      nowMs: now,
      maxFutureMs: 3_600_000,
      maxPastMs: 3_600_000,
      maxEvents: 100_000,
      groupByDevice: true,
    });
    let start = 0;
    for (let i = 0; i < r.keys.length; i++) {
      values.push(r.values.subarray(start, r.valueEnds[i]).toString());
      start = r.valueEnds[i]!;
    }
    events += r.accepted;
  }
  const eventsPerRecord = events / values.length;
  const payloadFile = join(dir, 'payloads.txt');
  writeFileSync(payloadFile, values.join('\n'));
  const config = loadStackConfig();
  const deps = [
    ...kafkaDeps(config.kafka.version),
    { groupId: 'org.apache.kafka', artifactId: 'kafka-tools', version: config.kafka.version },
  ];
  const classpath = await resolveClasspath(config, 'kafka-tools', deps, stderrLogger);
  const out = await withBenchTopic(
    'ceiling',
    (topic) =>
      new Promise<string>((resolve, reject) => {
        const child = spawn(
          config.java,
          [
            '-Xmx512m',
            '-cp',
            classpath.join(':'),
            'org.apache.kafka.tools.ProducerPerformance',
            '--topic',
            topic,
            '--num-records',
            String(numRecords),
            '--throughput',
            '-1',
            '--payload-file',
            payloadFile,
            '--producer-props',
            `bootstrap.servers=${kafkaBrokers().join(',')}`,
            'acks=all',
            'enable.idempotence=true',
            'linger.ms=5',
            'batch.size=262144',
            'max.request.size=16777216',
          ],
          { stdio: ['ignore', 'pipe', 'pipe'] },
        );
        let text = '';
        child.stdout.on('data', (d: Buffer) => (text += d.toString()));
        child.stderr.on('data', (d: Buffer) => (text += d.toString()));
        child.on('exit', (code) =>
          code === 0 ? resolve(text) : reject(new Error(`ProducerPerformance exited ${code}:\n${text.slice(-2000)}`)),
        );
      }),
  );
  // Last line: "N records sent, X records/sec (Y MB/sec), Z ms avg latency, ..."
  const m = /(\d+) records sent, ([\d.]+) records\/sec \(([\d.]+) MB\/sec\), ([\d.]+) ms avg latency/.exec(out);
  if (!m) throw new Error(`cannot read ProducerPerformance's summary:\n${out.slice(-2000)}`);
  const recordsPerSec = Number(m[2]);
  return {
    recordsPerSec,
    mbPerSec: Number(m[3]),
    eventsPerRecord,
    eventsPerSec: recordsPerSec * eventsPerRecord,
    avgLatencyMs: Number(m[4]),
  };
}
