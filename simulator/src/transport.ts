/**
 * How a batch leaves the process. HTTP (POST /v1/telemetry) is implemented twice, on node:http with a keep-alive
 * agent and on Node's global fetch (undici); MQTT is a planned transport with the same interface.
 */
import * as http from 'node:http';
import * as https from 'node:https';
import { SimulatorError, TransportError } from './errors';

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

export function createTransport(o: TransportOptions): Transport {
  switch (o.kind) {
    case 'http':
      return (o.httpClient ?? 'node') === 'fetch' ? new FetchTransport(o) : new NodeHttpTransport(o);
    case 'mqtt':
      throw new SimulatorError(
        'transport "mqtt" is not implemented yet: only --transport http is available (MQTT support is planned)',
        { kind: 'config', retriable: false },
      );
  }
}
