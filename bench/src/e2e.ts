import { io } from 'socket.io-client';
import { DevToken, type WindowRecord } from '@fleetpulse/contracts';
import { sleep } from '@fleetpulse/runtime';
import { quantile } from './quantile';

export interface BenchE2eOptions {
  /** [ingestionUrl=http://127.0.0.1:8080] - of a running stack (`npm start`). */
  ingestionUrl?: string;
  /** [dashboardUrl=http://127.0.0.1:3000] */
  dashboardUrl?: string;
  /** [seconds=40] - how long the device reports. */
  seconds?: number;
  /** [intervalMs=100] - between its readings. */
  intervalMs?: number;
}

export interface BenchE2eResult {
  windows: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
}

/**
 * From an event's ingestion to its 1 s window record at a socket.io client, through a running stack (`npm start`):
 * one device posts a reading every `intervalMs`; for each 1 s window, the time from posting its first event to the
 * arrival of the window's record (v2: one `aggregate` per device, resolution and window, every metric; the device's
 * 10 s and 60 s records are ignored). It includes by design the rest of the window and the allowed lateness (2 s):
 * a window closes when its device's watermark (max event time - L) passes its end.
 */
export async function benchE2e(opts: BenchE2eOptions = {}): Promise<BenchE2eResult> {
  const ingestion = opts.ingestionUrl ?? 'http://127.0.0.1:8080';
  const dashboard = opts.dashboardUrl ?? 'http://127.0.0.1:3000';
  const seconds = opts.seconds ?? 40;
  const interval = opts.intervalMs ?? 100;
  const device = `e2e-${Date.now().toString(36)}`;
  const firstSent = new Map<number, number>();
  const latencies: number[] = [];
  const socket = io(`${dashboard}/live`, { transports: ['websocket'], auth: { token: DevToken } });
  socket.on('connect', () => socket.emit('subscribe', { deviceId: device }));
  socket.on('aggregate', (record: WindowRecord) => {
    if (record.deviceId !== device || record.resolution !== '1s' || !record.final) return;
    if (record.metrics.temp === undefined) return;
    const t0 = firstSent.get(record.windowStart);
    if (t0 === undefined) return;
    latencies.push(Date.now() - t0);
    firstSent.delete(record.windowStart);
  });
  const started = Date.now();
  for (let seq = 0; Date.now() - started < seconds * 1000; seq++) {
    const ts = Date.now();
    const ws = Math.floor(ts / 1000) * 1000;
    if (!firstSent.has(ws)) firstSent.set(ws, ts);
    const res = await fetch(`${ingestion}/v1/telemetry`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: 'Bearer dev-token' },
      body: JSON.stringify({ deviceId: device, ts, metrics: { temp: 20 + Math.random() }, seq }),
    });
    if (res.status !== 202) throw new Error(`ingestion answered ${res.status}: is the stack running (npm start)?`);
    await sleep(Math.max(0, ts + interval - Date.now()));
  }
  await sleep(8000); // the last windows close by idleness
  socket.close();
  latencies.sort((a, b) => a - b);
  return {
    windows: latencies.length,
    p50Ms: quantile(latencies, 0.5),
    p99Ms: quantile(latencies, 0.99),
    maxMs: quantile(latencies, 1),
  };
}
