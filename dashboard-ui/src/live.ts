import { io, type Socket } from 'socket.io-client';
import type { AlertTransition, AnomalyScore, WindowRecord } from '@fleetpulse/contracts';
import type { LiveSubscription } from '@fleetpulse/dashboard-api/wire';

export type ConnState = 'connecting' | 'live' | 'reconnecting' | 'offline';

/** What the `/live` namespace sends: `aggregate` / `aggregates` carry v2 window records (every metric of a window). */
export interface LiveHandlers {
  aggregate(record: WindowRecord): void;
  aggregates(records: WindowRecord[]): void;
  anomaly(score: AnomalyScore): void;
  /** An alert transition (fleet and device subscriptions; the API sends each id once). */
  alert?(t: AlertTransition): void;
  state(s: ConnState, detail?: string): void;
  /** After a reconnect: what was missed while away is in the REST API. */
  reconnected(): void;
  /** The API refused the connection (401) or closed it (the session ended): sign in again. */
  unauthorized(): void;
}

/**
 * The `/live` socket, authenticated by the session cookie (sent with the handshake, same origin). socket.io reconnects
 * by itself (with backoff) after the API restarts; the server forgets a socket's rooms with it, so every subscription
 * is sent again on each connect. A refused connection (401) or one the API closes (its session ended) does not
 * reconnect: `unauthorized` is called.
 */
export class Live {
  private readonly socket: Socket;
  private readonly subs = new Map<string, LiveSubscription>();
  private everConnected = false;

  constructor(private readonly h: LiveHandlers) {
    this.socket = io('/live', {
      transports: ['websocket', 'polling'],
      reconnectionDelay: 500,
      reconnectionDelayMax: 3000,
    });
    this.socket.on('connect', () => {
      for (const s of this.subs.values()) this.socket.emit('subscribe', s);
      this.h.state('live');
      if (this.everConnected) this.h.reconnected();
      this.everConnected = true;
    });
    this.socket.on('disconnect', (reason) => {
      if (reason === 'io server disconnect') return this.h.unauthorized();
      this.h.state('reconnecting', reason);
    });
    this.socket.on('connect_error', (e: Error & { data?: { status?: number } }) => {
      if (e.data?.status === 401) {
        this.socket.disconnect();
        return this.h.unauthorized();
      }
      this.h.state(this.everConnected ? 'reconnecting' : 'offline', e.message);
    });
    this.socket.on('aggregate', (r: WindowRecord) => this.h.aggregate(r));
    this.socket.on('aggregates', (rs: WindowRecord[]) => this.h.aggregates(rs));
    this.socket.on('anomaly', (s: AnomalyScore) => this.h.anomaly(s));
    this.socket.on('alert', (t: AlertTransition) => this.h.alert?.(t));
  }

  subscribe(key: string, sub: LiveSubscription): void {
    this.subs.set(key, sub);
    if (this.socket.connected) this.socket.emit('subscribe', sub);
  }

  unsubscribe(key: string): void {
    const sub = this.subs.get(key);
    if (!sub) return;
    this.subs.delete(key);
    if (this.socket.connected)
      this.socket.emit('unsubscribe', sub.fleet ? { fleet: true } : { deviceId: sub.deviceId });
  }
}
