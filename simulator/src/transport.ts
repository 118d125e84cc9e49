/**
 * How a batch leaves the process. HTTP (POST /v1/telemetry) is implemented twice, on node:http with a keep-alive
 * agent and on Node's global fetch (undici); MQTT publishes each device's events to `telemetry/<deviceId>`.
 */
import * as http from 'node:http';
import * as https from 'node:https';
import { randomUUID } from 'node:crypto';
import { DefaultPorts } from '@fleetpulse/contracts';
import { connectAsync, type MqttClient } from 'mqtt';
import { TransportError } from './errors';

/** What came back for one request. `retryAfter` is the raw Retry-After header, if any. */
export interface TransportResponse {
  status: number;
  retryAfter?: string;
  body: string;
}

export interface Transport {
  readonly name: string;
  /** Sends one body. Resolves with any HTTP answer; rejects with a `TransportError` when there is none. */
  send(body: Buffer, contentType: string): Promise<TransportResponse>;
  close(): Promise<void>;
}

export const TransportKinds = ['http', 'mqtt'] as const;
export type TransportKind = (typeof TransportKinds)[number];
export const HttpClients = ['node', 'fetch'] as const;
export type HttpClient = (typeof HttpClients)[number];

export interface TransportOptions {
  kind: TransportKind;
  /** Base URL of ingestion; a URL without a path gets `/v1/telemetry`. */
  url: string;
  token: string;
  /** node: node:http with a keep-alive agent; fetch: the global fetch (undici). ['node'] */
  httpClient?: HttpClient;
  /** Sockets to keep open (one per request in flight). [8] */
  maxSockets?: number;
  /** Give up on a request after this long (ms); counted as a `timeout` error and retried. [10000] */
  timeoutMs?: number;
  /**
   * MQTT broker (ingestion's MQTT door). [env FLEETPULSE_MQTT_URL, else mqtt://<host of url>:1883]
   */
  mqttUrl?: string;
}

/** `http://host:8080` -> `http://host:8080/v1/telemetry`; a URL with a path is used as it is. */
export function telemetryUrl(base: string): URL {
  const url = new URL(base);
  if (url.pathname === '/' || url.pathname === '') url.pathname = '/v1/telemetry';
  return url;
}

interface ErrorLike {
  name?: unknown;
  message?: unknown;
  code?: unknown;
  cause?: unknown;
}

/** Duck-typed: errors from node core may come from another realm (as under jest), where instanceof fails. */
function asErrorLike(e: unknown): ErrorLike | undefined {
  return typeof e === 'object' && e !== null ? (e as ErrorLike) : undefined;
}

/** The error kind to count a failed request under: the system code (ECONNREFUSED, ECONNRESET...) when there is one. */
function errorKind(err: unknown): string {
  let e = asErrorLike(err);
  for (let depth = 0; depth < 4 && e !== undefined; depth++) {
    if (typeof e.code === 'string') return e.code;
    if (e.name === 'TimeoutError') return 'timeout';
    e = asErrorLike(e.cause);
  }
  return 'network';
}

function describe(err: unknown): string {
  const e = asErrorLike(err);
  if (e === undefined || typeof e.message !== 'string') return String(err);
  const cause = asErrorLike(e.cause);
  return typeof cause?.message === 'string' ? `${e.message}: ${cause.message}` : e.message;
}

export class NodeHttpTransport implements Transport {
  readonly name = 'http (node:http)';
  private readonly url: URL;
  private readonly agent: http.Agent;
  private readonly request: typeof http.request;
  private readonly auth: string;
  private readonly timeoutMs: number;

  constructor(o: TransportOptions) {
    this.url = telemetryUrl(o.url);
    const secure = this.url.protocol === 'https:';
    const agentOptions = { keepAlive: true, maxSockets: o.maxSockets ?? 8 };
    this.agent = secure ? new https.Agent(agentOptions) : new http.Agent(agentOptions);
    this.request = secure ? https.request : http.request;
    this.auth = `Bearer ${o.token}`;
    this.timeoutMs = o.timeoutMs ?? 10_000;
  }

  send(body: Buffer, contentType: string): Promise<TransportResponse> {
    return new Promise((resolve, reject) => {
      const req = this.request(
        this.url,
        {
          method: 'POST',
          agent: this.agent,
          headers: { 'content-type': contentType, 'content-length': body.length, authorization: this.auth },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('error', (err) => reject(new TransportError(`response: ${describe(err)}`, errorKind(err), err)));
          res.on('end', () => {
            const ra = res.headers['retry-after'];
            resolve({
              status: res.statusCode ?? 0,
              ...(ra === undefined ? {} : { retryAfter: ra }),
              body: Buffer.concat(chunks).toString('utf8'),
            });
          });
        },
      );
      req.setTimeout(this.timeoutMs, () =>
        req.destroy(new TransportError(`no answer within ${this.timeoutMs} ms`, 'timeout')),
      );
      req.on('error', (err) =>
        reject(err instanceof TransportError ? err : new TransportError(describe(err), errorKind(err), err)),
      );
      req.end(body);
    });
  }

  close(): Promise<void> {
    this.agent.destroy();
    return Promise.resolve();
  }
}

export class FetchTransport implements Transport {
  readonly name = 'http (fetch)';
  private readonly url: string;
  private readonly auth: string;
  private readonly timeoutMs: number;

  constructor(o: TransportOptions) {
    this.url = telemetryUrl(o.url).toString();
    this.auth = `Bearer ${o.token}`;
    this.timeoutMs = o.timeoutMs ?? 10_000;
  }

  async send(body: Buffer, contentType: string): Promise<TransportResponse> {
    try {
      const res = await fetch(this.url, {
        method: 'POST',
        headers: { 'content-type': contentType, authorization: this.auth },
        body,
        signal: AbortSignal.timeout(this.timeoutMs),
      });
      const text = await res.text();
      const ra = res.headers.get('retry-after');
      return { status: res.status, ...(ra === null ? {} : { retryAfter: ra }), body: text };
    } catch (err) {
      throw new TransportError(describe(err), errorKind(err), err);
    }
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}

/** The MQTT door of the ingestion at `url`: FLEETPULSE_MQTT_URL when set, else the same host on port 1883. */
export function mqttUrlOf(url: string, env: NodeJS.ProcessEnv = process.env): string {
  return env.FLEETPULSE_MQTT_URL ?? `mqtt://${new URL(url).hostname}:${DefaultPorts.mqtt}`;
}

interface MqttConnection {
  client: MqttClient;
  /** Rejects when the connection closes. */
  closed: Promise<never>;
  isClosed: boolean;
}

/** The device id of one event of a batch (the canonical field, or the flat form's). */
function deviceOf(event: unknown): string | undefined {
  if (typeof event !== 'object' || event === null) return undefined;
  const e = event as { deviceId?: unknown; device_id?: unknown };
  const id = e.deviceId ?? e.device_id;
  return typeof id === 'string' && /^[A-Za-z0-9._:-]{1,128}$/.test(id) ? id : undefined;
}

/**
 * MQTT, gateway-style: a batch holds many devices' events, and one connection per device is not how 100k devices
 * are simulated from one process, so the transport keeps `maxSockets` connections (one per lane), each logged in
 * as the first device it sends for with the run's token (a token whose glob covers the fleet, such as the dev token
 * or a gateway token in FLEETPULSE_GATEWAY_TOKENS such as `gw-token=sim-*`), and publishes each device's events of the batch, in order, to `telemetry/<deviceId>` at
 * QoS 1. The batch is answered 202 once every PUBACK is in (each means Kafka has those events); MQTT does not say
 * which events ingestion rejected (they are in telemetry.dlq), so all routable events count as accepted. A closed
 * connection or a missing PUBACK fails the batch as a retriable `TransportError` (the Sender sends it again: the
 * devices' seq values make the repeat countable once); a refused login answers 401, which stops the run.
 */
export class MqttTransport implements Transport {
  readonly name: string;
  private readonly url: string;
  private readonly token: string;
  private readonly timeoutMs: number;
  private readonly pool: (Promise<MqttConnection> | undefined)[];
  private next = 0;

  constructor(o: TransportOptions) {
    this.url = o.mqttUrl ?? mqttUrlOf(o.url);
    this.name = `mqtt (${this.url})`;
    this.token = o.token;
    this.timeoutMs = o.timeoutMs ?? 10_000;
    this.pool = new Array<Promise<MqttConnection> | undefined>(o.maxSockets ?? 8).fill(undefined);
  }

  async send(body: Buffer, contentType: string): Promise<TransportResponse> {
    const ndjson = contentType.startsWith('application/x-ndjson');
    const text = body.toString('utf8');
    const events: unknown[] = ndjson
      ? text
          .split('\n')
          .filter((l) => l.trim() !== '')
          .map((l) => JSON.parse(l) as unknown)
      : ([] as unknown[]).concat(JSON.parse(text));
    const byDevice = new Map<string, string[]>();
    const errors: { index: number; error: string }[] = [];
    events.forEach((e, index) => {
      const device = deviceOf(e);
      if (device === undefined) return void errors.push({ index, error: 'deviceId: no device id to publish for' });
      let list = byDevice.get(device);
      if (!list) byDevice.set(device, (list = []));
      list.push(JSON.stringify(e));
    });
    if (byDevice.size === 0) return answer(202, 0, errors);
    const slot = this.next++ % this.pool.length;
    const firstDevice = byDevice.keys().next().value as string;
    let conn: MqttConnection;
    try {
      conn = await (this.pool[slot] ??= this.connect(firstDevice));
      if (conn.isClosed) {
        this.pool[slot] = undefined;
        conn = await (this.pool[slot] ??= this.connect(firstDevice));
      }
    } catch (err) {
      this.pool[slot] = undefined;
      const code = asErrorLike(err)?.code;
      // CONNACK 4 (bad username or password) or 5 (not authorized): what HTTP says with 401.
      if (code === 4 || code === 5) return { status: 401, body: JSON.stringify({ error: describe(err) }) };
      throw err instanceof TransportError ? err : new TransportError(describe(err), errorKind(err), err);
    }
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new TransportError(`no PUBACK within ${this.timeoutMs} ms`, 'timeout')),
        this.timeoutMs,
      );
    });
    try {
      const acks = [...byDevice].map(([device, lines]) =>
        conn.client.publishAsync(`telemetry/${device}`, ndjson ? lines.join('\n') + '\n' : `[${lines.join(',')}]`, {
          qos: 1,
        }),
      );
      await Promise.race([Promise.all(acks), conn.closed, timeout]);
    } catch (err) {
      // Whatever was in flight on this connection is unknown now: drop it, the next send connects afresh.
      conn.client.end(true); // the slot sees it closed and reconnects
      throw err instanceof TransportError ? err : new TransportError(describe(err), 'mqtt', err);
    } finally {
      clearTimeout(timer);
    }
    return answer(202, events.length - errors.length, errors);
  }

  private async connect(username: string): Promise<MqttConnection> {
    const client = await connectAsync(this.url, {
      username,
      password: this.token,
      clientId: `${username}-sim-${randomUUID().slice(0, 8)}`,
      reconnectPeriod: 0,
      connectTimeout: this.timeoutMs,
    });
    client.on('error', () => undefined); // surfaced through the close below
    const conn: MqttConnection = { client, closed: undefined as unknown as Promise<never>, isClosed: false };
    conn.closed = new Promise<never>((_, reject) =>
      client.once('close', () => {
        conn.isClosed = true;
        reject(new TransportError('the MQTT connection closed before every PUBACK came', 'mqtt-closed'));
      }),
    );
    conn.closed.catch(() => undefined);
    return conn;
  }

  async close(): Promise<void> {
    const conns = this.pool.splice(0);
    await Promise.all(
      conns.map((c) =>
        c?.then(
          (x) => x.client.endAsync(),
          () => undefined,
        ),
      ),
    );
  }
}

function answer(status: number, accepted: number, errors: { index: number; error: string }[]): TransportResponse {
  return { status, body: JSON.stringify({ accepted, rejected: errors.length, errors }) };
}

export function createTransport(o: TransportOptions): Transport {
  switch (o.kind) {
    case 'http':
      return (o.httpClient ?? 'node') === 'fetch' ? new FetchTransport(o) : new NodeHttpTransport(o);
    case 'mqtt':
      return new MqttTransport(o);
  }
}
