import { Test } from '@nestjs/testing';
import type { INestApplication } from '@nestjs/common';
import type { AnomalyScore, WindowRecord } from '@fleetpulse/contracts';
import type { AddressInfo } from 'node:net';
import { io, type Socket } from 'socket.io-client';
import { Access } from './access.service';
import { LiveIoAdapter } from './live.adapter';
import { LiveGateway, unsent } from './live.gateway';
import { DashboardMetrics } from './metrics.service';
import { anomalyScore, collect, testConfig, TestTokens, windowRecord } from './testing';
import { DashboardConfigToken } from './tokens';

// The gateway in a TestingModule on a real socket.io server, fed directly (no Kafka): rooms, the coalescing rate
// limit as a browser sees it, anomalies that are never coalesced away, and what a token may subscribe to (the
// tenant sees `gw-t-*`). Hostile clients against the whole API: access.int.test.ts.
let app: INestApplication;
let gateway: LiveGateway;
let url: string;
const sockets: Socket[] = [];

const MaxPerSec = 5;
const MaxSubs = 4;
const MaxBacklogBytes = 256 * 1024;

beforeAll(async () => {
  const moduleRef = await Test.createTestingModule({
    providers: [
      {
        provide: DashboardConfigToken,
        useValue: testConfig(
          { liveMaxUpdatesPerSec: MaxPerSec, liveMaxSubscriptions: MaxSubs, liveMaxBacklogBytes: MaxBacklogBytes },
          ['gw-t-*'],
        ),
      },
      DashboardMetrics,
      Access,
      LiveGateway,
    ],
  }).compile();
  app = moduleRef.createNestApplication({ logger: false });
  app.useWebSocketAdapter(new LiveIoAdapter(app));
  await app.listen(0, '127.0.0.1');
  url = `http://127.0.0.1:${(app.getHttpServer().address() as AddressInfo).port}`;
  gateway = app.get(LiveGateway);
});

afterEach(() => {
  for (const s of sockets.splice(0)) s.disconnect();
});

afterAll(async () => {
  await app.close();
});

async function client(...subs: object[]): Promise<Socket> {
  return as(TestTokens.admin, ...subs);
}

/** A socket of `token`, subscribed to `subs` (each must be accepted). */
async function as(token: string, ...subs: object[]): Promise<Socket> {
  const s = io(`${url}/live`, { transports: ['websocket'], forceNew: true, auth: { token } });
  sockets.push(s);
  await new Promise<void>((resolve, reject) => {
    s.once('connect', () => resolve());
    s.once('connect_error', reject);
  });
  for (const sub of subs) expect(await s.emitWithAck('subscribe', sub)).toEqual({ ok: true });
  return s;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('LiveGateway', () => {
  it('sends a device room its window records, whole, and nothing of other devices', async () => {
    const s = await client({ deviceId: 'gw-a' });
    const got = collect<WindowRecord>(s, 'aggregate', 2);
    gateway.publishAggregate(windowRecord('gw-b', 0, { temp: 1 }));
    gateway.publishAggregate(windowRecord('gw-a', 0, { temp: 2, vib: 3 }));
    gateway.publishAggregate(windowRecord('gw-a', 0, { temp: 4 }, '10s'));
    expect(await got).toEqual([
      windowRecord('gw-a', 0, { temp: 2, vib: 3 }),
      windowRecord('gw-a', 0, { temp: 4 }, '10s'),
    ]);
  });

  it('filters a subscription by resolution', async () => {
    const s = await client({ deviceId: 'gw-res', resolution: '10s' });
    const got: WindowRecord[] = [];
    s.on('aggregate', (r: WindowRecord) => got.push(r));
    const first = collect<WindowRecord>(s, 'aggregate', 1);
    gateway.publishAggregate(windowRecord('gw-res', 0, { temp: 1 }, '1s'));
    gateway.publishAggregate(windowRecord('gw-res', 0, { temp: 2 }, '10s'));
    gateway.publishAggregate(windowRecord('gw-res', 0, { temp: 3 }, '60s'));
    await first;
    // A later flush to the same socket: once it is in, anything the first flush sent is in before it.
    const marker = windowRecord('gw-res', 10_000, { temp: 4 }, '10s');
    const markerIn = collect<WindowRecord>(s, 'aggregate', 1);
    gateway.publishAggregate(marker);
    await markerIn;
    expect(got).toEqual([windowRecord('gw-res', 0, { temp: 2 }, '10s'), marker]);
  });

  it(`limits a fast device to ${MaxPerSec} updates a second and ends on the latest values`, async () => {
    const s = await client({ deviceId: 'gw-fast' });
    const received: { at: number; record: WindowRecord }[] = [];
    s.on('aggregate', (record: WindowRecord) => received.push({ at: Date.now(), record }));
    // ~2000 records a second for 2 s: far faster than the limit.
    const started = Date.now();
    let i = 0;
    while (Date.now() - started < 2000) {
      for (let k = 0; k < 20; k++, i++)
        gateway.publishAggregate(windowRecord('gw-fast', i * 1000, { temp: i, vib: -i }));
      await sleep(10);
    }
    await sleep(500);
    const seconds = (received.at(-1)!.at - received[0]!.at) / 1000;
    // Every update is one record of the only resolution; count them per second of receiving.
    expect(received.length).toBeLessThanOrEqual(Math.ceil(seconds * MaxPerSec) + 2);
    expect(received.length).toBeGreaterThanOrEqual(Math.floor(2 * MaxPerSec) - 2);
    expect(received.at(-1)!.record).toEqual(windowRecord('gw-fast', (i - 1) * 1000, { temp: i - 1, vib: 1 - i }));
    const windows = received.map((r) => r.record.windowStart);
    expect([...windows].sort((a, b) => a - b)).toEqual(windows);
  });

  it('sends the fleet room every device, and a batch subscription arrays of one resolution', async () => {
    const single = await client({ fleet: true });
    const batch = await client({ fleet: true, batch: true, resolution: '10s' });
    const singles = collect<WindowRecord>(single, 'aggregate', 3);
    const batches = collect<WindowRecord[]>(batch, 'aggregates', 1);
    gateway.publishAggregate(windowRecord('gw-f1', 0, { temp: 1 }, '1s'));
    gateway.publishAggregate(windowRecord('gw-f1', 0, { temp: 2, vib: 7 }, '10s'));
    gateway.publishAggregate(windowRecord('gw-f2', 0, { temp: 3 }, '10s'));
    expect((await singles).map((r) => r.metrics.temp!.last)).toEqual([1, 2, 3]);
    expect((await batches)[0]).toEqual([
      windowRecord('gw-f1', 0, { temp: 2, vib: 7 }, '10s'),
      windowRecord('gw-f2', 0, { temp: 3 }, '10s'),
    ]);
  });

  it('never coalesces anomalies away, and unsubscribe stops the stream', async () => {
    const s = await client({ deviceId: 'gw-anom' });
    const got = collect<AnomalyScore>(s, 'anomaly', 50);
    for (let i = 0; i < 50; i++) gateway.publishAnomaly(anomalyScore('gw-anom', i * 10_000));
    expect((await got).map((a) => a.windowStart)).toEqual(Array.from({ length: 50 }, (_, i) => i * 10_000));
    expect(await s.emitWithAck('unsubscribe', { deviceId: 'gw-anom' })).toEqual({ ok: true });
    // The same socket follows a marker device: what it sends is published after, so arrives after, the unsubscribed
    // device's anomaly and record; once the marker's are in, those would have been too.
    expect(await s.emitWithAck('subscribe', { deviceId: 'gw-marker' })).toEqual({ ok: true });
    const after: string[] = [];
    s.on('anomaly', (a: AnomalyScore) => after.push(`anomaly ${a.deviceId}`));
    s.on('aggregate', (r: WindowRecord) => after.push(`aggregate ${r.deviceId}`));
    const markerIn = Promise.all([collect(s, 'anomaly', 1), collect(s, 'aggregate', 1)]);
    gateway.publishAnomaly(anomalyScore('gw-anom', 1e9));
    gateway.publishAggregate(windowRecord('gw-anom', 1e9, { temp: 1 }));
    gateway.publishAnomaly(anomalyScore('gw-marker', 1e9));
    gateway.publishAggregate(windowRecord('gw-marker', 1e9, { temp: 1 }));
    await markerIn;
    expect(after).toEqual(['anomaly gw-marker', 'aggregate gw-marker']);
  });

  it('answers a bad subscription with the reason', async () => {
    const s = await client();
    expect(await s.emitWithAck('subscribe', { deviceId: 'bad id!' })).toEqual({
      ok: false,
      error: 'deviceId "bad id!" is not 1-128 chars of [A-Za-z0-9._:-]',
    });
    expect(await s.emitWithAck('subscribe', 'fleet')).toEqual({
      ok: false,
      error: 'expected {"deviceId": "..."} or {"fleet": true}',
    });
  });

  it('refuses a resolution no stream carries, naming the known ones, without echoing it', async () => {
    const s = await client();
    const error = 'resolution: expected one of 1s,10s,60s';
    expect(await s.emitWithAck('subscribe', { deviceId: 'gw-a', resolution: '7s' })).toEqual({ ok: false, error });
    expect(await s.emitWithAck('subscribe', { fleet: true, resolution: 'x'.repeat(10_000) })).toEqual({
      ok: false,
      error,
    });
    expect(await s.emitWithAck('subscribe', { deviceId: `${'y'.repeat(1000)}!` })).toEqual({
      ok: false,
      error: `deviceId "${'y'.repeat(64)}…" is not 1-128 chars of [A-Za-z0-9._:-]`,
    });
  });

  it(`holds at most ${MaxSubs} subscriptions per socket; one it holds may be sent again, and unsubscribe frees one`, async () => {
    const s = await client();
    const subs = Array.from({ length: MaxSubs }, (_, i) => ({ deviceId: `gw-sub-${i}` }));
    for (const sub of subs) expect(await s.emitWithAck('subscribe', sub)).toEqual({ ok: true });
    const full = {
      ok: false,
      error: `too many subscriptions on this socket (at most ${MaxSubs}); unsubscribe first`,
    };
    expect(await s.emitWithAck('subscribe', { fleet: true })).toEqual(full);
    expect(await s.emitWithAck('subscribe', subs[0])).toEqual({ ok: true });
    expect(await s.emitWithAck('unsubscribe', subs[0])).toEqual({ ok: true });
    expect(await s.emitWithAck('subscribe', { fleet: true })).toEqual({ ok: true });
  });

  it("gives a device-limited token its devices only: no other device's room, a fleet of its own", async () => {
    expect(await (await as(TestTokens.tenant)).emitWithAck('subscribe', { deviceId: 'gw-other' })).toEqual({
      ok: false,
      error: 'deviceId "gw-other" is not visible to this token',
    });
    const tenant = await as(TestTokens.tenant, { fleet: true });
    const all = await client({ fleet: true });
    const seen: string[] = [];
    tenant.on('aggregate', (r: WindowRecord) => seen.push(`aggregate ${r.deviceId}`));
    tenant.on('anomaly', (a: AnomalyScore) => seen.push(`anomaly ${a.deviceId}`));
    // Published after the others, so in after them: once these are in, anything else sent would be too.
    const mine = Promise.all([collect(tenant, 'aggregate', 1), collect(tenant, 'anomaly', 1)]);
    const everyone = collect<WindowRecord>(all, 'aggregate', 2);
    gateway.publishAnomaly(anomalyScore('gw-other', 0));
    gateway.publishAggregate(windowRecord('gw-other', 0, { temp: 1 }));
    gateway.publishAnomaly(anomalyScore('gw-t-1', 0));
    gateway.publishAggregate(windowRecord('gw-t-1', 0, { temp: 2 }));
    await mine;
    expect(seen.sort()).toEqual(['aggregate gw-t-1', 'anomaly gw-t-1']);
    expect((await everyone).map((r) => r.deviceId)).toEqual(['gw-other', 'gw-t-1']);
  });

  it('skips a client that stops reading once the bytes waiting for it pass the bound, and keeps serving others', async () => {
    const stalled = await client({ fleet: true, batch: true });
    const healthy = await client({ fleet: true, batch: true });
    // The client stops reading: its TCP window fills, then the server's socket buffer, then engine.io's queue.
    (stalled.io.engine.transport as unknown as { ws: { _socket: { pause(): void } } }).ws._socket.pause();
    const server = gateway.nsp.sockets.get(stalled.id!)!;
    const metrics = app.get(DashboardMetrics);
    const skippedBefore = (await metrics.slowSkipped.get()).values[0]?.value ?? 0;
    let received = 0;
    healthy.on('aggregates', (rs: WindowRecord[]) => (received += rs.length));
    // 300 flushes of 20 records of 64 metrics (~5 KB each): ~30 MB for a client that keeps up.
    const big = Object.fromEntries(Array.from({ length: 64 }, (_, m) => [`metric-${m}`, m]));
    let most = 0;
    for (let f = 0; f < 300; f++) {
      for (let d = 0; d < 20; d++) gateway.publishAggregate(windowRecord(`gw-big-${f}-${d}`, 0, big));
      await sleep(f % 10 === 0 ? 30 : 1);
      most = Math.max(most, unsent(server).bytes);
    }
    // One flush's batch is ~100 KB: the bound plus the flush that crossed it.
    expect(most).toBeLessThan(MaxBacklogBytes + 200 * 1024);
    expect(((await metrics.slowSkipped.get()).values[0]?.value ?? 0) - skippedBefore).toBeGreaterThan(0);
    expect(received).toBeGreaterThan(0);
  });

  describe('provisional records', () => {
    const prov = (deviceId: string, windowStart: number, temp: number, resolution = '1s'): WindowRecord => ({
      ...windowRecord(deviceId, windowStart, { temp }, resolution),
      final: false,
    });
    const label = (r: WindowRecord) => `${r.deviceId} ${r.final ? 'F' : 'P'}${r.windowStart}:${r.metrics.temp!.last}`;

    it("go to the device's subscribers, then the final of the window; never to a fleet subscriber", async () => {
      const device = await client({ deviceId: 'gw-p1' });
      const deviceBatch = await client({ deviceId: 'gw-p1', batch: true });
      const fleet = await client({ fleet: true });
      const fleetBatch = await client({ fleet: true, batch: true });
      const got: string[] = [];
      const fleetGot: string[] = [];
      const batchGot: string[] = [];
      device.on('aggregate', (r: WindowRecord) => got.push(label(r)));
      fleet.on('aggregate', (r: WindowRecord) => fleetGot.push(label(r)));
      fleetBatch.on('aggregates', (rs: WindowRecord[]) => fleetGot.push(...rs.map(label)));
      deviceBatch.on('aggregates', (rs: WindowRecord[]) => batchGot.push(...rs.map(label)));
      const provisionalIn = collect(device, 'aggregate', 1);
      gateway.publishAggregate(prov('gw-p1', 5000, 1));
      await provisionalIn;
      const finalIn = Promise.all([collect(device, 'aggregate', 1), collect(fleet, 'aggregate', 1)]);
      gateway.publishAggregate(windowRecord('gw-p1', 5000, { temp: 2 }));
      await finalIn;
      // A marker through every socket: published after, so in after anything else they would get.
      await sleep(300);
      const markers = Promise.all([
        collect(device, 'aggregate', 1),
        collect(fleet, 'aggregate', 1),
        collect(fleetBatch, 'aggregates', 1),
        collect(deviceBatch, 'aggregates', 1),
      ]);
      gateway.publishAggregate(windowRecord('gw-p1', 6000, { temp: 3 }));
      await markers;
      expect(got).toEqual(['gw-p1 P5000:1', 'gw-p1 F5000:2', 'gw-p1 F6000:3']);
      expect(batchGot).toEqual(['gw-p1 P5000:1', 'gw-p1 F5000:2', 'gw-p1 F6000:3']);
      expect(fleetGot.sort()).toEqual(['gw-p1 F5000:2', 'gw-p1 F5000:2', 'gw-p1 F6000:3', 'gw-p1 F6000:3']);
    });

    it('drops a provisional that comes after the final of its window, or older than one sent', async () => {
      const s = await client({ deviceId: 'gw-p2' });
      const got: string[] = [];
      s.on('aggregate', (r: WindowRecord) => got.push(label(r)));
      for (const [w, v] of [
        [5000, 1],
        [7000, 2],
      ] as const) {
        const one = collect(s, 'aggregate', 1);
        gateway.publishAggregate(prov('gw-p2', w, v));
        await one;
      }
      const final = collect(s, 'aggregate', 1);
      gateway.publishAggregate(windowRecord('gw-p2', 7000, { temp: 3 }));
      await final;
      await sleep(300);
      // Late snapshots of windows 7000 and 6000 (another topic: no order with the final), then a newer one.
      const marker = collect(s, 'aggregate', 1);
      gateway.publishAggregate(prov('gw-p2', 7000, 4));
      gateway.publishAggregate(prov('gw-p2', 6000, 5));
      await sleep(300);
      gateway.publishAggregate(prov('gw-p2', 8000, 6));
      await marker;
      expect(got).toEqual(['gw-p2 P5000:1', 'gw-p2 P7000:2', 'gw-p2 F7000:3', 'gw-p2 P8000:6']);
    });

    it("follow the subscription's resolution and the token's devices", async () => {
      const tenDevice = await client({ deviceId: 'gw-t-p3', resolution: '10s' });
      const tenant = await as(TestTokens.tenant, { deviceId: 'gw-t-p3' }, { fleet: true });
      const got: string[] = [];
      const tenantGot: string[] = [];
      tenDevice.on('aggregate', (r: WindowRecord) => got.push(label(r)));
      tenant.on('aggregate', (r: WindowRecord) => tenantGot.push(label(r)));
      const marker = Promise.all([collect(tenDevice, 'aggregate', 1), collect(tenant, 'aggregate', 2)]);
      gateway.publishAggregate(prov('gw-t-p3', 5000, 1));
      gateway.publishAggregate(prov('gw-t-p4', 5000, 9));
      gateway.publishAggregate(windowRecord('gw-t-p3', 0, { temp: 2 }, '10s'));
      await marker;
      expect(got).toEqual(['gw-t-p3 F0:2']);
      // The tenant's device room has the provisional; its fleet room has no provisional of another of its devices.
      expect(tenantGot).toEqual(['gw-t-p3 P5000:1', 'gw-t-p3 F0:2']);
    });
  });
});
