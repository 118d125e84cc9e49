import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { kafkaBrokers } from '@fleetpulse/compose';

/**
 * Ingestion as its own process, for tests that kill it (mqtt-crash) or measure its memory (hostile clients): the
 * built service (ingestion/dist), as users start it.
 */
const root = join(__dirname, '..', '..', '..');
const children = new Set<ChildProcess>();

/** Brings ingestion/dist up to date (incremental, quick when it is). */
export async function buildIngestion(): Promise<void> {
  const tsc = spawn(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-b', 'ingestion'], {
    cwd: root,
    stdio: 'inherit',
  });
  const [code] = (await once(tsc, 'exit')) as [number | null];
  if (code !== 0) throw new Error(`tsc -b ingestion exited with ${code}`);
}

export async function freePort(): Promise<number> {
  const server = createServer().listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  await new Promise((r) => server.close(r));
  return port;
}

export async function waitFor(cond: () => boolean, timeoutMs: number, what: () => string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(what());
    await new Promise((r) => setTimeout(r, 50));
  }
}

export interface IngestionChild {
  child: ChildProcess;
  /** Its stdout and stderr so far. */
  output: () => string;
  /** The HTTP port it bound. */
  httpPort: number;
}

/**
 * Starts ingestion/dist/main.js in development on the loopback address, MQTT on `mqttPort`, with `env` on top;
 * `preload`: a module to load first (`node -r`). Resolves once both doors listen.
 */
export async function startIngestionChild(
  mqttPort: number,
  env: Record<string, string> = {},
  preload?: string,
): Promise<IngestionChild> {
  const args = [...(preload === undefined ? [] : ['-r', preload]), join(root, 'ingestion', 'dist', 'main.js')];
  const child = spawn(process.execPath, args, {
    env: {
      ...process.env,
      FLEETPULSE_ENV: 'development',
      FLEETPULSE_INGESTION_HOST: '127.0.0.1',
      FLEETPULSE_INGESTION_PORT: '0',
      FLEETPULSE_MQTT_PORT: String(mqttPort),
      FLEETPULSE_KAFKA_BROKERS: kafkaBrokers().join(','),
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(child);
  child.on('exit', () => children.delete(child));
  let output = '';
  child.stdout!.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
  await waitFor(
    () => output.includes('MQTT on'),
    30_000,
    () => `ingestion did not start:\n${output}`,
  );
  const httpPort = Number(/listening on http:\/\/[^:]+:(\d+)\//.exec(output)?.[1]);
  return { child, output: () => output, httpPort };
}

/** SIGKILLs every child still running (afterAll). */
export function killChildren(): void {
  for (const child of children) child.kill('SIGKILL');
}

/** Resident and peak resident memory of a process, MiB (Linux /proc/<pid>/status). */
export function memoryOf(pid: number): { rssMb: number; hwmMb: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (field: string) => Number(new RegExp(`${field}:\\s+(\\d+)`).exec(status)?.[1] ?? 0);
  return { rssMb: kb('VmRSS') / 1024, hwmMb: kb('VmHWM') / 1024 };
}
