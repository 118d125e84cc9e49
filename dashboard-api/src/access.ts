/**
 * Who may read what (docs/contract.md, "Dashboard API", access): dashboard tokens with a role and optional device
 * patterns, found by their SHA-256 digest in constant time, and the server-side sessions that `POST /api/login`
 * hands out as a cookie. No Nest here: `access.service.ts` wires it to the config, REST and socket.io.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { DevToken, globMatch, parseTokenEntries } from '@fleetpulse/contracts';

export type Role = 'viewer' | 'admin';

/**
 * The devices a token may see: every device (`patterns` null), or the ids matching one of its globs (the contracts'
 * `globMatch`, as ingestion matches them). `key` names the set (room names of the live fleet stream carry it): the
 * patterns sorted and joined by `,` (no pattern holds one).
 */
export class DeviceScope {
  static readonly All = new DeviceScope(null);
  readonly key: string;

  constructor(readonly patterns: readonly string[] | null) {
    this.key = patterns === null ? '' : [...patterns].sort().join(',');
  }

  get all(): boolean {
    return this.patterns === null;
  }

  allows(deviceId: string): boolean {
    return this.patterns === null || this.patterns.some((p) => globMatch(p, deviceId));
  }
}

/** One configured dashboard token; `id` names it without revealing anything of it (`<role>-<n>`: its place). */
export interface Grant {
  id: string;
  role: Role;
  scope: DeviceScope;
  /** SHA-256 of the token: the token itself is not kept. */
  digest: Buffer;
}

export const sha256 = (s: string): Buffer => createHash('sha256').update(s, 'utf8').digest();

/**
 * `tok1=sensor-*,tok2,tok1=pump-?` (ingestion's syntax): a token without `=glob` sees every device; a token listed
 * again adds its globs (listed once without one, it sees every device). Problems name the variable and the entry.
 */
export function parseTokenSpec(variable: string, spec: string, problems: string[]): Map<string, string[] | null> {
  const tokens = new Map<string, string[] | null>();
  for (const { token, glob, entry } of parseTokenEntries(variable, spec, problems)) {
    if (token === DevToken) {
      problems.push(`${variable} entry ${entry}: ${DevToken} is the public development token; choose another`);
      continue;
    }
    const had = tokens.get(token);
    if (glob === undefined || had === null) tokens.set(token, null);
    else tokens.set(token, had === undefined ? [glob] : [...new Set([...had, glob])]);
  }
  return tokens;
}

/** The id of the development token's grant. */
export const DevGrantId = 'development';

/** Builds the grants of both roles; a token in both lists is a problem (its role would be a guess). */
export function grantsOf(specs: { viewer: string; admin: string }, development: boolean, problems: string[]): Grant[] {
  const viewers = parseTokenSpec('FLEETPULSE_DASHBOARD_VIEWER_TOKENS', specs.viewer, problems);
  const admins = parseTokenSpec('FLEETPULSE_DASHBOARD_ADMIN_TOKENS', specs.admin, problems);
  const grants: Grant[] = [];
  const add = (token: string, role: Role, patterns: string[] | null, id?: string) => {
    const digest = sha256(token);
    grants.push({ id: id ?? `${role}-${grants.length + 1}`, role, scope: new DeviceScope(patterns), digest });
  };
  for (const [token, patterns] of viewers) {
    if (admins.has(token))
      problems.push('FLEETPULSE_DASHBOARD_VIEWER_TOKENS and _ADMIN_TOKENS name the same token: give it one role');
    else add(token, 'viewer', patterns);
  }
  for (const [token, patterns] of admins) add(token, 'admin', patterns);
  if (development) add(DevToken, 'admin', null, DevGrantId);
  return grants;
}

/**
 * Token lookup that leaks neither the token nor its length: the presented token is hashed, and its digest compared
 * with every grant's (crypto.timingSafeEqual on equal-length digests, no early exit), so the time depends only on the
 * number of grants.
 */
export class TokenBook {
  constructor(readonly grants: readonly Grant[]) {}

  find(token: string): Grant | undefined {
    const digest = sha256(token);
    let found: Grant | undefined;
    for (const g of this.grants) if (timingSafeEqual(g.digest, digest) && found === undefined) found = g;
    return found;
  }
}

export interface Session {
  grant: Grant;
  createdAt: number;
  expiresAt: number;
}

export interface SessionBounds {
  ttlMs: number;
  /** Sessions in all; a login past it is refused (SessionsFull) until one ends or expires. */
  max: number;
  /** Sessions of one token; a login past it ends that token's oldest session. */
  maxPerToken: number;
}

/** Every session slot is taken by a live session: the login is refused (503). */
export class SessionsFull extends Error {
  override name = 'SessionsFull';
}

/** A session id as the cookie carries it: 32 random bytes, base64url. */
const SessionIdPattern = /^[A-Za-z0-9_-]{43}$/;

/**
 * Server-side sessions, bounded. The map is keyed by the SHA-256 of the session id (the id itself is only in the
 * cookie), so a lookup's timing says nothing about ids. Sessions expire `ttlMs` after login (absolute, not sliding).
 * `onEnd` hears every session that ends (sign-out, expiry, eviction), so its live sockets can be closed.
 */
export class SessionStore {
  private readonly sessions = new Map<string, Session>();
  /** Per grant id, its session keys, oldest first (a Set keeps insertion order). */
  private readonly byGrant = new Map<string, Set<string>>();

  constructor(
    readonly bounds: SessionBounds,
    private readonly onEnd: (key: string, session: Session) => void = () => undefined,
    private readonly now: () => number = Date.now,
  ) {}

  get size(): number {
    return this.sessions.size;
  }

  /** A new session of `grant`: its id (for the cookie) and key (for the sockets that use it). */
  create(grant: Grant): { id: string; key: string; session: Session } {
    const now = this.now();
    const mine = this.byGrant.get(grant.id);
    if (mine && mine.size >= this.bounds.maxPerToken) this.end(mine.values().next().value!);
    if (this.sessions.size >= this.bounds.max) this.sweep();
    if (this.sessions.size >= this.bounds.max)
      throw new SessionsFull(`every one of the ${this.bounds.max} sessions is in use; try again later`);
    const id = randomBytes(32).toString('base64url');
    const key = sha256(id).toString('hex');
    const session: Session = { grant, createdAt: now, expiresAt: now + this.bounds.ttlMs };
    this.sessions.set(key, session);
    let set = this.byGrant.get(grant.id);
    if (!set) this.byGrant.set(grant.id, (set = new Set()));
    set.add(key);
    return { id, key, session };
  }

  /** The live session of a cookie's id, with its key; undefined for anything else (malformed, unknown, expired). */
  find(id: string): { key: string; session: Session } | undefined {
    if (!SessionIdPattern.test(id)) return undefined;
    const key = sha256(id).toString('hex');
    const session = this.sessions.get(key);
    if (!session) return undefined;
    if (session.expiresAt <= this.now()) {
      this.end(key);
      return undefined;
    }
    return { key, session };
  }

  end(key: string): void {
    const session = this.sessions.get(key);
    if (!session) return;
    this.sessions.delete(key);
    const set = this.byGrant.get(session.grant.id);
    set?.delete(key);
    if (set?.size === 0) this.byGrant.delete(session.grant.id);
    this.onEnd(key, session);
  }

  /** Ends every expired session (run on a timer, and before refusing a login). */
  sweep(): void {
    const now = this.now();
    for (const [key, s] of this.sessions) if (s.expiresAt <= now) this.end(key);
  }
}
