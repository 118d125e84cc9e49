import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { IngestionConfig, TokenGrant } from './config';
import type { TokenTable } from './auth';
import { IngestionError, RecordTooLargeError } from './errors';
import { addressKey } from '@fleetpulse/runtime';
import type { Context, Tracing } from '@fleetpulse/runtime/tracing';
import { throttleReason, type RateLimits, type Throttled } from './limits';
import type { IngestionMetrics } from './metrics';
import type { IngestPipeline, PayloadFormat } from './pipeline';
import { endRequestSpan, startRequestSpan, type RequestSpan } from './tracing';

export interface HttpDeps {
  config: IngestionConfig;
  tokens: TokenTable;
  pipeline: IngestPipeline;
  metrics: IngestionMetrics;
  limits: RateLimits;
  /** Readiness: Kafka reachable and the producer connected. */
  isReady: () => boolean;
  /** Undefined: tracing off. */
  tracing?: Tracing;
}

class BodyTooLarge extends Error {}
class ClientAborted extends Error {}

/**
 * What a keep-alive connection already established, so that its next requests do not pay for it again: its
 * address's rate-limit key, and the Authorization header it last sent that named a valid token, with that grant.
 * Comparing a request's header with the one its own connection sent before tells the sender nothing it did not know,
 * and tokens are fixed at start-up, so the cached grant cannot go stale.
 */
interface Connection {
  address: string;
  authorization?: string;
  grant?: TokenGrant;
}

const connections = new WeakMap<Socket, Connection>();

function connectionOf(socket: Socket): Connection {
  let c = connections.get(socket);
  if (c === undefined) connections.set(socket, (c = { address: addressKey(socket.remoteAddress) }));
  return c;
}

/** A 202 without per-event errors, the common answer, written without JSON.stringify or a header object. */
function sendAccepted(res: ServerResponse, accepted: number, rejected: number): void {
  const payload = `{"accepted":${accepted},"rejected":${rejected},"errors":[]}`;
  res.writeHead(202, ['content-type', 'application/json', 'content-length', String(payload.length)]);
  res.end(payload);
}

function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const payload = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(payload),
    ...headers,
  });
  res.end(payload);
}

/** 429 with Retry-After: nothing of the request was read or accepted. */
function sendThrottled(res: ServerResponse, t: Throttled): number {
  send(
    res,
    429,
    { error: `${throttleReason(t)}; nothing of this request was accepted, retry after ${t.retryAfterSeconds} s` },
    { 'retry-after': String(t.retryAfterSeconds) },
  );
  return 429;
}

function formatOf(contentType: string | undefined): PayloadFormat | undefined {
  const mime = (contentType ?? '').split(';')[0]!.trim().toLowerCase();
  if (mime === 'application/json') return 'json';
  if (mime === 'application/x-ndjson') return 'ndjson';
  return undefined;
}

/** Reads the whole body, refusing more than `limit` bytes without buffering them. */
function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length']);
    if (Number.isFinite(declared) && declared > limit) return reject(new BodyTooLarge());
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        req.removeAllListeners('data');
        req.resume(); // drain the rest so the 413 can be written
        reject(new BodyTooLarge());
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size)));
    req.on('error', reject);
    req.on('aborted', () => reject(new ClientAborted('client aborted the request')));
  });
}

// A body that trickles in (one byte a second) is cut off after requestTimeoutMs with 408, by Node itself.
/** The HTTP door of ingestion (docs/contract.md, "Telemetry in"). */
export function createIngestionServer(deps: HttpDeps): Server {
  const { config, tokens, pipeline, metrics, limits } = deps;

  async function handleTelemetry(req: IncomingMessage, res: ServerResponse, trace?: Context): Promise<number> {
    const receivedAt = Date.now();
    if (req.method !== 'POST') {
      send(res, 405, { error: 'use POST' }, { allow: 'POST' });
      return 405;
    }
    // An address that failed too many logins is not heard (its token is not even looked up) until it cools down.
    const connection = connectionOf(req.socket);
    const address = connection.address;
    const blocked = limits.admitLogin(address);
    if (blocked) {
      req.resume();
      return sendThrottled(res, blocked);
    }
    const authorization = req.headers.authorization;
    let grant: TokenGrant | undefined;
    if (authorization !== undefined && authorization === connection.authorization) grant = connection.grant;
    else {
      grant = tokens.fromAuthorizationHeader(authorization);
      if (grant) {
        connection.authorization = authorization;
        connection.grant = grant;
      }
    }
    if (!grant) {
      limits.loginFailed(address);
      send(
        res,
        401,
        { error: 'missing or unknown bearer token: send Authorization: Bearer <token>' },
        { 'www-authenticate': 'Bearer' },
      );
      req.resume();
      return 401;
    }
    const overRate = limits.admit(grant.token);
    if (overRate) {
      req.resume();
      return sendThrottled(res, overRate);
    }
    const format = formatOf(req.headers['content-type']);
    if (!format) {
      send(res, 415, {
        error: `unsupported content type "${req.headers['content-type'] ?? ''}": use application/json or application/x-ndjson`,
      });
      req.resume();
      return 415;
    }
    let body: Buffer;
    try {
      body = await readBody(req, config.maxBodyBytes);
    } catch (e) {
      if (e instanceof BodyTooLarge) {
        send(res, 413, { error: `body over the limit of ${config.maxBodyBytes} bytes` }, { connection: 'close' });
        return 413;
      }
      throw e;
    }
    try {
      const outcome = await pipeline.ingest({ body, format, grant, source: 'http', receivedAt, trace });
      switch (outcome.kind) {
        case 'accepted':
          if (outcome.errors.length === 0) sendAccepted(res, outcome.accepted, outcome.rejected);
          else send(res, 202, { accepted: outcome.accepted, rejected: outcome.rejected, errors: outcome.errors });
          return 202;
        case 'unparseable':
          send(res, 400, { error: outcome.error, offset: outcome.offset });
          return 400;
        case 'too-many-events':
          send(res, 413, { error: `more than ${outcome.limit} events in one request` });
          return 413;
        case 'throttled':
          return sendThrottled(res, outcome);
      }
    } catch (e) {
      if (e instanceof RecordTooLargeError) {
        send(res, 413, { error: `${e.message}; nothing of this request was accepted` });
        return 413;
      }
      if (e instanceof IngestionError && e.retriable) {
        send(
          res,
          503,
          { error: `${e.message}; nothing of this request was accepted, retry later` },
          { 'retry-after': String(config.retryAfterSeconds) },
        );
        return 503;
      }
      throw e;
    }
  }

  // Node enforces requestTimeout only when it checks connections, every connectionsCheckingInterval.
  const serverOptions = {
    requestTimeout: config.requestTimeoutMs,
    headersTimeout: Math.min(config.requestTimeoutMs, 60_000),
    connectionsCheckingInterval: Math.min(1000, config.requestTimeoutMs),
    keepAliveTimeout: 65_000,
  };
  const server = createServer(serverOptions, (req, res) => {
    const started = process.hrtime.bigint();
    const path = (req.url ?? '/').split('?')[0];
    // A device's `traceparent` header makes its trace go on through the pipeline.
    const span: RequestSpan | undefined =
      deps.tracing && path === '/v1/telemetry'
        ? startRequestSpan(deps.tracing, 'POST /v1/telemetry', req.headers, {
            'http.request.method': req.method ?? '',
            'url.path': path,
          })
        : undefined;
    const done = (status: number) => {
      if (span) endRequestSpan(span, status);
      metrics.request(
        'http',
        String(status),
        path === '/v1/telemetry' ? Number(process.hrtime.bigint() - started) / 1e9 : undefined,
      );
    };
    const fail = (e: unknown) => {
      if (e instanceof ClientAborted) return done(499); // nothing to answer; the client is gone
      // A bug, not the client's fault: answer 500 and keep serving.
      console.error(`ingestion: ${req.method ?? ''} ${path ?? ''} failed:`, e);
      if (!res.headersSent) send(res, 500, { error: 'internal error' });
      else res.destroy();
      done(500);
    };
    switch (path) {
      case '/v1/telemetry':
        handleTelemetry(req, res, span?.context).then(done, fail);
        return;
      case '/healthz':
        send(res, 200, { status: 'ok' });
        return done(200);
      case '/readyz': {
        const ready = deps.isReady();
        send(res, ready ? 200 : 503, { status: ready ? 'ready' : 'kafka unavailable' });
        return done(ready ? 200 : 503);
      }
      case '/metrics':
        metrics.registry.metrics().then((text) => {
          res.writeHead(200, { 'content-type': metrics.registry.contentType });
          res.end(text);
          done(200);
        }, fail);
        return;
      default:
        send(res, 404, { error: `no route ${path ?? ''}; POST /v1/telemetry` });
        req.resume();
        return done(404);
    }
  });
  return server;
}
