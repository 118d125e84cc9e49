/**
 * Watches MODELS_DIR for `<name>.onnx` (+ optional `<name>.json`). fs.watch wakes a scan at once; a periodic rescan
 * is the safety net for events fs.watch misses (network filesystems, editors, renames across directories).
 *
 * Partial files: drop models by write-then-rename (write `.name.onnx.tmp` or any name not ending in `.onnx`, then
 * rename it to `name.onnx`), which is atomic. For writers that copy in place, a change is acted on only once the
 * files' size and mtime are the same on two checks `settleMs` apart; a file that still fails (a writer that died
 * half-way) is rejected by the loader and retried when it changes again. Names starting with `.` are ignored.
 *
 * Entries are looked at with lstat, never through a link: a `<name>.onnx` that is a symbolic link, a directory or a
 * pipe is handed on like a file (its own inode, size and mtime), so the loader refuses it with a reason that shows
 * in /api/models instead of it being passed over unseen.
 */
import { watch, type FSWatcher } from 'node:fs';
import { lstat, readdir } from 'node:fs/promises';
import { join } from 'node:path';

export interface ModelFiles {
  onnx: string;
  sidecar: string | null;
}

export interface WatcherHandlers {
  change: (name: string, files: ModelFiles) => Promise<unknown>;
  remove: (name: string) => Promise<unknown>;
  error?: (e: Error) => void;
}

export interface WatcherOptions {
  /** Time between the two checks that must agree before a change is acted on, ms. [100] */
  settleMs?: number;
  /** Full rescan interval, ms. [5000] */
  rescanMs?: number;
}

interface Seen {
  sig: string;
  files: ModelFiles;
}

const ModelFile = /^([^.][^/]*)\.onnx$/;

export class FolderWatcher {
  private fsw: FSWatcher | null = null;
  private timer: NodeJS.Timeout | null = null;
  private soon: NodeJS.Timeout | null = null;
  /** What was last handed to the handlers, per name. */
  private readonly applied = new Map<string, string>();
  /** Changes seen once, waiting for a second identical check. */
  private readonly pending = new Map<string, { sig: string; at: number }>();
  private running: Promise<void> | null = null;
  private again = false;
  private closed = false;
  readonly settleMs: number;
  private readonly rescanMs: number;

  constructor(
    readonly dir: string,
    private readonly handlers: WatcherHandlers,
    opts: WatcherOptions = {},
  ) {
    this.settleMs = opts.settleMs ?? 100;
    this.rescanMs = opts.rescanMs ?? 5000;
  }

  /** First scan (files already there are loaded before this resolves), then watching. */
  async start(): Promise<void> {
    await this.scanNow(true);
    try {
      this.fsw = watch(this.dir, () => this.scanSoon(0));
      this.fsw.on('error', (e) => this.handlers.error?.(e));
    } catch (e) {
      this.handlers.error?.(e as Error);
    }
    this.timer = setInterval(() => this.scanSoon(0), this.rescanMs);
    this.timer.unref();
  }

  private scanSoon(ms: number): void {
    if (this.closed) return;
    if (this.soon) return;
    this.soon = setTimeout(() => {
      this.soon = null;
      void this.scanNow(false);
    }, ms);
  }

  /** One scan at a time; a request during a scan runs one more afterwards. */
  scanNow(initial = false): Promise<void> {
    if (this.running) {
      this.again = true;
      return this.running;
    }
    this.running = (async () => {
      do {
        this.again = false;
        try {
          await this.scan(initial);
        } catch (e) {
          this.handlers.error?.(e as Error);
        }
        initial = false;
      } while (this.again && !this.closed);
    })().finally(() => {
      this.running = null;
    });
    return this.running;
  }

  private async snapshot(): Promise<Map<string, Seen>> {
    const out = new Map<string, Seen>();
    let names: string[];
    try {
      names = await readdir(this.dir);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return out;
      throw e;
    }
    const all = new Set(names);
    for (const f of names) {
      const m = ModelFile.exec(f);
      if (!m) continue;
      const name = m[1]!;
      const onnx = join(this.dir, f);
      const sideName = `${name}.json`;
      const sidecar = all.has(sideName) ? join(this.dir, sideName) : null;
      try {
        const a = await lstat(onnx);
        let sig = `${a.ino}:${a.size}:${a.mtimeMs}`;
        if (sidecar) {
          try {
            const b = await lstat(sidecar);
            sig += `|${b.ino}:${b.size}:${b.mtimeMs}`;
          } catch {
            sig += '|gone';
          }
        }
        out.set(name, { sig, files: { onnx, sidecar } });
      } catch {
        // vanished between readdir and stat: the next scan sees the truth
      }
    }
    return out;
  }

  private async scan(initial: boolean): Promise<void> {
    const now = Date.now();
    const seen = await this.snapshot();
    let waiting = false;
    for (const [name, s] of seen) {
      if (this.applied.get(name) === s.sig) {
        this.pending.delete(name);
        continue;
      }
      const p = this.pending.get(name);
      if (!initial && (!p || p.sig !== s.sig || now - p.at < this.settleMs)) {
        if (!p || p.sig !== s.sig) this.pending.set(name, { sig: s.sig, at: now });
        waiting = true;
        continue;
      }
      if (initial) {
        // At start-up, still require two agreeing looks, but without waiting for an event.
        await new Promise((r) => setTimeout(r, this.settleMs));
        const again = (await this.snapshot()).get(name);
        if (!again || again.sig !== s.sig) {
          this.pending.set(name, { sig: again?.sig ?? '', at: Date.now() });
          waiting = true;
          continue;
        }
      }
      this.pending.delete(name);
      this.applied.set(name, s.sig);
      await this.handlers.change(name, s.files);
    }
    for (const name of [...this.applied.keys()]) {
      if (seen.has(name)) continue;
      this.applied.delete(name);
      this.pending.delete(name);
      await this.handlers.remove(name);
    }
    for (const name of [...this.pending.keys()]) if (!seen.has(name)) this.pending.delete(name);
    if (waiting) this.scanSoon(this.settleMs);
  }

  close(): void {
    this.closed = true;
    this.fsw?.close();
    if (this.timer) clearInterval(this.timer);
    if (this.soon) clearTimeout(this.soon);
  }
}
