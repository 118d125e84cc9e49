import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { DevToken } from '@fleetpulse/contracts';
import { loadStackConfig, type StackConfig } from './config';
import { stderrLogger, type Logger } from './log';
import { livePid, removeFile, stopPid, writePidFile } from './proc';
import { dashboardUrl, entryOf, isBuilt, services, type ServiceSpec } from './services';
import { servicesDir, stackDown, stackUp } from './stack';

const colors = [36, 33, 35, 32, 34, 91, 96];
const useColor = process.stdout.isTTY && !process.env.NO_COLOR;
const paint = (code: number, s: string): string => (useColor ? `\u001b[${code}m${s}\u001b[0m` : s);

/** Any HTTP answer counts: the point is that the service listens, not what its health says. */
async function answers(url: string): Promise<boolean> {
  try {
    await fetch(url, { signal: AbortSignal.timeout(2000) });
    return true;
  } catch {
    return false;
  }
}

interface Running {
  spec: ServiceSpec;
  child: ChildProcess;
  pidFile: string;
  exited: Promise<void>;
  /** Set on the first readiness wait, so the wait (and its log line) happens once. */
  ready?: Promise<void>;
}

function launch(spec: ServiceSpec, index: number, env: Record<string, string>, pidDir: string): Running {
  const entry = entryOf(spec);
  const child = spawn(process.execPath, [entry, ...spec.args], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const prefix = paint(colors[index % colors.length]!, `[${spec.name}]`);
  for (const stream of [child.stdout, child.stderr]) {
    if (stream) createInterface({ input: stream }).on('line', (line) => process.stdout.write(`${prefix} ${line}\n`));
  }
  const pidFile = join(pidDir, `${spec.name}.pid`);
  if (child.pid !== undefined)
    writePidFile(pidFile, { pid: child.pid, marker: entry, startedAt: new Date().toISOString() });
  const exited = new Promise<void>((resolve) => {
    child.once('exit', () => resolve());
    child.once('error', () => resolve());
  });
  return { spec, child, pidFile, exited };
}

function waitForService(r: Running, log: Logger, signal: AbortSignal): Promise<void> {
  r.ready ??= pollService(r, log, signal);
  return r.ready;
}

async function pollService(r: Running, log: Logger, signal: AbortSignal): Promise<void> {
  const url = r.spec.readyUrl;
  if (!url) return;
  const deadline = Date.now() + 60_000;
  let gone = false;
  void r.exited.then(() => (gone = true));
  while (!signal.aborted && !gone && Date.now() < deadline) {
    if (await answers(url)) {
      log(`${r.spec.name} ready at ${url}`);
      return;
    }
    await sleep(500);
  }
  if (!signal.aborted && !gone)
    log(`${r.spec.name} did not answer on ${url} within 60 s; its log lines above may say why`);
}

/**
 * `npm start`: the stack (started or reused), then every built service, with one combined log. Resolves with the exit
 * code once Ctrl-C / SIGTERM has stopped the services and the parts of the stack this run started.
 */
export async function runStart(log: Logger = stderrLogger, config: StackConfig = loadStackConfig()): Promise<number> {
  const controller = new AbortController();
  let stopRequested: () => void = () => undefined;
  const stop = new Promise<void>((resolve) => (stopRequested = resolve));
  const onSignal = (sig: NodeJS.Signals): void => {
    if (controller.signal.aborted) {
      log(`${sig} again: still stopping, please wait`);
      return;
    }
    log(`${sig}: stopping`);
    controller.abort();
    stopRequested();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const running: Running[] = [];
  let started: ('kafka' | 'cassandra')[] = [];
  try {
    let up;
    try {
      up = await stackUp({ config, log, signal: controller.signal });
    } catch (e) {
      if (controller.signal.aborted) return 130;
      throw e;
    }
    started = up.started;
    const pidDir = servicesDir(config);
    mkdirSync(pidDir, { recursive: true });
    const ctx = { brokers: up.brokers, contactPoint: up.contactPoints.join(','), stackDir: config.stackDir };
    for (const [i, spec] of services.entries()) {
      if (controller.signal.aborted) break;
      if (!isBuilt(spec)) {
        log(`skipping ${spec.name}: ${entryOf(spec)} is not built (yet)`);
        continue;
      }
      const other = livePid(join(pidDir, `${spec.name}.pid`));
      if (other) {
        log(`${spec.name} already runs (pid ${other.pid}, from another \`npm start\`); not starting a second one`);
        continue;
      }
      if (spec.readyUrl && (await answers(spec.readyUrl))) {
        log(`${spec.name} already answers on ${spec.readyUrl} (another \`npm start\`?); not starting a second one`);
        continue;
      }
      if (spec.afterReady) await Promise.all(running.map((r) => waitForService(r, log, controller.signal)));
      const r = launch(spec, i, spec.env(ctx), pidDir);
      running.push(r);
      void r.exited.then(() => {
        removeFile(r.pidFile);
        if (!controller.signal.aborted)
          log(`${spec.name} exited (code ${r.child.exitCode ?? r.child.signalCode}); the others keep running`);
      });
    }
    await Promise.all(running.map((r) => waitForService(r, log, controller.signal)));
    if (!controller.signal.aborted) {
      log(
        `stack: Kafka ${up.brokers.join(',')} (${up.kafka.state}), Cassandra ${up.contactPoints.join(',')} (${up.cassandra.state})`,
      );
      log(`services: ${running.map((r) => r.spec.name).join(', ') || 'none built yet (run `npm run build`)'}`);
      log(
        `dashboard: ${dashboardUrl} (sign in with ${DevToken})   ingestion dev token: ${DevToken}   (Ctrl-C stops everything started here)`,
      );
    }
    await stop;
    return 0;
  } finally {
    // One at a time, in reverse start order: the simulator hands its last events to a still-running ingestion,
    // which drains into a still-running Kafka, before the processors stop.
    for (const r of running.reverse()) {
      if (r.child.pid !== undefined) await stopPid(r.child.pid, 10_000);
      await r.exited;
      removeFile(r.pidFile);
    }
    if (started.length > 0) await stackDown({ config, log, only: started });
    else if (running.length > 0 || controller.signal.aborted)
      log('stack was reused; left running (`npm run stack -- down` stops it)');
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}
