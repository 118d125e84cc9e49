import { spawn } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadStackConfig } from './config';
import { StackError } from './errors';
import { silentLogger } from './log';
import { isPortOpen } from './ports';
import { isAlive, livePid, stopPid, writePidFile } from './proc';
import { stackDown, stackUp } from './stack';

// Every case here must fail before anything is started: none of them may leave a JVM behind.

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'fp-compose-test-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

function listen(server: Server): Promise<number> {
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () => resolve((server.address() as { port: number }).port)),
  );
}

/** Ports that are free right now (listen on 0, note the port, close). */
async function freePorts(n: number): Promise<number[]> {
  const servers = Array.from({ length: n }, () => createServer());
  const ports = await Promise.all(servers.map(listen));
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  return ports;
}

async function configWith(env: Record<string, string> = {}) {
  const [k, kc, c, cs] = await freePorts(4);
  return loadStackConfig({
    FLEETPULSE_STACK_DIR: join(dir, 'stack'),
    FLEETPULSE_M2: join(dir, 'm2'),
    FLEETPULSE_KAFKA_PORT: String(k),
    FLEETPULSE_KAFKA_CONTROLLER_PORT: String(kc),
    FLEETPULSE_CASSANDRA_PORT: String(c),
    FLEETPULSE_CASSANDRA_STORAGE_PORT: String(cs),
    ...env,
  });
}

async function upError(env: Record<string, string>, config?: ReturnType<typeof loadStackConfig>): Promise<StackError> {
  const error: unknown = await stackUp({ config: config ?? (await configWith(env)), log: silentLogger }).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(StackError);
  return error as StackError;
}

describe('stackUp refuses a bad environment with one clear message', () => {
  it('no java', async () => {
    const e = await upError({ FLEETPULSE_JAVA: join(dir, 'no-such-java') });
    expect(e.message).toMatch(/Java not found/);
    expect(e.hint).toMatch(/JAVA_HOME|FLEETPULSE_JAVA/);
  });

  it('a Java older than 17', async () => {
    const fake = join(dir, 'java');
    writeFileSync(fake, '#!/bin/sh\necho \'openjdk version "11.0.22" 2024-01-16\' >&2\n');
    chmodSync(fake, 0o755);
    const e = await upError({ FLEETPULSE_JAVA: fake });
    expect(e.message).toMatch(/Java 11 found.*need Java 17/);
  });

  it('no Maven (and nothing cached)', async () => {
    const e = await upError({ FLEETPULSE_MVN: join(dir, 'no-such-mvn') });
    expect(e.message).toMatch(/Maven not found/);
    expect(e.hint).toMatch(/FLEETPULSE_MVN/);
  });

  it('the Kafka port taken by something that is not Kafka', async () => {
    // Accepts connections and never answers, as a stuck or foreign service would.
    const server = createServer((socket) => socket.on('error', () => undefined));
    const port = await listen(server);
    try {
      const e = await upError({}, await configWith({ FLEETPULSE_KAFKA_PORT: String(port) }));
      expect(e.message).toBe(`port ${port} is taken by a process that is not Kafka`);
      expect(e.hint).toContain('FLEETPULSE_KAFKA_PORT');
    } finally {
      server.close();
    }
  });

  it('the Cassandra storage port taken', async () => {
    const server = createServer((socket) => socket.destroy());
    const port = await listen(server);
    try {
      const e = await upError({}, await configWith({ FLEETPULSE_CASSANDRA_STORAGE_PORT: String(port) }));
      expect(e.message).toMatch(new RegExp(`port ${port} \\(Cassandra storage\\) is taken`));
      expect(e.hint).toContain('FLEETPULSE_CASSANDRA_STORAGE_PORT');
    } finally {
      server.close();
    }
  });

  it('a Kafka data folder with garbage in meta.properties', async () => {
    const config = await configWith();
    mkdirSync(join(config.stackDir, 'kafka', 'data'), { recursive: true });
    writeFileSync(join(config.stackDir, 'kafka', 'data', 'meta.properties'), '\u0000\u0001garbage');
    const e = await upError({}, config);
    expect(e.message).toMatch(/Kafka data folder .* is corrupt: meta.properties has no valid cluster.id/);
    expect(e.hint).toContain('npm run stack -- down --wipe');
  });

  it('a Kafka data folder of another cluster', async () => {
    const config = await configWith();
    const kafkaDir = join(config.stackDir, 'kafka');
    mkdirSync(join(kafkaDir, 'data'), { recursive: true });
    writeFileSync(
      join(kafkaDir, 'data', 'meta.properties'),
      'version=1\nnode.id=1\ncluster.id=AAAAAAAAAAAAAAAAAAAAAA\n',
    );
    writeFileSync(join(kafkaDir, 'cluster.id'), 'BBBBBBBBBBBBBBBBBBBBBB\n');
    const e = await upError({}, config);
    expect(e.message).toMatch(
      /belongs to cluster AAAAAAAAAAAAAAAAAAAAAA but this stack was formatted as cluster BBBBBBBBBBBBBBBBBBBBBB/,
    );
  });
});

describe('ports and processes', () => {
  it('isPortOpen tells a listening port from a free one', async () => {
    const server = createServer();
    const port = await listen(server);
    expect(await isPortOpen(port)).toBe(true);
    await new Promise((r) => server.close(r));
    expect(await isPortOpen(port)).toBe(false);
  });

  it('stopPid kills what ignores SIGTERM', async () => {
    const child = spawn(
      process.execPath,
      ['-e', "process.on('SIGTERM', () => {}); console.log('up'); setInterval(() => {}, 1000)"],
      { stdio: ['ignore', 'pipe', 'ignore'] },
    );
    await new Promise((r) => child.stdout.once('data', r));
    expect(await stopPid(child.pid!, 300)).toBe('killed');
    expect(isAlive(child.pid!)).toBe(false);
  });

  it('a pid file only counts while its process still has our marker', () => {
    const pidFile = join(dir, 'x.pid');
    writePidFile(pidFile, { pid: process.pid, marker: 'jest', startedAt: '' });
    expect(livePid(pidFile)?.pid).toBe(process.pid);
    writePidFile(pidFile, { pid: process.pid, marker: '-Dfleetpulse.stack=not-this-process', startedAt: '' });
    expect(livePid(pidFile)).toBeUndefined();
  });

  it('stackDown with nothing running is a no-op, twice', async () => {
    const config = await configWith();
    expect(await stackDown({ config, log: silentLogger })).toEqual({ kafka: 'not-running', cassandra: 'not-running' });
    expect(await stackDown({ config, log: silentLogger, wipe: true })).toEqual({
      kafka: 'not-running',
      cassandra: 'not-running',
    });
  });
});
