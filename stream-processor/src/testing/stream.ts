import type { TelemetryEvent } from '@fleetpulse/contracts';
import { mulberry32 } from '@fleetpulse/runtime';

export interface StreamOptions {
  seed: number;
  devicePrefix: string;
  devices: number;
  /** Readings per device. */
  readings: number;
  /** Event time between a device's readings, ms. */
  intervalMs: number;
  /** Event time of the first reading. */
  startTs: number;
  /** When true, events carry receivedAt = arrival time (for producing straight to Kafka). */
  stampReceivedAt: boolean;
}

/** One step of arrival: the events one request (or one Kafka record each) carries, at one arrival time. */
export interface Arrival {
  at: number;
  events: TelemetryEvent[];
}

/**
 * A deterministic fleet stream with the contract's hard cases: out-of-order neighbours, events late by 5-15 s of
 * event time, retries (same seq resent), and one device offline for 20 s that then uploads its backlog at once.
 * Returns arrivals in arrival order.
 */
export function fleetStream(o: StreamOptions): Arrival[] {
  const rnd = mulberry32(o.seed);
  const pending: { at: number; order: number; event: TelemetryEvent }[] = [];
  let order = 0;
  for (let d = 0; d < o.devices; d++) {
    const deviceId = `${o.devicePrefix}-${d}`;
    const offline = d === 0 ? { from: o.startTs + 10_000, to: o.startTs + 30_000 } : undefined;
    for (let i = 0; i < o.readings; i++) {
      const ts = o.startTs + i * o.intervalMs + Math.floor(rnd() * 50);
      const event: TelemetryEvent = {
        deviceId,
        ts,
        metrics: {
          temp: Math.round((20 + 5 * Math.sin(i / 20 + d) + rnd()) * 100) / 100,
          vib: Math.round(rnd() * 1000) / 1000,
        },
        seq: i,
      };
      let at = ts + 40;
      const r = rnd();
      if (offline && ts >= offline.from && ts < offline.to)
        at = offline.to + 40; // backlog upload
      else if (r < 0.03)
        at = ts + 5000 + Math.floor(rnd() * 10_000); // late
      else if (r < 0.1) at = ts + 40 + o.intervalMs + 10; // overtaken by the next reading
      pending.push({ at, order: order++, event });
      if (rnd() < 0.03) pending.push({ at: at + 300, order: order++, event: { ...event } }); // a retry
    }
  }
  pending.sort((a, b) => a.at - b.at || a.order - b.order);
  const arrivals: Arrival[] = [];
  for (const p of pending) {
    const e = o.stampReceivedAt ? { ...p.event, receivedAt: p.at } : p.event;
    const last = arrivals[arrivals.length - 1];
    if (last && last.at === p.at) last.events.push(e);
    else arrivals.push({ at: p.at, events: [e] });
  }
  return arrivals;
}
