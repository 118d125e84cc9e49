import { mkdtempSync, rmSync, writeFileSync, renameSync, unlinkSync, appendFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FolderWatcher, type ModelFiles } from './watcher';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(cond: () => boolean, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('timed out');
    await sleep(10);
  }
}

describe('FolderWatcher', () => {
  let dir: string;
  let events: [string, string, ModelFiles | null][];
  let w: FolderWatcher;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'scoring-watch-'));
    events = [];
  });
  afterEach(() => {
    w.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const start = async (rescanMs = 60_000) => {
    w = new FolderWatcher(
      dir,
      {
        change: async (name, files) => void events.push(['change', name, files]),
        remove: async (name) => void events.push(['remove', name, null]),
      },
      { settleMs: 50, rescanMs },
    );
    await w.start();
  };

  it('loads files already there before start() resolves, with their sidecars', async () => {
    writeFileSync(join(dir, 'a.onnx'), 'x');
    writeFileSync(join(dir, 'a.json'), '{}');
    writeFileSync(join(dir, 'notes.txt'), 'x');
    await start();
    expect(events).toEqual([['change', 'a', { onnx: join(dir, 'a.onnx'), sidecar: join(dir, 'a.json') }]]);
  });

  it('ignores temp and dot files; a rename into place is one change; deleting unloads', async () => {
    await start();
    writeFileSync(join(dir, '.b.onnx.tmp'), 'partial');
    writeFileSync(join(dir, '.hidden.onnx'), 'x');
    await sleep(200);
    expect(events).toEqual([]);
    renameSync(join(dir, '.b.onnx.tmp'), join(dir, 'b.onnx'));
    await until(() => events.length === 1);
    expect(events[0]!.slice(0, 2)).toEqual(['change', 'b']);
    unlinkSync(join(dir, 'b.onnx'));
    await until(() => events.length === 2);
    expect(events[1]).toEqual(['remove', 'b', null]);
  });

  it('waits while a file is still growing, and reports it once it is stable', async () => {
    await start();
    const f = join(dir, 'c.onnx');
    writeFileSync(f, 'a');
    for (let i = 0; i < 6; i++) {
      await sleep(25); // faster than settleMs: never two equal looks in a row
      appendFileSync(f, 'b');
    }
    expect(events).toEqual([]);
    await until(() => events.length === 1);
    await sleep(150);
    expect(events).toHaveLength(1);
  });

  it('reports a replaced file and a changed sidecar as changes', async () => {
    writeFileSync(join(dir, 'd.onnx'), 'v1');
    await start();
    writeFileSync(join(dir, 'tmp'), 'v2-bytes');
    renameSync(join(dir, 'tmp'), join(dir, 'd.onnx'));
    await until(() => events.length === 2);
    writeFileSync(join(dir, 'd.json'), '{"version":"3"}');
    await until(() => events.length === 3);
    expect(events[2]![2]!.sidecar).toBe(join(dir, 'd.json'));
  });

  it('the periodic rescan catches what fs.watch did not report', async () => {
    await start(100);
    // Simulate a missed event: close the fs.watch handle, keep the timer.
    (w as unknown as { fsw: { close(): void } }).fsw.close();
    writeFileSync(join(dir, 'e.onnx'), 'x');
    await until(() => events.length === 1, 2000);
  });
});
