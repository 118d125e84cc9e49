import { once } from 'node:events';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import Aedes, { type AuthenticateError, type Client } from 'aedes';
import { Topics } from '@fleetpulse/contracts';
import type { TokenTable } from '../auth';
import type { IngestionConfig, TokenGrant } from '../config';
import { IngestionError, RecordTooLargeError } from '../errors';
import type { IngestionMetrics } from '../metrics';
import type { IngestOutcome, IngestPipeline } from '../pipeline';
import type { GroupCommitProducer } from '../producer';
import { authenticateConnect, grantAllows, payloadFormat, telemetryTopicDevice } from './topic';

export interface MqttDoorDeps {
  config: Pick<IngestionConfig, 'maxBodyBytes' | 'maxEventsPerRequest'>;
  tokens: TokenTable;
  pipeline: IngestPipeline;
  /** For what the pipeline does not take (a payload over the size or event limit), kept in telemetry.dlq. */
  producer: GroupCommitProducer;
  metrics: IngestionMetrics;
  log: (line: string) => void;
}

/** The bytes of a payload over the size limit kept in telemetry.dlq (the head: enough to identify the device). */
const oversizeKeepBytes = 64 * 1024;

/**
 * The MQTT door of ingestion (shared/design.md, "Telemetry in"): an MQTT 3.1.1 server (aedes) embedded in the
 * service, so the PUBACK can wait for Kafka. aedes authorizes a PUBLISH before it writes the PUBACK (QoS 1) or the
 * PUBREC (QoS 2), so the whole ingest runs inside `authorizePublish`:
 * - topic `telemetry/<deviceId>`, the device allowed by the connection's token, else refused;
 * - the payload through IngestPipeline (source `mqtt`), with the topic's device as the only device allowed, so an
 *   event for another device is an event error (telemetry.dlq);
 * - resolved: PUBACK. Kafka unavailable (or any other failure): no PUBACK; MQTT 3.1.1 has no negative one, so the
 *   connection is closed and the client resends the unacknowledged message when it reconnects.
 * aedes reads no further from a client's socket while the PUBLISH packets of the last read are in progress, so a
 * slow Kafka slows the devices down through TCP instead of queueing in memory.
 * Nothing is routed to subscribers: SUBSCRIBE is refused and retained messages are not stored.
 */
export class MqttDoor {
  private readonly broker: Aedes;
  private readonly server: Server;
  private readonly grants = new WeakMap<Client, TokenGrant>();
  private readonly sockets = new Set<Socket>();
  private inFlight = 0;
  private idle: (() => void)[] = [];
  private closing = false;

  constructor(private readonly deps: MqttDoorDeps) {
    this.broker = new Aedes({
      // A device's client id may be up to 128 chars like its device id (MQTT 3.1's default limit is 23).
      maxClientsIdLength: 256,
      authenticate: (client, username, password, done) => {
        const verdict = authenticateConnect(deps.tokens, username, password);
        if (verdict.ok) {
          this.grants.set(client, verdict.grant);
          deps.metrics.mqttConnections.inc({ result: 'accepted' });
          return done(null, true);
        }
        deps.metrics.mqttConnections.inc({ result: verdict.code === 4 ? 'bad-credentials' : 'not-authorized' });
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
    this.broker.on('clientReady', () => deps.metrics.mqttClients.inc());
    this.broker.on('clientDisconnect', () => deps.metrics.mqttClients.dec());
    this.server = createServer((socket) => {
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
      this.broker.handle(socket);
    });
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

  /** QoS 0, 1 and 2 take the same path; for 1 and 2 aedes sends the acknowledgement once this resolves. */
  private async publish(client: Client, topic: string, payload: Buffer | string): Promise<void> {
    const started = process.hrtime.bigint();
    const { metrics, log } = this.deps;
    const count = (status: string) => {
      metrics.requests.inc({ source: 'mqtt', status });
      metrics.requestSeconds.observe({ source: 'mqtt' }, Number(process.hrtime.bigint() - started) / 1e9);
    };
    if (this.closing) {
      count('unavailable');
      throw new Error('ingestion is shutting down');
    }
    const grant = this.grants.get(client);
    const device = telemetryTopicDevice(topic);
    if (grant === undefined || device === undefined || !grantAllows(grant, device)) {
      count('refused');
      const why = device === undefined ? 'the topic is not telemetry/<deviceId>' : 'the token may not write for it';
      log(`ingestion: mqtt: refused a PUBLISH of client "${client.id}" to "${topic}": ${why}; disconnecting`);
      throw new Error(`PUBLISH to ${topic} refused: ${why}`);
    }
    const body = typeof payload === 'string' ? Buffer.from(payload) : payload;
    this.inFlight++;
    try {
      await this.ingest(device, grant, body);
      count('acked');
    } catch (e) {
      const retriable = e instanceof IngestionError && e.retriable;
      count(retriable ? 'unavailable' : 'error');
      const message = e instanceof Error ? e.message : String(e);
      if (!retriable) log(`ingestion: mqtt: PUBLISH to ${topic} failed: ${message}`);
      // No PUBACK: closing the connection makes the client resend once it is back (QoS 1).
      throw e instanceof Error ? e : new Error(message);
    } finally {
      if (--this.inFlight === 0) for (const wake of this.idle.splice(0)) wake();
    }
  }

  private async ingest(device: string, grant: TokenGrant, body: Buffer): Promise<void> {
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
        // The topic names the device: every event must be that device's (others are event errors).
        grant: { token: grant.token, allowedDevices: device },
        source: 'mqtt',
        receivedAt,
      });
    } catch (e) {
      if (!(e instanceof RecordTooLargeError)) throw e;
      return dlq(body.subarray(0, oversizeKeepBytes), `${e.message} (first ${oversizeKeepBytes} bytes kept)`);
    }
    if (outcome.kind === 'too-many-events') await dlq(body, `more than ${outcome.limit} events in one message`);
  }
}
