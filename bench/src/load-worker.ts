/**
 * HTTP load generator for the ingestion benchmark, run as its own process so that it does not share an event loop
 * (or a CPU profile) with the service it measures. Each of `connections` loops posts bodies from a pre-encoded
 * pool over a keep-alive connection, back to back, for `seconds`; it reports JSON on stdout.
 *
 * Usage: node bench/dist/load-worker.js <url> <token> <bodies.ndjson-list.json> <connections> <seconds>
 */
import { readFileSync } from 'node:fs';
import { Agent } from 'node:http';
import { sleep } from '@fleetpulse/runtime';
import { postTelemetry } from './ingest-post';
import { quantile } from './quantile';

interface LoadReport {
  requests: number;
  ok: number;
  status: Record<string, number>;
  eventsAccepted: number;
  seconds: number;
  /** CPU seconds (user + system) this load process used while it ran: what the load itself costs the machine. */
  cpuSeconds: number;
  latencyMs: { p50: number; p90: number; p99: number; max: number };
}

async function main(): Promise<void> {
  const [url, token, bodiesFile, connectionsArg, secondsArg] = process.argv.slice(2);
  if (!url || !token || !bodiesFile)
    throw new Error('usage: load-worker <url> <token> <bodies.json> <connections> <seconds>');
  const {
    bodies: encoded,
    contentType,
    eventsPerBody,
  } = JSON.parse(readFileSync(bodiesFile, 'utf8')) as {
    bodies: string[];
    contentType: string;
    eventsPerBody: number;
  };
  const bodies = encoded.map((b) => Buffer.from(b, 'base64'));
  const connections = Number(connectionsArg ?? 16);
  const seconds = Number(secondsArg ?? 10);
  const target = new URL(url);
  const agent = new Agent({ keepAlive: true, maxSockets: connections });
  const latencies: number[] = [];
  const status: Record<string, number> = {};
  let requests = 0;
  let ok = 0;
  let eventsAccepted = 0;
  const started = performance.now();
  const cpuAtStart = process.cpuUsage();
  const deadline = started + seconds * 1000;

  let next = 0;
  const loop = async () => {
    while (performance.now() < deadline) {
      const body = bodies[next++ % bodies.length]!;
      const t0 = performance.now();
      const { code, accepted } = await postTelemetry(agent, target, token, contentType, body);
      latencies.push(performance.now() - t0);
      requests++;
      status[code] = (status[code] ?? 0) + 1;
      if (code === 202) {
        ok++;
        eventsAccepted += accepted;
      } else if (code === 503) await sleep(50);
    }
  };
  await Promise.all(Array.from({ length: connections }, loop));
  const elapsed = (performance.now() - started) / 1000;
  const cpu = process.cpuUsage(cpuAtStart);
  const sorted = Float64Array.from(latencies).sort();
  const report: LoadReport = {
    requests,
    ok,
    status,
    eventsAccepted,
    seconds: elapsed,
    cpuSeconds: (cpu.user + cpu.system) / 1e6,
    latencyMs: {
      p50: quantile(sorted, 0.5),
      p90: quantile(sorted, 0.9),
      p99: quantile(sorted, 0.99),
      max: quantile(sorted, 1),
    },
  };
  void eventsPerBody;
  process.stdout.write(JSON.stringify(report) + '\n');
  agent.destroy();
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
