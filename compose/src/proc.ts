import { spawn, spawnSync } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';

/** What we write next to each process we start, so `down` can stop exactly that process and nothing else. */
export interface PidFile {
  pid: number;
  /** A string that must appear in the process's command line: guards against a recycled pid. */
  marker: string;
  startedAt: string;
  port?: number;
}

export function readPidFile(path: string): PidFile | undefined {
  try {
    const v = JSON.parse(readFileSync(path, 'utf8')) as Partial<PidFile>;
    if (typeof v.pid === 'number' && typeof v.marker === 'string') return v as PidFile;
  } catch {
    // missing or unreadable: treated as "nothing of ours runs"
  }
  return undefined;
}

export function writePidFile(path: string, v: PidFile): void {
  writeFileSync(path, `${JSON.stringify(v, null, 2)}\n`);
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return !isZombie(pid);
  } catch (e) {
    // EPERM: it exists but belongs to someone else.
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function isZombie(pid: number): boolean {
  try {
    // Field 3 of /proc/<pid>/stat is the state; Z = exited but not yet reaped by its parent.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z');
  } catch {
    return false;
  }
}

export function commandLine(pid: number): string | undefined {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ');
  } catch {
    // No /proc (macOS): ask ps.
    const r = spawnSync('ps', ['-o', 'command=', '-p', String(pid)], { encoding: 'utf8' });
    return r.status === 0 ? r.stdout.trim() : undefined;
  }
}

/** The process recorded in the pid file, if it still runs and is still ours; else undefined. */
export function livePid(pidFile: string): PidFile | undefined {
  const v = readPidFile(pidFile);
  if (!v || !isAlive(v.pid)) return undefined;
  return commandLine(v.pid)?.includes(v.marker) ? v : undefined;
}

/**
 * Starts a process in its own session, output appended to `logFile`, so it outlives the CLI that started it.
 * The previous log is kept as `<logFile>.1`.
 */
export function spawnDetached(
  command: string,
  args: string[],
  opts: { cwd: string; logFile: string; env?: NodeJS.ProcessEnv },
): number {
  if (existsSync(opts.logFile)) renameSync(opts.logFile, `${opts.logFile}.1`);
  const fd = openSync(opts.logFile, 'a');
  try {
    const child = spawn(command, args, {
      cwd: opts.cwd,
      detached: true,
      stdio: ['ignore', fd, fd],
      env: opts.env ?? process.env,
    });
    // spawn reports ENOENT asynchronously; the caller has checked the binary before, and a pid-less child is caught here.
    child.on('error', () => undefined);
    child.unref();
    if (child.pid === undefined) throw new Error(`could not start ${command}`);
    return child.pid;
  } finally {
    closeSync(fd);
  }
}

/**
 * SIGTERM, wait up to `graceMs`, then SIGKILL and wait until it is gone. Resolves to how it ended.
 */
export async function stopPid(pid: number, graceMs: number): Promise<'not-running' | 'terminated' | 'killed'> {
  if (!isAlive(pid)) return 'not-running';
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return 'not-running';
  }
  const deadline = Date.now() + graceMs;
  while (Date.now() < deadline) {
    if (!isAlive(pid)) return 'terminated';
    await sleep(200);
  }
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    return 'terminated';
  }
  // SIGKILL cannot be ignored; this only waits for the kernel to reap it.
  for (let i = 0; i < 100 && isAlive(pid); i++) await sleep(100);
  return 'killed';
}

export function removeFile(path: string): void {
  rmSync(path, { force: true });
}

/** The last `n` lines of a log file, for error messages; empty when it does not exist. */
export function tail(path: string, n = 20): string {
  try {
    const lines = readFileSync(path, 'utf8').split('\n');
    if (lines.at(-1) === '') lines.pop();
    return lines.slice(-n).join('\n');
  } catch {
    return '';
  }
}
