import { main } from './cli';

function capture(): { out: () => string; restore: () => void } {
  let text = '';
  const o = jest.spyOn(process.stdout, 'write').mockImplementation((s) => ((text += String(s)), true));
  const e = jest.spyOn(process.stderr, 'write').mockImplementation((s) => ((text += String(s)), true));
  return {
    out: () => text,
    restore: () => {
      o.mockRestore();
      e.mockRestore();
    },
  };
}

describe('cli', () => {
  it.each(['up', 'down', 'status', 'start'])('%s --help prints its usage and exits 0', async (cmd) => {
    const c = capture();
    try {
      expect(await main([cmd, '--help'])).toBe(0);
      expect(c.out()).toContain(cmd === 'start' ? 'npm start' : `npm run stack -- ${cmd}`);
    } finally {
      c.restore();
    }
  });

  it('lists the commands on --help', async () => {
    const c = capture();
    try {
      expect(await main(['--help'])).toBe(0);
      for (const cmd of ['up', 'down', 'status', 'start']) expect(c.out()).toMatch(new RegExp(`^  ${cmd} `, 'm'));
    } finally {
      c.restore();
    }
  });

  it('rejects an unknown command or option with exit 1', async () => {
    const c = capture();
    try {
      expect(await main(['launch'])).toBe(1);
      expect(c.out()).toContain("unknown command 'launch'");
      expect(await main(['down', '--wipe-all'])).toBe(1);
      expect(c.out()).toMatch(/Unknown option '--wipe-all'/);
    } finally {
      c.restore();
    }
  });

  it('prints a StackError as one message with its fix', async () => {
    const c = capture();
    const saved = process.env.FLEETPULSE_KAFKA_PORT;
    process.env.FLEETPULSE_KAFKA_PORT = 'nope';
    try {
      // status reads the config first; a bad variable must come out as "error: ... fix: ...".
      expect(await main(['status'])).toBe(1);
      expect(c.out()).toMatch(/^error: invalid stack configuration: FLEETPULSE_KAFKA_PORT/m);
      expect(c.out()).toMatch(/^ {2}fix: /m);
    } finally {
      if (saved === undefined) delete process.env.FLEETPULSE_KAFKA_PORT;
      else process.env.FLEETPULSE_KAFKA_PORT = saved;
      c.restore();
    }
  });
});
