import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/**
 * One Prometheus registry per service instance (tests run several in one process), and short constructors for its
 * metrics, so a service's metrics class is a list of names and helps rather than of registrations.
 */
export class ServiceRegistry {
  readonly registry = new Registry();

  constructor(defaultMetricsPrefix?: string) {
    if (defaultMetricsPrefix !== undefined)
      collectDefaultMetrics({ register: this.registry, prefix: defaultMetricsPrefix });
  }

  counter<L extends string = never>(name: string, help: string, labelNames: readonly L[] = []): Counter<L> {
    return new Counter({ name, help, labelNames, registers: [this.registry] });
  }

  gauge<L extends string = never>(name: string, help: string, labelNames: readonly L[] = []): Gauge<L> {
    return new Gauge({ name, help, labelNames, registers: [this.registry] });
  }

  histogram<L extends string = never>(
    name: string,
    help: string,
    buckets: number[],
    labelNames: readonly L[] = [],
  ): Histogram<L> {
    return new Histogram({ name, help, buckets, labelNames, registers: [this.registry] });
  }
}

export interface OpsServerOptions {
  host: string;
  /** 0: any free port (tests). */
  port: number;
  registry: Registry;
  /**
   * /readyz answers 200 while this is true (or `{ ready: true, ... }`), 503 otherwise; the other fields of an object
   * answer (e.g. which dependency is down) go into the JSON body.
   */
  ready: () => boolean | Readiness | Promise<boolean | Readiness>;
  /** More routes (e.g. scoring's /api/models); return false when the path is not one of them. */
  route?: (path: string, req: IncomingMessage, res: ServerResponse) => boolean;
}

/** A readiness answer with details: `ready` decides the status; the rest is shown. */
export interface Readiness {
  ready: boolean;
  [detail: string]: unknown;
}

export interface OpsServer {
  server: Server;
  port: number;
}

/** /healthz (the process answers), /readyz (it can do its work), /metrics (Prometheus), and a service's extras. */
export async function startOpsServer(o: OpsServerOptions): Promise<OpsServer> {
  const json = (res: ServerResponse, status: number, body: unknown) =>
    void res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    if (path === '/healthz') return json(res, 200, { status: 'ok' });
    if (path === '/readyz') {
      Promise.resolve()
        .then(o.ready)
        .then(
          (answer) => {
            const { ready, ...details } = typeof answer === 'boolean' ? { ready: answer } : answer;
            json(res, ready ? 200 : 503, { status: ready ? 'ready' : 'not ready', ...details });
          },
          () => json(res, 503, { status: 'not ready' }),
        );
      return;
    }
    if (path === '/metrics') {
      o.registry.metrics().then(
        (text) => res.writeHead(200, { 'content-type': o.registry.contentType }).end(text),
        () => res.writeHead(500).end(),
      );
      return;
    }
    if (o.route?.(path, req, res)) return;
    json(res, 404, { error: `no route ${path}` });
  });
  server.listen(o.port, o.host);
  await once(server, 'listening');
  return { server, port: (server.address() as AddressInfo).port };
}
