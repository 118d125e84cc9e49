import { once } from 'node:events';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import Aedes, { type AuthenticateError, type Client } from 'aedes';
import { Topics } from '@fleetpulse/contracts';
import type { TokenTable } from '../auth';
import type { IngestionConfig, TokenGrant } from '../config';
import { IngestionError, RecordTooLargeError } from '../errors';
import { addressKey } from '@fleetpulse/runtime';
import type { Context, Tracing } from '@fleetpulse/runtime/tracing';
import { throttleReason, type RateLimits } from '../limits';
import type { IngestionMetrics } from '../metrics';
import type { IngestOutcome, IngestPipeline } from '../pipeline';
import type { GroupCommitProducer } from '../producer';
import { endRequestSpan, startRequestSpan } from '../tracing';
import { ByteBudget, PacketGate, type FrameViolation } from './framing';
import {
  authenticateConnect,
  ConnackCode,
  maxClientIdLength,
  mayPublishFor,
  payloadFormat,
  telemetryTopicDevice,
  type ConnectVerdict,
} from './topic';

export interface MqttDoorDeps {
  config: Pick<
    IngestionConfig,
    | 'maxBodyBytes'
    | 'maxEventsPerRequest'
    | 'mqttMaxPacketBytes'
    | 'mqttMaxBufferedBytes'
    | 'mqttMaxConnections'
    | 'mqttConnectTimeoutMs'
    | 'mqttMaxKeepaliveSeconds'
  >;
  tokens: TokenTable;
  pipeline: IngestPipeline;
  /** For what the pipeline does not take (a payload over the size or event limit), kept in telemetry.dlq. */
  producer: GroupCommitProducer;
  metrics: IngestionMetrics;
  limits: RateLimits;
  log: (line: string) => void;
  /** Undefined: tracing off. */
  tracing?: Tracing;
}

/** The bytes of a payload over the size limit kept in telemetry.dlq (the head: enough to identify the device). */
const oversizeKeepBytes = 64 * 1024;
/**
 * Largest CONNECT: what a client can send before its login. A client id (256), a username (128) and a token (256)
 * take under 1 KiB; the rest is room for a will.
 */
const maxConnectBytes = 8 * 1024;
/**
 * Connections between their first byte and their login at most (the rest of `mqttMaxConnections` may be idle):
 * each holds an aedes client and up to a CONNECT of bytes. A device's login takes one round trip, so only a
 * flood of half-sent CONNECTs meets this bound.
 */
const maxLoggingIn = 1000;

/** What a connection logged in as. */
interface Session {
  grant: TokenGrant;
  /** The username: the connection's own device. */
  device: string;
  /** The client id it sent (aedes knows it as `<device>/<client id>`). */
  clientId: string;
}

/** A PUBLISH over its token's or device's rate: not acknowledged, and the connection is closed. */
class OverRate extends Error {}

const connackResult = { 2: 'identifier-rejected', 3: 'throttled', 4: 'bad-credentials', 5: 'not-authorized' } as const;

/**
 * The MQTT door of ingestion (docs/contract.md, "Telemetry in"): an MQTT 3.1.1 server (aedes) embedded in the
 * service, so the PUBACK can wait for Kafka. aedes authorizes a PUBLISH before it writes the PUBACK, so the whole
 * ingest runs inside `authorizePublish`:
 * - topic `telemetry/<deviceId>`: the connection's own device (its username), or for a gateway token any device
 *   its glob allows; else refused;
 * - the token and the device within their rates (RateLimits), else refused;
 * - the payload through IngestPipeline (source `mqtt`), with the topic's device as the only device allowed, so an
 *   event for another device is an event error (telemetry.dlq);
 * - resolved: PUBACK. Refused, Kafka unavailable (or any other failure): no PUBACK; MQTT 3.1.1 has no negative
 *   one, so the connection is closed and the client resends the unacknowledged message when it reconnects.
 * aedes reads no further from a client's socket while the PUBLISH packets of the last read are in progress, so a
 * slow Kafka slows the devices down through TCP instead of queueing in memory.
 *
 * Bounds on a connection (docs/security.md): each socket's bytes pass a PacketGate as aedes reads them, so a packet
 * over the size limit, a first packet other than a small CONNECT, and a QoS 2 PUBLISH close it by their header,
 * before their body is buffered; at most `mqttMaxConnections` sockets (more are closed as they are accepted); a
 * socket not logged in `mqttConnectTimeoutMs` after it was accepted is closed, and one that has sent nothing holds
 * no aedes client (handOnFirstBytes); a keepalive of 0 or over the bound is taken as
 * the bound (so a silent connection is closed after 1.5 times it); failed logins per source address are limited.
 * Nothing is routed to subscribers: SUBSCRIBE is refused and retained messages are not stored.
 */
export class MqttDoor {
  private readonly broker: Aedes;
  private readonly server: Server;
  private readonly sessions = new WeakMap<Client, Session>();
  private readonly sockets = new Set<Socket>();
  /** Sockets not logged in yet, by when they were accepted (in that order). */
  private readonly waiting = new Map<Socket, number>();
  /** Sockets handed to aedes, not logged in yet. */
  private readonly loggingIn = new Set<Socket>();
  private readonly budget: ByteBudget;
  private readonly sweeper: NodeJS.Timeout;
  private readonly quiet: QuietLog;
  private inFlight = 0;
  private idle: (() => void)[] = [];
  private closing = false;

  constructor(private readonly deps: MqttDoorDeps) {
    const { config, metrics, limits } = deps;
    this.quiet = new QuietLog(deps.log);
    this.budget = new ByteBudget(config.mqttMaxBufferedBytes);
    this.broker = new Aedes({
      maxClientsIdLength: maxClientIdLength,
      connectTimeout: config.mqttConnectTimeoutMs,
      preConnect: (_client, packet, done) => {
        // MQTT 3.1.1 has no way to tell a client another keepalive: the server keeps its bound (aedes closes a
        // connection silent for 1.5 keepalives).
        const keepalive = packet.keepalive ?? 0;
        if (keepalive === 0 || keepalive > config.mqttMaxKeepaliveSeconds)
          packet.keepalive = config.mqttMaxKeepaliveSeconds;
        // An empty client id (clean session) is the server's to assign (MQTT-3.1.3-6): the username.
        if (!packet.clientId && packet.username !== undefined) packet.clientId = packet.username;
        done(null, true);
      },
      authenticate: (client, username, password, done) => {
        const address = addressKey((client.conn as Socket).remoteAddress);
        const blocked = limits.admitLogin(address);
        const verdict: ConnectVerdict = blocked
          ? { ok: false, code: ConnackCode.serverUnavailable, reason: throttleReason(blocked) }
          : authenticateConnect(deps.tokens, username, password, client.id);
        if (verdict.ok) {
          const clientId = client.id;
          // aedes keys sessions by client id, and a CONNECT with an id in use closes the connection that has it.
          // Keyed by username and id, a connection can only take over sessions of its own device.
          (client as { id: string }).id = `${username}/${clientId}`;
          this.sessions.set(client, { grant: verdict.grant, device: username!, clientId });
          metrics.mqttConnections.inc({ result: 'accepted' });
          return done(null, true);
        }
        if (verdict.code === ConnackCode.badUsernameOrPassword || verdict.code === ConnackCode.notAuthorized)
          limits.loginFailed(address);
        metrics.mqttConnections.inc({ result: connackResult[verdict.code] });
        const error = Object.assign(new Error(`MQTT CONNECT refused: ${verdict.reason}`), {
          returnCode: verdict.code,
        }) as AuthenticateError;
        done(error, false);
      },
      authorizePublish: (client, packet, done) => {
        if (client === null) return done(new Error('no publishing without a client')); // an orphaned will
        this.publish(client, packet.topic, packet.payload).then(
          () => {
            packet.retain = false; // nothing is kept for subscribers
            done(null);
          },
          (e: Error) => done(e),
        );
      },
      authorizeSubscribe: (_client, _subscription, done) => done(null, null), // SUBACK 0x80: nothing to read here
    });
    this.broker.on('clientReady', () => metrics.mqttClients.inc());
    this.broker.on('clientDisconnect', () => metrics.mqttClients.dec());
    // aedes' own CONNECT timer (from the first byte) backs up the sweep (from the accept).
    this.broker.on('connectionError', (_client, error) => {
      if (/connect did not arrive in time/.test(error.message)) this.dropped('connect-timeout');
    });
    // Logged in: no longer subject to the CONNECT timeout.
    this.broker.on('client', (client) => {
      this.waiting.delete(client.conn as Socket);
      this.loggingIn.delete(client.conn as Socket);
    });
    this.server = createServer((socket) => {
      this.sockets.add(socket);
      this.waiting.set(socket, Date.now());
      socket.on('close', () => {
        this.sockets.delete(socket);
        this.waiting.delete(socket);
        this.loggingIn.delete(socket);
      });
      this.handOnFirstBytes(socket);
    });
    this.server.maxConnections = config.mqttMaxConnections;
    this.server.on('drop', (data) => this.dropped('connection-limit', data?.remoteAddress));
    this.sweeper = setInterval(() => this.sweep(), Math.min(1000, config.mqttConnectTimeoutMs)).unref();
  }

  /**
   * An aedes client (its parser, timers and listeners) costs about three times what the socket itself does, so a
   * connection gets one only once it has sent something: until then an idle socket holds its own memory only.
   */
  private handOnFirstBytes(socket: Socket): void {
    socket.on('error', () => undefined); // a reset before aedes listens is no error of the service
    socket.once('data', (chunk: Buffer) => {
      if (this.loggingIn.size >= maxLoggingIn) {
        this.dropped('login-limit', socket.remoteAddress);
        socket.destroy();
        return;
      }
      this.loggingIn.add(socket);
      socket.pause();
      socket.unshift(chunk); // aedes reads it again, through the gate
      this.gate(socket);
      this.broker.handle(socket);
    });
  }

  /** Closes the connections not logged in within the CONNECT timeout of being accepted (oldest first). */
  private sweep(): void {
    const deadline = Date.now() - this.deps.config.mqttConnectTimeoutMs;
    for (const [socket, acceptedAt] of this.waiting) {
      if (acceptedAt > deadline) break;
      this.waiting.delete(socket);
      this.dropped('connect-timeout', socket.remoteAddress);
      socket.destroy();
    }
  }

  /** Bytes of packets not yet whole, across connections (FLEETPULSE_MQTT_MAX_BUFFERED_BYTES bounds it). */
  get bufferedBytes(): number {
    return this.budget.bytes;
  }

  /** Binds the port (0: any free one); resolves with the bound port. */
  async listen(port: number, host: string): Promise<number> {
    this.server.listen(port, host);
    await once(this.server, 'listening');
    return (this.server.address() as AddressInfo).port;
  }

  /**
   * Takes no new connections or messages (a PUBLISH that arrives now is left unacknowledged: the device resends it
   * to another instance), waits up to `graceMs` for the ones in progress to be acknowledged, then disconnects all.
   */
  async close(graceMs: number): Promise<void> {
    this.closing = true;
    clearInterval(this.sweeper);
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    if (this.inFlight > 0) {
      const drained = new Promise<void>((resolve) => this.idle.push(resolve));
      const grace = new Promise<void>((resolve) => setTimeout(resolve, graceMs).unref());
      await Promise.race([drained, grace]);
    }
    await new Promise<void>((resolve) => this.broker.close(() => resolve()));
    for (const socket of this.sockets) socket.destroy();
    await closed;
  }

  /**
   * Puts a PacketGate on what aedes reads from `socket` (aedes takes its input with `read()` only): a chunk that
   * breaks a bound closes the socket, and aedes gets nothing of it.
   */
  private gate(socket: Socket): void {
    const { mqttMaxPacketBytes } = this.deps.config;
    const gate = new PacketGate(
      { maxConnectBytes: Math.min(maxConnectBytes, mqttMaxPacketBytes), maxPacketBytes: mqttMaxPacketBytes },
      this.budget,
    );
    socket.once('close', () => gate.release());
    const read = socket.read.bind(socket);
    socket.read = (size?: number): Buffer | null => {
      const chunk = read(size) as Buffer | null;
      if (chunk === null) return null;
      const violation = gate.check(chunk);
      if (violation === undefined) return chunk;
      this.dropped(violation, socket.remoteAddress);
      socket.destroy();
      return null;
    };
  }

  private dropped(
    reason: FrameViolation | 'connection-limit' | 'connect-timeout' | 'login-limit',
    address?: string,
  ): void {
    this.deps.metrics.mqttDropped.inc({ reason });
    this.quiet.log(reason, `ingestion: mqtt: closed a connection${address ? ` from ${address}` : ''}: ${reason}`);
  }

  /** QoS 0 and 1 (the PacketGate refuses 2); for 1 aedes sends the acknowledgement once this resolves. */
  private async publish(client: Client, topic: string, payload: Buffer | string): Promise<void> {
    const started = process.hrtime.bigint();
    const { metrics, log } = this.deps;
    // MQTT 3.1.1 carries no headers: each PUBLISH starts a trace.
    const span = this.deps.tracing
      ? startRequestSpan(this.deps.tracing, 'PUBLISH telemetry/{deviceId}', undefined, { 'messaging.system': 'mqtt' })
      : undefined;
    const count = (status: string) => {
      if (span) endRequestSpan(span, status);
      metrics.request('mqtt', status, Number(process.hrtime.bigint() - started) / 1e9);
    };
    if (this.closing) {
      count('unavailable');
      throw new Error('ingestion is shutting down');
    }
    const session = this.sessions.get(client);
    const device = telemetryTopicDevice(topic);
    if (session === undefined || device === undefined || !mayPublishFor(session.grant, session.device, device)) {
      count('refused');
      const why =
        device === undefined
          ? 'the topic is not telemetry/<deviceId>'
          : 'not its own device, and its token is not a gateway token for it';
      const who = JSON.stringify(session?.clientId ?? client.id);
      this.quiet.log(
        'refused',
        `ingestion: mqtt: refused a PUBLISH of client ${who} to ${JSON.stringify(topic)}: ${why}; disconnecting`,
      );
      throw new Error(`PUBLISH to ${topic} refused: ${why}`);
    }
    const overRate = this.deps.limits.admit(session.grant.token, device);
    if (overRate) {
      count('throttled');
      throw new OverRate(`${throttleReason(overRate)}; disconnecting`);
    }
    const body = typeof payload === 'string' ? Buffer.from(payload) : payload;
    this.inFlight++;
    try {
      await this.ingest(device, session.grant, body, span?.context);
      count('acked');
    } catch (e) {
      const retriable = e instanceof IngestionError && e.retriable;
      count(e instanceof OverRate ? 'throttled' : retriable ? 'unavailable' : 'error');
      const message = e instanceof Error ? e.message : String(e);
      if (!retriable && !(e instanceof OverRate)) log(`ingestion: mqtt: PUBLISH to ${topic} failed: ${message}`);
      // No PUBACK: closing the connection makes the client resend once it is back (QoS 1).
      throw e instanceof Error ? e : new Error(message);
    } finally {
      if (--this.inFlight === 0) for (const wake of this.idle.splice(0)) wake();
    }
  }

  private async ingest(device: string, grant: TokenGrant, body: Buffer, trace?: Context): Promise<void> {
    const { config, pipeline, producer } = this.deps;
    const receivedAt = Date.now();
    const dlq = (value: Buffer, error: string) =>
      producer.send(
        [{ topic: Topics.dlq, key: device, value, headers: { error, source: 'mqtt', receivedAt: String(receivedAt) } }],
        0,
      );
    // A message the device will never get through (too big, too many events) is kept in telemetry.dlq and
    // acknowledged: without a PUBACK the device would resend it for ever.
    if (body.length > config.maxBodyBytes)
      return dlq(
        body.subarray(0, oversizeKeepBytes),
        `payload of ${body.length} bytes over the limit of ${config.maxBodyBytes} (first ${oversizeKeepBytes} bytes kept)`,
      );
    let outcome: IngestOutcome;
    try {
      outcome = await pipeline.ingest({
        body,
        format: payloadFormat(body),
        grant,
        // The topic names the device: every event must be that device's (others are event errors).
        device,
        source: 'mqtt',
        receivedAt,
        trace,
      });
    } catch (e) {
      if (!(e instanceof RecordTooLargeError)) throw e;
      return dlq(body.subarray(0, oversizeKeepBytes), `${e.message} (first ${oversizeKeepBytes} bytes kept)`);
    }
    if (outcome.kind === 'too-many-events') await dlq(body, `more than ${outcome.limit} events in one message`);
    if (outcome.kind === 'throttled') throw new OverRate(`${throttleReason(outcome)}; disconnecting`);
  }
}

/** Logs a line of each kind at most once a minute, saying how many of that kind went unlogged since. */
class QuietLog {
  private readonly last = new Map<string, { at: number; unlogged: number }>();

  constructor(private readonly write: (line: string) => void) {}

  log(kind: string, line: string): void {
    const now = Date.now();
    const seen = this.last.get(kind);
    if (seen !== undefined && now - seen.at < 60_000) {
      seen.unlogged++;
      return;
    }
    const more =
      seen !== undefined && seen.unlogged > 0 ? ` (and ${seen.unlogged} more like it in the last minute)` : '';
    this.last.set(kind, { at: now, unlogged: 0 });
    this.write(line + more);
  }
}
