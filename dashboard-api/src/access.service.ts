import { Inject, Injectable, Logger, type OnModuleDestroy } from '@nestjs/common';
import { DevToken } from '@fleetpulse/contracts';
import { addressKey, BucketTable } from '@fleetpulse/runtime';
import { DevGrantId, DeviceScope, SessionSigner, SessionStore, TokenBook, type Grant, type Role } from './access';
import type { DashboardConfig } from './config';
import { DashboardMetrics } from './metrics.service';
import { DashboardConfigToken } from './tokens';
import type { SessionInfo } from './wire';

/** Who is calling: the grant of the token they showed, directly or through a session. */
export interface Principal {
  /** Its role and device scope. */
  grant: Grant;
  /** How: a bearer token (header or socket.io `auth`), or the session cookie (then its key and expiry). */
  via: 'token' | 'session';
  session?: { key: string; expiresAt: number };
}

/** What a request or socket handshake carries that may authenticate it. */
export interface Credentials {
  /** The `Authorization` header. */
  authorization?: string | undefined;
  /** The `Cookie` header. */
  cookie?: string | undefined;
  /** socket.io's `auth.token`. */
  token?: unknown;
}

export const SessionCookie = 'fleetpulse_session';

/** Why a request carries no usable credential: answered 401 with this. */
export type Refusal = 'no token' | 'unknown token' | 'no session (signed out or expired)';

/** The value of cookie `name` in a Cookie header (the first, as browsers send the most specific first). */
export function cookieValue(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

/** `Bearer <token>` (scheme case-insensitive); undefined for any other form. */
function bearer(header: string | undefined): string | undefined {
  const m = header === undefined ? null : /^Bearer +(\S+) *$/i.exec(header);
  return m ? m[1] : undefined;
}

/** Who is signed in (GET /api/session, a login's answer): role and device patterns, never the token. */
export const sessionInfo = (grant: Grant, via: Principal['via'], expiresAt: number | null): SessionInfo => ({
  role: grant.role,
  devices: grant.scope.patterns === null ? null : [...grant.scope.patterns],
  via,
  expiresAt,
});

/**
 * Access for REST and `/live` alike: tokens (found by digest in constant time), sessions (bounded, expiring), and
 * the origins a browser page may call from. The start-up log says how many tokens of each role exist and, in
 * development, that the dev token is an admin for every device.
 */
@Injectable()
export class Access implements OnModuleDestroy {
  private readonly log = new Logger('Access');
  private readonly book: TokenBook;
  readonly sessions: SessionStore;
  private readonly sweeper: NodeJS.Timeout;
  private readonly ended = new Set<(key: string) => void>();
  /** Every device scope a token has, by key: the live fleet rooms name them. */
  readonly scopes = new Map<string, DeviceScope>([['', DeviceScope.All]]);
  private readonly origins: ReadonlySet<string>;
  /** Failed logins by source address (undefined: no limit). */
  private readonly failures: BucketTable<string> | undefined;

  constructor(
    @Inject(DashboardConfigToken) private readonly config: DashboardConfig,
    private readonly metrics: DashboardMetrics,
  ) {
    this.book = new TokenBook(config.grants);
    for (const g of config.grants) if (!g.scope.all) this.scopes.set(g.scope.key, g.scope);
    this.origins = new Set(config.corsOrigins);
    const lf = config.loginFailures;
    this.failures =
      lf.perMinute > 0 ? new BucketTable<string>(lf.perMinute / 60, lf.burst, lf.maxAddresses) : undefined;
    this.sessions = new SessionStore(
      { ttlMs: config.sessionTtlMs, max: config.maxSessions, maxPerToken: config.maxSessionsPerToken },
      (key) => {
        this.metrics.sessions.set(this.sessions.size);
        for (const fn of this.ended) fn(key);
      },
      Date.now,
      config.sessionSecret ? new SessionSigner(config.sessionSecret, config.grants) : undefined,
    );
    this.sweeper = setInterval(() => this.sessions.sweep(), 15_000);
    this.sweeper.unref();
    const count = (role: Role) => config.grants.filter((g) => g.role === role && g.id !== DevGrantId).length;
    const limited = config.grants.filter((g) => !g.scope.all).length;
    this.log.log(
      `dashboard tokens: ${count('admin')} admin, ${count('viewer')} viewer (${limited} limited to device patterns); CORS origins: ${config.corsOrigins.join(', ') || 'none (same origin only)'}`,
    );
    if (config.development)
      this.log.warn(`development (FLEETPULSE_ENV=development): the token "${DevToken}" is an admin for every device`);
  }

  /**
   * Seconds the address must wait before it may try again (0: it may now): past its failed logins, every request of
   * it is refused without looking at its credential, so a guess right after the bound cannot be told from a wrong one.
   */
  throttled(remoteAddress: string | undefined): number {
    return this.failures?.wait(addressKey(remoteAddress), Date.now()) ?? 0;
  }

  /** A wrong token or session from the address (a request with no credential at all is no login). */
  loginFailed(remoteAddress: string | undefined): void {
    this.failures?.spend(addressKey(remoteAddress), 1, Date.now());
  }

  /** Counts a refusal (fleetpulse_dashboard_access_denied_total). */
  refused(door: 'http' | 'live', reason: string): void {
    this.metrics.denied.inc({ door, reason });
  }

  /** Calls `fn` with the key of every session that ends (sign-out, expiry, eviction). */
  onSessionEnd(fn: (key: string) => void): void {
    this.ended.add(fn);
  }

  /**
   * The caller, or why not. A bearer token (header, or socket.io's `auth.token`) is used when given, right or wrong;
   * otherwise the session cookie.
   */
  authenticate(c: Credentials): Principal | Refusal {
    const token = c.token ?? (c.authorization === undefined ? undefined : (bearer(c.authorization) ?? null));
    if (token !== undefined) {
      const grant = typeof token === 'string' ? this.book.find(token) : undefined;
      return grant ? { grant, via: 'token' } : 'unknown token';
    }
    const id = cookieValue(c.cookie, SessionCookie);
    if (id === undefined) return 'no token';
    const found = this.sessions.find(id);
    if (!found) return 'no session (signed out or expired)';
    const { grant, expiresAt } = found.session;
    return { grant, via: 'session', session: { key: found.key, expiresAt } };
  }

  /** The grant of a token shown at login; undefined when it is none. */
  grantOf(token: string): Grant | undefined {
    return this.book.find(token);
  }

  /** A new session of `grant` (SessionsFull when every slot is live) and the Set-Cookie value that carries it. */
  login(grant: Grant): { info: SessionInfo; cookie: string } {
    const { id, session } = this.sessions.create(grant);
    this.metrics.sessions.set(this.sessions.size);
    const maxAge = Math.floor(this.config.sessionTtlMs / 1000);
    return { info: sessionInfo(grant, 'session', session.expiresAt), cookie: this.cookie(id, maxAge) };
  }

  /** The Set-Cookie value that removes the session cookie. */
  get clearCookie(): string {
    return this.cookie('', 0);
  }

  /**
   * HttpOnly (no script reads it), SameSite=Strict (no other site's page or link sends it: the dashboard's `index.html`
   * and assets are public, so a link from elsewhere loses nothing), Path=/ (REST and socket.io), Secure when set.
   */
  private cookie(value: string, maxAge: number): string {
    return `${SessionCookie}=${value}; Path=/; Max-Age=${maxAge}; HttpOnly; SameSite=Strict${this.config.cookieSecure ? '; Secure' : ''}`;
  }

  /**
   * May a browser page of `origin` call the dashboard? Yes for its own origin (the request's Host), for a configured
   * CORS origin, and when there is no Origin header (not a browser page: curl, a server, socket.io-client in Node).
   */
  originAllowed(origin: string | undefined, host: string | undefined): boolean {
    if (origin === undefined) return true;
    if (this.origins.has(origin)) return true;
    try {
      return host !== undefined && new URL(origin).host === host;
    } catch {
      return false;
    }
  }

  onModuleDestroy(): void {
    clearInterval(this.sweeper);
  }
}
