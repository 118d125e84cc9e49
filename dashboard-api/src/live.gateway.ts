import { Inject, Logger, type OnModuleDestroy } from '@nestjs/common';
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
import type { AnomalyScore, WindowRecord } from '@fleetpulse/contracts';
import type { Namespace, Socket } from 'socket.io';
import { Coalescer, type DeviceUpdate } from './coalescer';
import type { DashboardConfig } from './config';
import { DashboardMetrics } from './metrics.service';
import { DeviceIdPattern } from './query';
import { DashboardConfigToken } from './tokens';
import type { SubscribeAck } from './wire';

type Target = { kind: 'device'; deviceId: string } | { kind: 'fleet' };

function parseSubscription(body: unknown): { target: Target; resolution: string; batch: boolean } | string {
  if (typeof body !== 'object' || body === null) return 'expected {"deviceId": "..."} or {"fleet": true}';
  const b = body as Record<string, unknown>;
  const resolution = b.resolution;
  if (resolution !== undefined && (typeof resolution !== 'string' || !/^[1-9][0-9]*s$/.test(resolution)))
    return 'resolution: expected a label such as 10s';
  if (b.batch !== undefined && typeof b.batch !== 'boolean') return 'batch: expected true or false';
  const opts = { resolution: (resolution as string | undefined) ?? '*', batch: b.batch === true };
  if (b.fleet === true && b.deviceId === undefined) return { target: { kind: 'fleet' }, ...opts };
  if (typeof b.deviceId === 'string' && b.fleet === undefined) {
    if (!DeviceIdPattern.test(b.deviceId)) return `deviceId "${b.deviceId}" is not 1-128 chars of [A-Za-z0-9._:-]`;
    return { target: { kind: 'device', deviceId: b.deviceId }, ...opts };
  }
  return 'expected {"deviceId": "..."} or {"fleet": true}';
}

/**
 * Room names: `<target>|<resolution or *>|<b (batch) or s (single records)>`, target `d:<deviceId>` or `f`.
 * socket.io rooms are sets of socket ids in the adapter; a broadcast to several rooms reaches each socket once.
 */
const roomOf = (t: Target, resolution: string, batch: boolean) =>
  `${t.kind === 'fleet' ? 'f' : `d:${t.deviceId}`}|${resolution}|${batch ? 'b' : 's'}`;
const targetPrefix = (t: Target) => (t.kind === 'fleet' ? 'f|' : `d:${t.deviceId}|`);
/** Packets engine.io holds for a socket while its transport is busy (typed private, but the queue we bound). */
const unsent = (socket: Socket): number => (socket.conn as unknown as { writeBuffer: unknown[] }).writeBuffer.length;
const deviceOfRoom = (room: string): string | undefined =>
  room.startsWith('d:') ? room.slice(2, room.indexOf('|', 2)) : undefined;

/**
 * socket.io namespace `/live` (shared/design.md, "Dashboard API"). The `aggregate` payload is the v2 window record
 * (every metric of one device, resolution and window). Records go through the Coalescer, so a socket gets at most
 * FLEETPULSE_LIVE_MAX_UPDATES_PER_SEC updates a second per device, each with the latest record of each resolution.
 *
 * Slow clients: engine.io queues a socket's packets while its transport is busy (a slow browser, a congested link).
 * Each flush skips the sockets whose queue already holds more than FLEETPULSE_LIVE_MAX_BACKLOG packets, so a slow
 * client's queue stays bounded and, once it drains, the next flush brings the current values, not a backlog of old
 * ones. (socket.io's `volatile` flag would bound it too, but drops every packet after the first of a flush while
 * the first is being written, which loses the other resolutions of the same flush.) Anomalies are sent at once and
 * never coalesced away; a socket whose queue holds more than FLEETPULSE_LIVE_MAX_ANOMALY_BACKLOG packets gets none
 * until it drains (counted in fleetpulse_dashboard_live_anomalies_dropped_total; GET /api/anomalies has them).
 */
@WebSocketGateway({ namespace: '/live', cors: { origin: true }, transports: ['websocket', 'polling'] })
export class LiveGateway implements OnGatewayInit, OnGatewayConnection, OnGatewayDisconnect, OnModuleDestroy {
  private readonly log = new Logger('Live');
  @WebSocketServer() nsp!: Namespace;
  readonly coalescer: Coalescer;
  /** Rooms per device that have members, and the fleet rooms: who wants what, without scanning every room. */
  private readonly deviceRooms = new Map<string, Set<string>>();
  private readonly fleetRooms = new Set<string>();
  private coalescedSeen = 0;

  constructor(
    @Inject(DashboardConfigToken) private readonly config: DashboardConfig,
    private readonly metrics: DashboardMetrics,
  ) {
    this.coalescer = new Coalescer(Math.floor(1000 / config.liveMaxUpdatesPerSec), (u) => this.flush(u));
  }

  afterInit(nsp: Namespace): void {
    this.nsp = nsp;
    nsp.adapter.on('create-room', (room: string) => this.roomCreated(room));
    nsp.adapter.on('delete-room', (room: string) => this.roomDeleted(room));
    this.log.log(`/live ready: at most ${this.config.liveMaxUpdatesPerSec} updates/s per device`);
  }

  handleConnection(): void {
    this.metrics.sockets.inc();
  }

  handleDisconnect(): void {
    this.metrics.sockets.dec();
  }

  @SubscribeMessage('subscribe')
  async subscribe(@ConnectedSocket() socket: Socket, @MessageBody() body: unknown): Promise<SubscribeAck> {
    const sub = parseSubscription(body);
    if (typeof sub === 'string') return { ok: false, error: sub };
    await socket.join(roomOf(sub.target, sub.resolution, sub.batch));
    return { ok: true };
  }

  @SubscribeMessage('unsubscribe')
  async unsubscribe(@ConnectedSocket() socket: Socket, @MessageBody() body: unknown): Promise<SubscribeAck> {
    const sub = parseSubscription(body);
    if (typeof sub === 'string') return { ok: false, error: sub };
    const prefix = targetPrefix(sub.target);
    for (const room of [...socket.rooms]) if (room.startsWith(prefix)) await socket.leave(room);
    return { ok: true };
  }

  /** From the Kafka consumer: one window record. Records nobody listens to are dropped here. */
  publishAggregate(record: WindowRecord): void {
    if (this.fleetRooms.size === 0 && !this.deviceRooms.has(record.deviceId)) return;
    this.coalescer.offer(record);
    if (this.coalescer.coalesced !== this.coalescedSeen) {
      this.metrics.coalesced.inc(this.coalescer.coalesced - this.coalescedSeen);
      this.coalescedSeen = this.coalescer.coalesced;
    }
  }

  /** From the Kafka consumer: one anomalous score, sent at once to the device's and the fleet's subscribers. */
  publishAnomaly(score: AnomalyScore): void {
    const rooms = [...this.fleetRooms, ...(this.deviceRooms.get(score.deviceId) ?? [])];
    if (rooms.length === 0) return;
    const seen = new Set<string>();
    const sockets = this.nsp.sockets;
    for (const room of rooms) {
      for (const id of this.nsp.adapter.rooms.get(room) ?? []) {
        if (seen.has(id)) continue;
        seen.add(id);
        const socket = sockets.get(id);
        if (!socket) continue;
        if (unsent(socket) > this.config.liveMaxAnomalyBacklog) {
          this.metrics.anomaliesDropped.inc();
          continue;
        }
        socket.emit('anomaly', score);
        this.metrics.liveEmits.inc({ event: 'anomaly' });
      }
    }
  }

  private flush(updates: DeviceUpdate[]): void {
    const end = this.metrics.flushSeconds.startTimer();
    const batches = new Map<string, WindowRecord[]>();
    let singles = 0;
    const addBatch = (room: string, records: WindowRecord[]) => {
      const b = batches.get(room);
      if (b) for (const r of records) b.push(r);
      else batches.set(room, [...records]);
    };
    const slow: string[] = [];
    for (const [id, socket] of this.nsp.sockets) if (unsent(socket) > this.config.liveMaxBacklog) slow.push(id);
    if (slow.length > 0) this.metrics.slowSkipped.inc(slow.length);
    for (const { deviceId, records } of updates) {
      const targets = [...this.fleetRooms, ...(this.deviceRooms.get(deviceId) ?? [])];
      if (targets.length === 0) continue;
      for (const room of targets) {
        if (!room.endsWith('|b')) continue;
        const res = room.slice(room.lastIndexOf('|', room.length - 3) + 1, -2);
        // The coalescer holds one record per resolution: at most one matches.
        if (res === '*') addBatch(room, records);
        else {
          const one = records.find((r) => r.resolution === res);
          if (one) addBatch(room, [one]);
        }
      }
      const singleRooms = targets.filter((t) => t.endsWith('|s'));
      if (singleRooms.length === 0) continue;
      for (const r of records) {
        const to = singleRooms.filter((room) => room.endsWith('|*|s') || room.endsWith(`|${r.resolution}|s`));
        if (to.length === 0) continue;
        this.nsp.to(to).except(slow).emit('aggregate', r);
        singles++;
      }
    }
    for (const [room, records] of batches) this.nsp.to(room).except(slow).emit('aggregates', records);
    if (singles > 0) this.metrics.liveEmits.inc({ event: 'aggregate' }, singles);
    if (batches.size > 0) this.metrics.liveEmits.inc({ event: 'aggregates' }, batches.size);
    end();
  }

  private roomCreated(room: string): void {
    if (room.startsWith('f|')) this.fleetRooms.add(room);
    const d = deviceOfRoom(room);
    if (d === undefined) return;
    let s = this.deviceRooms.get(d);
    if (!s) this.deviceRooms.set(d, (s = new Set()));
    s.add(room);
  }

  private roomDeleted(room: string): void {
    this.fleetRooms.delete(room);
    const d = deviceOfRoom(room);
    if (d === undefined) return;
    const s = this.deviceRooms.get(d);
    s?.delete(room);
    if (s?.size === 0) this.deviceRooms.delete(d);
  }

  onModuleDestroy(): void {
    this.coalescer.stop();
  }
}
