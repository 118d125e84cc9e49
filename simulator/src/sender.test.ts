import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createFleet, type EventBatch, type SimEvent } from './fleet';
import { Sender, parseRetryAfter, type SenderOptions } from './sender';
import { createTransport, type HttpClient } from './transport';

/** What the test server does with the n-th request (from 0); `ok` answers 202 accepting everything. */
type Reply = 'ok' | 'reset' | { status: number; body?: string; headers?: Record<string, string> };

interface Received {
  body: string;
  contentType: string | undefined;
  auth: string | undefined;
}

/** A small ingestion stand-in: records every request and answers from a script (then `ok`). */
async function startServer(script: (n: number, events: number) => Reply): Promise<{
  url: string;
  received: Received[];
  close: () => Promise<void>;
}> {
  const received: Received[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString();
      const n = received.length;
      received.push({ body, contentType: req.headers['content-type'], auth: req.headers.authorization });
      const events =
        req.headers['content-type'] === 'application/x-ndjson'
          ? body.split('\n').length - 1
          : (JSON.parse(body) as unknown[]).length;
      const reply = script(n, events);
      if (reply === 'reset') {
        req.socket.destroy();
        return;
      }
      if (reply === 'ok') {
        res.writeHead(202, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ accepted: events, rejected: 0, errors: [] }));
        return;
      }
      res.writeHead(reply.status, { 'content-type': 'application/json', ...reply.headers });
      res.end(reply.body ?? '{}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    received,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

const START = Date.UTC(2025, 10, 22);

function batchesOf(events: number, batchSize: number, lanes = 1): EventBatch[] {
  const fleet = createFleet({
    devices: 10,
    seed: 3,
    start: START,
    maxEvents: events,
    batchSize,
    lanes,
    retryRate: 0,
    outOfOrderRate: 0,
    lateRate: 0,
  });
  return [...fleet.batches()];
}

const seqsOf = (body: string): string[] => (JSON.parse(body) as SimEvent[]).map((e) => `${e.deviceId}/${e.seq}`);

async function send(
  url: string,
  batches: EventBatch[],
  extra: Partial<SenderOptions> & { httpClient?: HttpClient } = {},
): Promise<ReturnType<Sender['run']>> {
  const transport = createTransport({ kind: 'http', url, token: 'test-token', httpClient: extra.httpClient ?? 'node' });
  try {
    return await new Sender({ transport, backoffBaseMs: 1, backoffMaxMs: 5, ...extra }).run(batches);
  } finally {
    await transport.close();
  }
}

describe.each(['node', 'fetch'] as const)('Sender over HTTP (%s client)', (httpClient) => {
  it('resends the same batch after 503 (Retry-After) and 500, and counts every event once', async () => {
    const srv = await startServer((n) =>
      n === 1
        ? { status: 503, headers: { 'retry-after': '0' }, body: '{"error":"kafka unavailable"}' }
        : n === 2
          ? { status: 500 }
          : 'ok',
    );
    try {
      const batches = batchesOf(100, 25);
      const stats = await send(srv.url, batches, { httpClient, concurrency: 1 });
      expect(srv.received).toHaveLength(6);
      // Request 1 was refused twice: requests 1, 2 and 3 carry the same events, the same seq values.
      expect(seqsOf(srv.received[2]!.body)).toEqual(seqsOf(srv.received[1]!.body));
      expect(srv.received[3]!.body).toBe(srv.received[1]!.body);
      expect(srv.received.map((r) => r.auth)).toEqual(Array(6).fill('Bearer test-token'));
      expect(srv.received[0]!.contentType).toBe('application/json');
      expect(stats).toMatchObject({
        batches: 4,
        events: 100,
        accepted: 100,
        rejected: 0,
        failed: 0,
        inFlight: 0,
        requests: 6,
        resends: 2,
        errors: { http503: 1, http500: 1 },
      });
      expect(stats.latency.count).toBe(6);
    } finally {
      await srv.close();
    }
  });

  it('retries after a network error (connection reset)', async () => {
    const srv = await startServer((n) => (n === 0 ? 'reset' : 'ok'));
    try {
      const stats = await send(srv.url, batchesOf(10, 10), { httpClient });
      expect(srv.received).toHaveLength(2);
      expect(srv.received[1]!.body).toBe(srv.received[0]!.body);
      expect(stats).toMatchObject({ accepted: 10, failed: 0, resends: 1 });
      expect(Object.values(stats.errors)).toEqual([1]);
    } finally {
      await srv.close();
    }
  });
});

describe('Sender accounting', () => {
  it('counts rejections from the receipt, by message', async () => {
    const srv = await startServer((_n, events) => ({
      status: 202,
      body: JSON.stringify({
        accepted: events - 1,
        rejected: 1,
        errors: [{ index: 0, error: 'deviceId: not allowed for this token' }],
      }),
    }));
    try {
      const stats = await send(srv.url, batchesOf(30, 10));
      expect(stats).toMatchObject({ accepted: 27, rejected: 3, failed: 0, inFlight: 0 });
      expect(stats.rejections).toEqual({ 'deviceId: not allowed for this token': 3 });
    } finally {
      await srv.close();
    }
  });

  it('fails what a receipt does not account for instead of assuming it was accepted', async () => {
    const srv = await startServer(() => ({ status: 202, body: '{"accepted": 4, "rejected": 0, "errors": []}' }));
    try {
      const stats = await send(srv.url, batchesOf(10, 10));
      expect(stats).toMatchObject({ accepted: 4, failed: 6, errors: { 'receipt-mismatch': 1 } });
    } finally {
      await srv.close();
    }
  });

  it('gives up after maxRetries and counts the events as failed', async () => {
    const srv = await startServer(() => ({ status: 503, headers: { 'retry-after': '0' } }));
    try {
      const stats = await send(srv.url, batchesOf(20, 10), { maxRetries: 2, concurrency: 1 });
      expect(srv.received).toHaveLength(6);
      expect(stats).toMatchObject({ accepted: 0, failed: 20, inFlight: 0, resends: 4 });
      expect(stats.errors).toEqual({ http503: 6, 'gave-up': 2 });
    } finally {
      await srv.close();
    }
  });

  it('splits a batch in halves on 413 and sends them in order', async () => {
    const srv = await startServer((_n, events) => (events > 5 ? { status: 413 } : 'ok'));
    try {
      const [batch] = batchesOf(8, 8);
      const stats = await send(srv.url, [batch!]);
      expect(stats).toMatchObject({ accepted: 8, failed: 0, errors: { http413: 1 } });
      const sent = srv.received.slice(1).flatMap((r) => seqsOf(r.body));
      expect(sent).toEqual(batch!.events.map((e) => `${e.deviceId}/${e.seq}`));
    } finally {
      await srv.close();
    }
  });

  it('stops the run on 401 and reports every event as failed, none silently dropped', async () => {
    const srv = await startServer(() => ({ status: 401, body: '{"error":"bad token"}' }));
    try {
      const batches = batchesOf(200, 10, 2);
      const stats = await send(srv.url, batches, { concurrency: 2 });
      expect(stats.fatal).toMatch(/token/);
      expect(stats.accepted).toBe(0);
      expect(stats.failed).toBe(stats.events);
      expect(stats.inFlight).toBe(0);
      expect(stats.events).toBeLessThan(200);
      expect(srv.received.length).toBeLessThanOrEqual(2);
    } finally {
      await srv.close();
    }
  });

  it('sends NDJSON with its content type, and keeps each lane in order', async () => {
    const srv = await startServer(() => 'ok');
    try {
      const batches = batchesOf(300, 20, 3);
      const stats = await send(srv.url, batches, { format: 'ndjson', concurrency: 3 });
      expect(stats).toMatchObject({ accepted: 300, failed: 0 });
      expect(new Set(srv.received.map((r) => r.contentType))).toEqual(new Set(['application/x-ndjson']));
      const lastSeq = new Map<string, number>();
      for (const r of srv.received)
        for (const line of r.body.trim().split('\n')) {
          const e = JSON.parse(line) as SimEvent;
          expect(e.seq).toBeGreaterThan(lastSeq.get(e.deviceId) ?? -1);
          lastSeq.set(e.deviceId, e.seq);
        }
    } finally {
      await srv.close();
    }
  });

  it('counts unreachable ingestion as errors by kind and the events as failed', async () => {
    const srv = await startServer(() => 'ok');
    const url = srv.url;
    await srv.close();
    const stats = await send(url, batchesOf(10, 10), { maxRetries: 1 });
    expect(stats).toMatchObject({ accepted: 0, failed: 10, requests: 2 });
    expect(stats.errors).toEqual({ ECONNREFUSED: 2, 'gave-up': 1 });
  });
});

describe('parseRetryAfter', () => {
  it('reads seconds and HTTP dates', () => {
    const now = Date.UTC(2025, 10, 22, 12, 0, 0);
    expect(parseRetryAfter('3', now)).toBe(3000);
    expect(parseRetryAfter(new Date(now + 5000).toUTCString(), now)).toBe(5000);
    expect(parseRetryAfter('soon', now)).toBeUndefined();
    expect(parseRetryAfter(undefined, now)).toBeUndefined();
  });
});
