import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';

// The service runs in a child process (signals and exit codes are the subject), from the build `npm test` makes.
// Under `node -e`, argv[1] is the first argument: "demo" stands in for the script's path.
const built = join(__dirname, '..', 'dist', 'index.js');

function service(start: string, args: string[] = []) {
  const source = `
    const { runService, ServiceConfigError } = require(${JSON.stringify(built)});
    runService({ name: 'demo', help: 'demo: usage\\n', stopping: 'closing', start: ${start} });`;
  const child = spawn(process.execPath, ['-e', source, 'demo', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const exited = once(child, 'exit').then(([code]) => code as number);
  const output = async (text: string) => {
    while (!out.includes(text)) await new Promise((r) => setTimeout(r, 10));
  };
  return { child, exited, output, text: () => out };
}

// A service that logs when it starts and takes 300 ms to close, so a second signal can arrive meanwhile.
const slowClose = `async () => { console.log('started'); setInterval(() => {}, 1000);
  return { close: () => new Promise((r) => setTimeout(() => { console.log('closed'); r(); }, 300)) }; }`;

describe('runService', () => {
  it('prints --help without starting', async () => {
    const s = service(`async () => { console.log('started'); return { close: async () => {} }; }`, ['--help']);
    expect(await s.exited).toBe(0);
    expect(s.text()).toBe('demo: usage\n');
  });

  it('exits 2 with every problem on an invalid configuration, 1 on another start failure', async () => {
    const bad = service(`async () => { throw new ServiceConfigError('demo', ['A: bad', 'B: worse']); }`);
    expect(await bad.exited).toBe(2);
    expect(bad.text()).toContain('invalid demo configuration:\n  - A: bad\n  - B: worse');
    const failed = service(`async () => { throw new Error('no broker'); }`);
    expect(await failed.exited).toBe(1);
    expect(failed.text()).toContain('demo: failed to start: no broker');
  });

  it('takes SIGINT then SIGTERM (Ctrl-C under npm start) as one stop, and closes cleanly', async () => {
    const s = service(slowClose);
    await s.output('started');
    s.child.kill('SIGINT');
    await s.output('SIGINT: closing');
    s.child.kill('SIGTERM');
    expect(await s.exited).toBe(0);
    expect(s.text()).toContain('closed');
    expect(s.text()).not.toContain('again');
  });

  it('leaves at once when the same signal comes again', async () => {
    const s = service(slowClose);
    await s.output('started');
    s.child.kill('SIGTERM');
    await s.output('SIGTERM: closing');
    s.child.kill('SIGTERM');
    expect(await s.exited).toBe(1);
    expect(s.text()).toContain('SIGTERM again: exiting now');
    expect(s.text()).not.toContain('closed');
  });
});
