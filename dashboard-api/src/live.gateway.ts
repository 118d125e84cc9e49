import { Inject, Logger, Optional, type OnModuleDestroy } from '@nestjs/common';
import {
  ConnectedSocket,
  MessageBody,
  SubscribeMessage,
  WebSocketGateway,
  WebSocketServer,
  type OnGatewayConnection,
  type OnGatewayDisconnect,
  type OnGatewayInit,
} from '@nestjs/websockets';
import type { AlertTransition, AnomalyScore, WindowRecord } from '@fleetpulse/contracts';
import type { Namespace, Socket } from 'socket.io';
import { DeviceScope } from './access';
import { Access, type Principal } from './access.service';
import { Coalescer, type DeviceUpdate } from './coalescer';
import type { DashboardConfig } from './config';
import { LiveTracing } from './live.tracing';
import { DashboardMetrics } from './metrics.service';
import { DeviceIdPattern } from './query';
import { DashboardConfigToken } from './tokens';
import type { SubscribeAck } from './wire';

type Target = { kind: 'device'; deviceId: string } | { kind: 'fleet' };

/** A client's value in an error: JSON-quoted, its first 64 characters only (a hostile value is never echoed whole). */
const shown = (v: string) => JSON.stringify(v.length > 64 ? `${v.slice(0, 64)}…` : v);

/** `resolutions`: the labels a subscription may name (the processor's and the stored ones). */
function parseSubscription(
  body: unknown,
  resolutions: readonly string[],
): { target: Target; resolution: string; batch: boolean } | string {
  if (typeof body !== 'object' || body === null) return 'expected {"deviceId": "..."} or {"fleet": true}';
  const b = body as Record<string, unknown>;
  const resolution = b.resolution;
  if (resolution !== undefined && (typeof resolution !== 'string' || !resolutions.includes(resolution)))
    return `resolution: expected one of ${resolutions.join(',')}`;
  if (b.batch !== undefined && typeof b.batch !== 'boolean') return 'batch: expected true or false';
  const opts = { resolution: (resolution as string | undefined) ?? '*', batch: b.batch === true };
  if (b.fleet === true && b.deviceId === undefined) return { target: { kind: 'fleet' }, ...opts };
  if (typeof b.deviceId === 'string' && b.fleet === undefined) {
    if (!DeviceIdPattern.test(b.deviceId)) return `deviceId ${shown(b.deviceId)} is not 1-128 chars of [A-Za-z0-9._:-]`;
    return { target: { kind: 'device', deviceId: b.deviceId }, ...opts };
  }
  return 'expected {"deviceId": "..."} or {"fleet": true}';
}

/**
 * Room names: `<target>|<resolution or *>|<b (batch) or s (single records)>`, target `d:<deviceId>`, `f` (the fleet,
 * for a token that sees every device) or `f:<scope key>` (the fleet as a device-limited token sees it: its patterns).
 * socket.io rooms are sets of socket ids in the adapter; a broadcast to several rooms reaches each socket once.
 */
const targetOf = (t: Target, scope: DeviceScope) =>
  t.kind === 'device' ? `d:${t.deviceId}` : scope.all ? 'f' : `f:${scope.key}`;
const roomOf = (target: string, resolution: string, batch: boolean) => `${target}|${resolution}|${batch ? 'b' : 's'}`;
interface Conn {
  /**
   * Packets engine.io holds for the socket while its transport is busy (typed private, but the queue we bound): the
   * text, and for a broadcast the WebSocket frame socket.io encoded once for every socket (Buffers).
   */
  writeBuffer: { data?: unknown; options?: { wsPreEncodedFrame?: Buffer[] } }[];
  /** The WebSocket of the websocket transport (`ws`): `bufferedAmount` is what it has not yet written out. */
  transport: { socket?: { bufferedAmount?: number } };
}

/**
 * What waits for a socket: packets in engine.io's queue, and bytes (those packets' and what the WebSocket holds
 * unwritten, which a client that stops reading makes grow once its TCP window is full).
 */
export function unsent(socket: Socket): { packets: number; bytes: number } {
  const conn = socket.conn as unknown as Conn;
  let bytes = conn.transport.socket?.bufferedAmount ?? 0;
  for (const p of conn.writeBuffer) {
    bytes += typeof p.data === 'string' ? p.data.length : Buffer.isBuffer(p.data) ? p.data.byteLength : 0;
    for (const b of p.options?.wsPreEncodedFrame ?? []) bytes += b.byteLength;
  }
  return { packets: conn.writeBuffer.length, bytes };
}
const deviceOfRoom = (room: string): string | undefined =>
  room.startsWith('d:') ? room.slice(2, room.indexOf('|', 2)) : undefined;
const scopeKeyOfRoom = (room: string): string | undefined =>
  room.startsWith('f|') ? '' : room.startsWith('f:') ? room.slice(2, room.indexOf('|', 2)) : undefined;
/** Alert transition ids remembered to de-duplicate repeats (~1 MiB of ids at most). */
export const RecentAlertIds = 10_000;
/** Nobody: the scope of a fleet room whose key no token has (cannot happen; fail closed if it does). */
const NoDevice = new DeviceScope([]);

/** A refused connection: the client's `connect_error` carries the message and `data.status` (401, 429). */
function refusal(message: string, status: number): Error {
  return Object.assign(new Error(message), { data: { status } });
}

/**
 * socket.io namespace `/live` (docs/contract.md, "Dashboard API"). The `aggregate` payload is the v2 window record
 * (every metric of one device, resolution and window). Records go through the Coalescer, so a socket gets at most
 * FLEETPULSE_LIVE_MAX_UPDATES_PER_SEC updates a second per device, each with the latest record of each resolution.
 *
 * Slow clients: engine.io queues a socket's packets while its transport is busy (a slow browser, a congested link).
 * Each flush skips the sockets whose queue already holds more than FLEETPULSE_LIVE_MAX_BACKLOG packets or, with what
 * the WebSocket holds unwritten, FLEETPULSE_LIVE_MAX_BACKLOG_BYTES bytes (a fleet batch can be megabytes: a count of
 * packets alone does not bound memory), so a slow client's queue stays bounded and, once it drains, the next flush brings the current values, not a backlog of old
 * ones. (socket.io's `volatile` flag would bound it too, but drops every packet after the first of a flush while
 * the first is being written, which loses the other resolutions of the same flush.) Anomalies are sent at once and
 * never coalesced away; a socket whose queue holds more than FLEETPULSE_LIVE_MAX_ANOMALY_BACKLOG packets (or
 * FLEETPULSE_LIVE_MAX_BACKLOG_BYTES bytes) gets none
 * until it drains (counted in fleetpulse_dashboard_live_anomalies_dropped_total; GET /api/anomalies has them).
 * Alert transitions (`alert`) go the way of anomalies, each id once (a repeat among the last RecentAlertIds is
 * dropped: the alerting service may put a transition on the topic twice).
 *
 * Access: a connection needs a token (`auth: {token}` or an `Authorization: Bearer` header) or the session cookie;
 * without one it is refused (`connect_error` "no token", data.status 401), as is one past
 * FLEETPULSE_LIVE_MAX_SOCKETS_PER_TOKEN sockets of its token (429). A device-limited token may subscribe only to its
 * devices, and its fleet subscription carries only them (and their anomalies). A socket holds at most
 * FLEETPULSE_LIVE_MAX_SUBSCRIPTIONS subscriptions; a subscription names a known resolution or none. When a session
 * ends (sign-out, expiry, eviction) its sockets are disconnected. The handshake's origin and the message size are
 * checked before any of this (live.adapter.ts).
 */
@WebSocketGateway({ namespace: '/live', transports: ['websocket', 'polling'] })
export class LiveGateway implements OnGatewayInit, OnGatewayConnection, OnGatewayDisconnect, OnModuleDestroy {
  private readonly log = new Logger('Live');
  @WebSocketServer() nsp!: Namespace;
  readonly coalescer: Coalescer;
  /** Rooms per device that have members, and the fleet rooms with the devices each may carry. */
  private readonly deviceRooms = new Map<string, Set<string>>();
  private readonly fleetRooms = new Map<string, DeviceScope>();
  private coalescedSeen = 0;
  /** Ids of the last RecentAlertIds alert transitions sent, oldest first: a repeat of one is not sent again. */
  private readonly recentAlerts = new Set<string>();
  /** Connected sockets per token (grant id), and per session key. */
  private readonly perGrant = new Map<string, number>();
  private readonly perSession = new Map<string, Set<Socket>>();

  constructor(
    @Inject(DashboardConfigToken) private readonly config: DashboardConfig,
    private readonly metrics: DashboardMetrics,
    private readonly access: Access,
    /** Stage delays and push spans (live.tracing.ts); absent in tests that do not provide it. */
    @Optional() private readonly tracing?: LiveTracing,
  ) {
    this.coalescer = new Coalescer(config.liveMaxUpdatesPerSec, (u) => this.flush(u));
    access.onSessionEnd((key) => {
      for (const socket of this.perSession.get(key) ?? []) socket.disconnect(true);
    });
  }

  afterInit(nsp: Namespace): void {
    this.nsp = nsp;
    nsp.adapter.on('create-room', (room: string) => this.roomCreated(room));
    nsp.adapter.on('delete-room', (room: string) => this.roomDeleted(room));
    nsp.use((socket, next) => next(this.admit(socket)));
    this.log.log(
      `/live ready: at most ${this.config.liveMaxUpdatesPerSec} updates/s per device, ${this.config.liveMaxSubscriptions} subscriptions per socket, ${this.config.liveMaxSocketsPerToken} sockets per token`,
    );
  }

  /** The connection's caller, counted against its token's bound; an Error (connect_error) when refused. */
  private admit(socket: Socket): Error | undefined {
    const h = socket.handshake;
    const wait = this.access.throttled(h.address);
    if (wait > 0) {
      this.access.refused('live', 'failed logins');
      return refusal(`too many failed logins from this address; retry in ${wait} s`, 429);
    }
    const p = this.access.authenticate({
      token: (h.auth as { token?: unknown }).token,
      authorization: h.headers.authorization,
      cookie: h.headers.cookie,
    });
    if (typeof p === 'string') {
      this.access.refused('live', p);
      if (p !== 'no token') this.access.loginFailed(h.address);
      return refusal(p, 401);
    }
    const id = p.grant.id;
    const n = this.perGrant.get(id) ?? 0;
    if (n >= this.config.liveMaxSocketsPerToken) {
      this.access.refused('live', 'sockets per token');
      return refusal(`too many sockets for this token (at most ${this.config.liveMaxSocketsPerToken})`, 429);
    }
    this.perGrant.set(id, n + 1);
    const key = p.session?.key;
    if (key !== undefined) {
      let set = this.perSession.get(key);
      if (!set) this.perSession.set(key, (set = new Set()));
      set.add(socket);
    }
    socket.data = { principal: p };
    // Whichever comes first: the socket's disconnect, or its connection closing before the socket ever connected.
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      const left = (this.perGrant.get(id) ?? 1) - 1;
      if (left === 0) this.perGrant.delete(id);
      else this.perGrant.set(id, left);
      if (key === undefined) return;
      const set = this.perSession.get(key);
      set?.delete(socket);
      if (set?.size === 0) this.perSession.delete(key);
    };
    socket.once('disconnect', release);
    socket.conn.once('close', release);
    return undefined;
  }

  handleConnection(): void {
    this.metrics.sockets.inc();
  }

  handleDisconnect(): void {
    this.metrics.sockets.dec();
  }

  /**
   * Joins the subscription's room. Refused with the reason: a malformed subscription, a device the token does not
   * see, or a new subscription past FLEETPULSE_LIVE_MAX_SUBSCRIPTIONS (one the socket holds already is fine).
   */
  @SubscribeMessage('subscribe')
  async subscribe(@ConnectedSocket() socket: Socket, @MessageBody() body: unknown): Promise<SubscribeAck> {
    const sub = this.parse(socket, body);
    if (typeof sub === 'string') return this.refuse(sub);
    const room = roomOf(sub.target, sub.resolution, sub.batch);
    // socket.rooms holds the socket's own id too. Check and join with no await between: messages run concurrently.
    if (!socket.rooms.has(room) && socket.rooms.size - 1 >= this.config.liveMaxSubscriptions)
      return this.refuse(
        `too many subscriptions on this socket (at most ${this.config.liveMaxSubscriptions}); unsubscribe first`,
      );
    await socket.join(room);
    return { ok: true };
  }

  @SubscribeMessage('unsubscribe')
  async unsubscribe(@ConnectedSocket() socket: Socket, @MessageBody() body: unknown): Promise<SubscribeAck> {
    const sub = this.parse(socket, body);
    if (typeof sub === 'string') return { ok: false, error: sub };
    const prefix = `${sub.target}|`;
    for (const room of [...socket.rooms]) if (room.startsWith(prefix)) await socket.leave(room);
    return { ok: true };
  }

  /** A subscription as this socket's token may hold it: its target is a room name (the token's fleet for `fleet`). */
  private parse(socket: Socket, body: unknown): { target: string; resolution: string; batch: boolean } | string {
    const sub = parseSubscription(body, this.config.liveResolutions);
    if (typeof sub === 'string') return sub;
    const { scope } = (socket.data as { principal: Principal }).principal.grant;
    if (sub.target.kind === 'device' && !scope.allows(sub.target.deviceId))
      return `deviceId ${shown(sub.target.deviceId)} is not visible to this token`;
    return { ...sub, target: targetOf(sub.target, scope) };
  }

  private refuse(error: string): SubscribeAck {
    this.access.refused('live', 'subscription');
    return { ok: false, error };
  }

  /** The rooms that want `deviceId`'s data: the fleet rooms whose scope holds it, and its own. */
  private roomsOf(deviceId: string): string[] {
    const rooms: string[] = [];
    for (const [room, scope] of this.fleetRooms) if (scope.allows(deviceId)) rooms.push(room);
    for (const room of this.deviceRooms.get(deviceId) ?? []) rooms.push(room);
    return rooms;
  }

  /**
   * Whether a record of `deviceId` would reach anyone: a provisional one only its device's subscribers, a final one
   * or a score also the fleet's. Asked before a record is parsed: at fleet scale most records are nobody's.
   */
  wants(deviceId: string, kind: 'provisional' | 'final' | 'score'): boolean {
    if (this.deviceRooms.has(deviceId)) return true;
    if (kind === 'provisional') return false;
    if (kind === 'final') return this.fleetRooms.size > 0;
    for (const scope of this.fleetRooms.values()) if (scope.allows(deviceId)) return true;
    return false;
  }

  /**
   * From the Kafka consumer: one window record, final (metrics.aggregates) or provisional (`"final": false`,
   * metrics.live). Records nobody listens to are dropped here; a provisional goes to the device's own subscribers
   * only (never a fleet room), so one nobody subscribed to by id is dropped at once.
   */
  publishAggregate(record: WindowRecord): void {
    if (record.final === false) {
      if (!this.deviceRooms.has(record.deviceId)) return;
    } else if (this.fleetRooms.size === 0 && !this.deviceRooms.has(record.deviceId)) return;
    this.coalescer.offer(record);
    if (this.coalescer.coalesced !== this.coalescedSeen) {
      this.metrics.coalesced.inc(this.coalescer.coalesced - this.coalescedSeen);
      this.coalescedSeen = this.coalescer.coalesced;
    }
  }

  /** From the Kafka consumer: one anomalous score, sent at once to the device's and the fleet's subscribers. */
  publishAnomaly(score: AnomalyScore): void {
    this.sendNow('anomaly', score.deviceId, score, this.metrics.anomaliesDropped);
  }

  /**
   * From the Kafka consumer: one alert transition, sent at once (never coalesced) to the device's and the fleet's
   * subscribers, each socket within the anomalies' backlog bound. A transition read again (the same `id`: the
   * alerting service may write one twice after a crash) among the last RecentAlertIds is not sent again.
   */
  publishAlert(t: AlertTransition): void {
    if (this.recentAlerts.has(t.id)) {
      this.metrics.alertsRepeated.inc();
      return;
    }
    this.recentAlerts.add(t.id);
    if (this.recentAlerts.size > RecentAlertIds)
      this.recentAlerts.delete(this.recentAlerts.values().next().value as string);
    this.sendNow('alert', t.deviceId, t, this.metrics.alertsDropped);
  }

  /**
   * `payload` as `event` to each socket of the rooms that want `deviceId` (once a socket), except those with more than
   * FLEETPULSE_LIVE_MAX_ANOMALY_BACKLOG packets or FLEETPULSE_LIVE_MAX_BACKLOG_BYTES bytes waiting (counted in
   * `dropped`).
   */
  private sendNow(event: 'anomaly' | 'alert', deviceId: string, payload: unknown, dropped: { inc(): void }): void {
    const rooms = this.roomsOf(deviceId);
    if (rooms.length === 0) return;
    const seen = new Set<string>();
    const sockets = this.nsp.sockets;
    for (const room of rooms) {
      for (const id of this.nsp.adapter.rooms.get(room) ?? []) {
        if (seen.has(id)) continue;
        seen.add(id);
        const socket = sockets.get(id);
        if (!socket) continue;
        const waiting = unsent(socket);
        if (waiting.packets > this.config.liveMaxAnomalyBacklog || waiting.bytes > this.config.liveMaxBacklogBytes) {
          dropped.inc();
          continue;
        }
        socket.emit(event, payload);
        this.metrics.liveEmits.inc({ event });
      }
    }
  }

  private flush(updates: DeviceUpdate[]): void {
    const end = this.metrics.flushSeconds.startTimer();
    const batches = new Map<string, WindowRecord[]>();
    let singles = 0;
    let provisionals = 0;
    const addBatch = (room: string, records: WindowRecord[]) => {
      const b = batches.get(room);
      if (b) for (const r of records) b.push(r);
      else batches.set(room, [...records]);
    };
    const slow: string[] = [];
    for (const [id, socket] of this.nsp.sockets) {
      const waiting = unsent(socket);
      if (waiting.packets > this.config.liveMaxBacklog || waiting.bytes > this.config.liveMaxBacklogBytes)
        slow.push(id);
    }
    if (slow.length > 0) this.metrics.slowSkipped.inc(slow.length);
    for (const { deviceId, records } of updates) {
      const targets = this.roomsOf(deviceId);
      if (targets.length === 0) continue;
      this.tracing?.emitting(records);
      // Provisional records go to the device's own rooms only; fleet rooms get the final ones.
      const finals = records.some((r) => r.final === false) ? records.filter((r) => r.final !== false) : records;
      for (const room of targets) {
        if (!room.endsWith('|b')) continue;
        const res = room.slice(room.lastIndexOf('|', room.length - 3) + 1, -2);
        const mine = room.startsWith('d:') ? records : finals;
        // The coalescer holds a final and a provisional per resolution, in that order.
        const sent = res === '*' ? mine : mine.filter((r) => r.resolution === res);
        if (sent.length === 0) continue;
        addBatch(room, sent);
        if (mine !== finals) provisionals += sent.filter((r) => r.final === false).length;
      }
      const singleRooms = targets.filter((t) => t.endsWith('|s'));
      if (singleRooms.length === 0) continue;
      for (const r of records) {
        const to = singleRooms.filter(
          (room) =>
            (room.endsWith('|*|s') || room.endsWith(`|${r.resolution}|s`)) &&
            (r.final !== false || room.startsWith('d:')),
        );
        if (to.length === 0) continue;
        this.nsp.to(to).except(slow).emit('aggregate', r);
        singles++;
        if (r.final === false) provisionals++;
      }
    }
    for (const [room, records] of batches) this.nsp.to(room).except(slow).emit('aggregates', records);
    if (singles > 0) this.metrics.liveEmits.inc({ event: 'aggregate' }, singles);
    if (provisionals > 0) this.metrics.provisional.inc(provisionals);
    if (batches.size > 0) this.metrics.liveEmits.inc({ event: 'aggregates' }, batches.size);
    this.tracing?.flushed();
    end();
  }

  private roomCreated(room: string): void {
    const scopeKey = scopeKeyOfRoom(room);
    if (scopeKey !== undefined) this.fleetRooms.set(room, this.access.scopes.get(scopeKey) ?? NoDevice);
    const d = deviceOfRoom(room);
    if (d === undefined) return;
    let s = this.deviceRooms.get(d);
    if (!s) {
      this.deviceRooms.set(d, (s = new Set()));
      this.coalescer.watch(d);
    }
    s.add(room);
  }

  private roomDeleted(room: string): void {
    this.fleetRooms.delete(room);
    const d = deviceOfRoom(room);
    if (d === undefined) return;
    const s = this.deviceRooms.get(d);
    s?.delete(room);
    if (s?.size === 0) {
      this.deviceRooms.delete(d);
      this.coalescer.unwatch(d);
    }
  }

  onModuleDestroy(): void {
    this.coalescer.stop();
  }
}
