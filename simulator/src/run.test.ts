import * as http from 'node:http';
import { mkdtempSync, readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseCommandLine } from './config';
import type { AnomalyTruth } from './fleet';
import { runSimulator, type RunSummary } from './run';

/** The whole CLI path in historic mode against a stand-in that accepts everything. */
describe('runSimulator', () => {
  let server: http.Server;
  let url: string;
  let received = 0;

  beforeAll(async () => {
    server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const n = (JSON.parse(Buffer.concat(chunks).toString()) as unknown[]).length;
        received += n;
        res.writeHead(202, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ accepted: n, rejected: 0, errors: [] }));
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  it('sends every event, writes the truth and the summary, and exits 0', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fleetpulse-sim-'));
    const truthPath = join(dir, 'anomalies.jsonl');
    const summaryPath = join(dir, 'summary.json');
    const parsed = parseCommandLine(
      [
        ...['--url', url, '--devices', '20', '--rate', '200', '--events', '5000', '--seed', '9'],
        ...['--from', '2025-11-22T00:00:00Z', '--anomaly-rate', '0.01', '--retry-rate', '0.05', '--batch', '100'],
        ...['--truth', truthPath, '--summary-json', summaryPath, '--quiet'],
      ],
      {},
      Date.UTC(2025, 10, 23),
    );
    if (parsed.help) throw new Error('unexpected help');
    const lines: string[] = [];
    const summary = await runSimulator(parsed.config, { stderr: (l) => lines.push(l), stdout: () => undefined });

    expect(lines).toEqual([]);
    expect(summary.exitCode).toBe(0);
    const e = summary.events;
    expect(e.accepted).toBe(e.generated);
    expect(e.generated).toBe(5000 + summary.fleet.retryEvents);
    expect(summary.fleet.retryBatches).toBeGreaterThan(0);
    expect(received).toBe(e.generated);
    expect(JSON.parse(readFileSync(summaryPath, 'utf8'))).toEqual(JSON.parse(JSON.stringify(summary)) as RunSummary);

    const truth = readFileSync(truthPath, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as AnomalyTruth);
    expect(truth.length).toBe(summary.anomalies);
    for (const t of truth) {
      expect(Object.keys(t).sort()).toEqual(
        ['deviceId', 'endTs', 'id', 'kind', 'magnitude', 'metrics', 'readings', 'startTs'].sort(),
      );
      expect(t.endTs).toBeGreaterThanOrEqual(t.startTs);
    }
  });
});
