/**
 * The service's side of the session host (session-host-child.ts): sessions by key in a child process, with
 * recycling. After `recycleAfterLoads` session creations (or when the child's RSS passes `recycleRssBytes`) a new
 * child is started, every live session is loaded into it, and only then does it take over; the old child finishes
 * what it has in flight and exits, taking whatever onnxruntime leaked with it. A child that dies is replaced the
 * same way; requests it had in flight fail with a retriable {@link HostError}.
 *
 * Which request killed it: the child runs `run` messages one at a time in the order they were sent, so when it dies
 * with runs unanswered (and no session being created, which could be the cause instead), the oldest of them is the
 * one it was running. That one fails with `crashedRunning` set, which the registry counts against the model (its
 * quarantine); the others fail only retriably. A child ended on purpose (drained, exit code 0) blames nothing.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { HostOptions, Request, Response, RunFailure, SessionInfo } from './session-protocol';

export class HostError extends Error {
  override readonly name = 'HostError';
  constructor(
    message: string,
    readonly retriable: boolean,
    /** The child died while running this very message: the model's own doing, most likely. */
    readonly crashedRunning = false,
  ) {
    super(message);
  }
}

export interface SessionHostOptions extends HostOptions {
  /** Start a fresh child after this many session creations in one. [50] */
  recycleAfterLoads?: number;
  /** ...or once the child's RSS passes this many bytes. [1 GiB] */
  recycleRssBytes?: number;
  log?: (line: string) => void;
}

/** One score per row (NaN in the rows of a failed run), and the runs that failed. */
export interface Scored {
  scores: Float32Array;
  failed: RunFailure[];
}

interface Pending {
  op: Request['op'];
  answer: (r: Response) => void;
}

/** The compiled child next to this file; from the TypeScript sources (jest), the built one in dist/. */
function childScript(): string {
  const here = join(__dirname, 'session-host-child.js');
  return existsSync(here) ? here : join(__dirname, '..', 'dist', 'session-host-child.js');
}
type Body<T> = T extends unknown ? Omit<T, 'id'> : never;

class Child {
  readonly proc: ChildProcess;
  readonly pending = new Map<number, Pending>();
  loads = 0;
  dead = false;
  private nextId = 1;

  constructor(opts: HostOptions, onExit: (c: Child, code: number | null) => void, onError: (e: Error) => void) {
    this.proc = fork(childScript(), [JSON.stringify(opts)], {
      serialization: 'advanced',
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    this.proc.on('message', (r: Response) => {
      const p = this.pending.get(r.id);
      this.pending.delete(r.id);
      p?.answer(r);
    });
    // Sends report their own failures (request); what lands here is the process's own trouble (a failed spawn or
    // disconnect). Logged: an 'error' event with no listener would end the service.
    this.proc.on('error', onError);
    // 'close', not 'exit': it comes after the IPC channel is drained, so an answer the child sent just before dying
    // is taken as answered and not blamed.
    this.proc.on('close', (code, signal) => {
      this.dead = true;
      const how = signal !== null ? `signal ${signal}` : `code ${code}`;
      const culprit = code === 0 ? undefined : this.running();
      for (const [id, p] of this.pending)
        p.answer(
          id === culprit
            ? { id, ok: false, error: `session host died running it (${how})`, crashedRunning: true }
            : { id, ok: false, error: `session host exited (${how})` },
        );
      this.pending.clear();
      onExit(this, code);
    });
  }

  /**
   * The run the child was on: the oldest unanswered `run` (runs go one at a time, in order); none while a session
   * is being created, which may as well be what killed it.
   */
  private running(): number | undefined {
    let oldest: number | undefined;
    for (const [id, p] of this.pending) {
      if (p.op === 'load') return undefined;
      if (p.op === 'run' && oldest === undefined) oldest = id;
    }
    return oldest;
  }

  request(body: Body<Request>): Promise<Response> {
    if (this.dead) return Promise.resolve({ id: 0, ok: false, error: 'session host is not running' });
    const id = this.nextId++;
    return new Promise((resolve) => {
      this.pending.set(id, { op: body.op, answer: resolve });
      // A child that just died (its exit not seen yet) fails the write (EPIPE): the request then fails retriably,
      // like those it had in flight, instead of an 'error' event.
      this.proc.send({ ...body, id } as Request, (e) => {
        if (!e || !this.pending.delete(id)) return;
        resolve({ id, ok: false, error: `session host is not running (${e.message})` });
      });
    });
  }

  async drainAndExit(): Promise<void> {
    while (this.pending.size > 0 && !this.dead) await new Promise((r) => setTimeout(r, 5));
    if (!this.dead) this.proc.disconnect();
  }
}

export class SessionHost {
  private child: Child;
  /** Live sessions' model bytes, to load them into a fresh child. */
  private readonly live = new Map<string, Uint8Array>();
  private mgmt: Promise<unknown> = Promise.resolve();
  private closing = false;
  private readonly recycleAfter: number;
  private readonly recycleRss: number;
  private readonly log: (line: string) => void;
  /** Children started (the first included). */
  generations = 1;

  constructor(private readonly opts: SessionHostOptions) {
    this.recycleAfter = opts.recycleAfterLoads ?? 50;
    this.recycleRss = opts.recycleRssBytes ?? 1024 ** 3;
    this.log = opts.log ?? (() => undefined);
    this.child = this.spawn();
  }

  private spawn(): Child {
    return new Child(
      { intraOpThreads: this.opts.intraOpThreads },
      (c, code) => {
        if (this.closing || c !== this.child) return;
        this.log(
          `session host exited unexpectedly (code ${code}); starting another and reloading ${this.live.size} session(s)`,
        );
        void this.serial(() => this.replaceChild('crash'));
      },
      (e) => this.log(`session host: ${e.message}`),
    );
  }

  /** Management operations (load, release, recycle) one at a time; runs do not wait for them. */
  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const p = this.mgmt.then(fn, fn);
    this.mgmt = p.catch(() => undefined);
    return p;
  }

  private async replaceChild(why: string): Promise<void> {
    const next = this.spawn();
    for (const [key, bytes] of this.live) {
      const r = await next.request({ op: 'load', key, bytes });
      if (!r.ok) this.log(`session host: reloading ${key} into a fresh host failed: ${r.error}`);
      next.loads++;
    }
    const old = this.child;
    this.child = next;
    this.generations++;
    this.log(`session host replaced (${why}); ${this.live.size} session(s) carried over`);
    void old.drainAndExit();
  }

  /** Creates a session; resolves with its inputs and outputs. The key must be new or released. */
  load(key: string, bytes: Uint8Array): Promise<SessionInfo> {
    return this.serial(async () => {
      const r = await this.child.request({ op: 'load', key, bytes });
      this.child.loads++;
      if (!r.ok) throw new HostError(r.error, false);
      this.live.set(key, bytes);
      return r.info!;
    });
  }

  /**
   * Scores `rows` rows of `cols` features with the session, in onnxruntime runs of at most `runRows` rows, all in one
   * message to the child. A run that fails leaves NaN in its rows and is listed in `failed`; a child that dies or is
   * not running rejects with a retriable {@link HostError}.
   */
  async score(
    key: string,
    input: Float32Array,
    rows: number,
    cols: number,
    output: string,
    runRows: number = rows,
  ): Promise<Scored> {
    const child = this.child;
    const r = await child.request({ op: 'run', key, input, rows, cols, output, runRows: Math.max(1, runRows) });
    if (!r.ok)
      throw new HostError(r.error, child.dead || r.error.startsWith('session host'), r.crashedRunning === true);
    return { scores: r.scores!, failed: r.failed ?? [] };
  }

  /** One onnxruntime run of `rows` rows; its failure rejects (not retriable unless the child died). */
  async run(key: string, input: Float32Array, rows: number, cols: number, output: string): Promise<Float32Array> {
    const r = await this.score(key, input, rows, cols, output);
    const failed = r.failed[0];
    if (failed) throw new HostError(failed.error, false);
    return r.scores;
  }

  release(key: string): Promise<void> {
    return this.serial(async () => {
      if (!this.live.delete(key)) return;
      await this.child.request({ op: 'release', key });
      if (this.child.loads >= this.recycleAfter) await this.replaceChild(`${this.child.loads} loads`);
      else {
        const rss = await this.childRss();
        if (rss > this.recycleRss) await this.replaceChild(`child RSS ${Math.round(rss / 1048576)} MiB`);
      }
    });
  }

  /** The current child's resident set size, bytes (0 if it is not answering). */
  async childRss(): Promise<number> {
    const r = await this.child.request({ op: 'stats' });
    return r.ok ? (r.rss ?? 0) : 0;
  }

  get pid(): number | undefined {
    return this.child.proc.pid;
  }

  async close(): Promise<void> {
    this.closing = true;
    await this.mgmt;
    await this.child.drainAndExit();
  }
}
