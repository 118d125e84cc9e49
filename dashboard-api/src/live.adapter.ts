import type { INestApplicationContext } from '@nestjs/common';
import { IoAdapter } from '@nestjs/platform-socket.io';
import type { IncomingMessage } from 'node:http';
import type { Server, ServerOptions } from 'socket.io';
import { Access } from './access.service';
import type { DashboardConfig } from './config';
import { DashboardConfigToken } from './tokens';

/**
 * Largest message a `/live` client may send, bytes (socket.io's maxHttpBufferSize: one WebSocket frame, or one
 * polling POST). A subscription is a few hundred bytes; past this the connection is closed before the message is
 * parsed, so a hostile client never gets more than this much of its input held.
 */
export const LiveMaxMessageBytes = 16 * 1024;
/** An engine.io connection that has not joined `/live` (socket.io's CONNECT, with its token) by then is closed. */
export const LiveConnectTimeoutMs = 10_000;

/**
 * The socket.io server of `/live`, locked down (the gateway's decorator can only hold static options):
 * - CORS headers only for FLEETPULSE_DASHBOARD_CORS_ORIGINS (none by default: no `Access-Control-Allow-Origin` at
 *   all, whatever the request's Origin);
 * - the handshake of a browser page from any other origin is refused (403) before a connection exists: CORS does not
 *   apply to WebSockets, so without this a page elsewhere could open one with the user's cookie (cross-site WebSocket
 *   hijacking; SameSite=Strict already keeps the cookie from other sites, this also covers sibling sub-domains);
 * - incoming messages bounded (LiveMaxMessageBytes), a short connect timeout, no client bundle served, and no socket
 *   on the main namespace `/` (it exists in every socket.io server; only `/live` serves).
 */
export class LiveIoAdapter extends IoAdapter {
  private readonly access: Access;
  private readonly config: DashboardConfig;

  constructor(app: INestApplicationContext) {
    super(app);
    this.access = app.get(Access);
    this.config = app.get<DashboardConfig>(DashboardConfigToken);
  }

  override createIOServer(port: number, options?: ServerOptions): Server {
    const origins = this.config.corsOrigins;
    const server = super.createIOServer(port, {
      ...options,
      ...(origins.length > 0 ? { cors: { origin: origins, credentials: true } } : { cors: undefined }),
      allowRequest: (req: IncomingMessage, cb: (err: string | null | undefined, ok: boolean) => void) => {
        const ok = this.access.originAllowed(req.headers.origin, req.headers.host);
        if (!ok) this.access.refused('live', 'origin');
        cb(ok ? null : 'origin not allowed', ok);
      },
      maxHttpBufferSize: LiveMaxMessageBytes,
      connectTimeout: LiveConnectTimeoutMs,
      serveClient: false,
    }) as Server;
    // socket.io's main namespace always exists and would hold a socket for anyone: only /live serves.
    server.use((_socket, next) => {
      this.access.refused('live', 'namespace');
      next(Object.assign(new Error('no such namespace: connect to /live'), { data: { status: 404 } }));
    });
    return server;
  }
}
