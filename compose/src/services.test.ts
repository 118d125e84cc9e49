import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { services } from './services';

const ctx = {
  brokers: ['127.0.0.1:9092'],
  contactPoint: '127.0.0.1:9042',
  stackDir: mkdtempSync(join(tmpdir(), 'fp-')),
};
const hostVariables: Record<string, string> = {
  'stream-processor': 'FLEETPULSE_PROCESSOR_HOST',
  scoring: 'FLEETPULSE_SCORING_HOST',
  alerting: 'FLEETPULSE_ALERTING_HOST',
  ingestion: 'FLEETPULSE_INGESTION_HOST',
  dashboard: 'FLEETPULSE_DASHBOARD_HOST',
};

describe('the services npm start runs', () => {
  it('listen on the loopback address only, each of them', () => {
    for (const [name, variable] of Object.entries(hostVariables)) {
      const spec = services.find((s) => s.name === name);
      expect(spec?.env(ctx)[variable]).toBe('127.0.0.1');
    }
    // Every service that serves something is in the list above.
    expect(services.filter((s) => s.readyUrl !== undefined).map((s) => s.name)).toEqual(Object.keys(hostVariables));
  });

  it("keep a host the user set: opening a port to the network is the user's choice", () => {
    process.env.FLEETPULSE_DASHBOARD_HOST = '0.0.0.0';
    try {
      expect(services.find((s) => s.name === 'dashboard')?.env(ctx).FLEETPULSE_DASHBOARD_HOST).toBe('0.0.0.0');
    } finally {
      delete process.env.FLEETPULSE_DASHBOARD_HOST;
    }
  });

  it('give the dashboard one session secret, made once and kept, so sessions outlive its restarts', () => {
    const dashboard = services.find((s) => s.name === 'dashboard')!;
    const first = dashboard.env(ctx).FLEETPULSE_DASHBOARD_SESSION_SECRET;
    expect(first).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(dashboard.env(ctx).FLEETPULSE_DASHBOARD_SESSION_SECRET).toBe(first);
    const other = { ...ctx, stackDir: mkdtempSync(join(tmpdir(), 'fp-')) };
    expect(dashboard.env(other).FLEETPULSE_DASHBOARD_SESSION_SECRET).not.toBe(first);
  });
});
