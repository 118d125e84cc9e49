/**
 * Who may read what (docs/contract.md, "Dashboard API", access): dashboard tokens with a role and optional device
 * patterns, found by their SHA-256 digest in constant time, and the server-side sessions that `POST /api/login`
 * hands out as a cookie. No Nest here: `access.service.ts` wires it to the config, REST and socket.io.
 */
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
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

  /**
   * Whether every device that `glob` (an alert rule's `devices`) can match is one of this scope's: the scope is all,
   * or one of its patterns covers the glob (globCovers). Sound, not complete: a rule it refuses may still only match
   * the scope's devices (then name them as the token's patterns do).
   */
  covers(glob: string): boolean {
    return this.patterns === null || this.patterns.some((p) => globCovers(p, glob));
  }
}

/**
 * True when every string `glob` matches, `pattern` matches too (both of `*` and `?`): `glob` read as a pattern of
 * symbols must match `pattern`, where a `*` of `pattern` takes any run of symbols, its `?` one literal or `?`, and a
 * literal only itself. A table of (pattern, glob) prefixes: at most 129 x 129 cells for 128-character globs.
 */
export function globCovers(pattern: string, glob: string): boolean {
  const n = pattern.length;
  const m = glob.length;
  // row[j]: pattern[0, i) covers glob[0, j).
  let row = new Array<boolean>(m + 1).fill(false);
  row[0] = true;
  for (let i = 1; i <= n; i++) {
    const p = pattern[i - 1];
    const next = new Array<boolean>(m + 1).fill(false);
    next[0] = p === '*' && row[0]!;
    for (let j = 1; j <= m; j++) {
      const g = glob[j - 1];
      if (p === '*') next[j] = row[j]! || next[j - 1]!;
      else if (p === '?') next[j] = g !== '*' && row[j - 1]!;
      else next[j] = g === p && row[j - 1]!;
    }
    row = next;
  }
  return row[m]!;
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
/** A signed one (with a session secret): `<id>.<expiresAt, base 36>.<grant id>.<HMAC-SHA256, base64url>`. */
const SignedSessionPattern = /^([A-Za-z0-9_-]{43})\.([0-9a-z]{1,12})\.([a-z]+(?:-[0-9]+)?)\.([A-Za-z0-9_-]{43})$/;

/**
 * Signs session cookies so that a session outlives a restart of the API: with a secret (at least 32 bytes), the cookie
 * also carries its expiry and grant, under an HMAC-SHA256 of them and of the grant's token digest. A restarted API
 * (same secret) takes back a cookie whose signature holds, whose expiry has not passed and whose grant still exists
 * with the same token. What a restart forgets: which sessions were signed out (their browsers dropped the cookie).
 */
export class SessionSigner {
  constructor(
    private readonly secret: Buffer,
    private readonly grants: readonly Grant[],
  ) {}

  private mac(id: string, expiresAt: string, grant: Grant): Buffer {
    return createHmac('sha256', this.secret)
      .update(`${id}.${expiresAt}.${grant.id}.${grant.digest.toString('hex')}`)
      .digest();
  }

  sign(id: string, session: Session): string {
    const exp = session.expiresAt.toString(36);
    return `${id}.${exp}.${session.grant.id}.${this.mac(id, exp, session.grant).toString('base64url')}`;
  }

  /** The id, grant and expiry of a signed cookie value whose signature holds; undefined for anything else. */
  verify(value: string): { id: string; grant: Grant; expiresAt: number } | undefined {
    const m = SignedSessionPattern.exec(value);
    if (!m) return undefined;
    const [, id, exp, grantId, mac] = m as unknown as [string, string, string, string, string];
    const grant = this.grants.find((g) => g.id === grantId);
    if (!grant) return undefined;
    const given = Buffer.from(mac, 'base64url');
    const want = this.mac(id, exp, grant);
    if (given.length !== want.length || !timingSafeEqual(given, want)) return undefined;
    return { id, grant, expiresAt: parseInt(exp, 36) };
  }
}

/**
 * Server-side sessions, bounded. The map is keyed by the SHA-256 of the session id (the id itself is only in the
 * cookie), so a lookup's timing says nothing about ids. Sessions expire `ttlMs` after login (absolute, not sliding).
 * `onEnd` hears every session that ends (sign-out, expiry, eviction), so its live sockets can be closed.
 */
export class SessionStore {
  private readonly sessions = new Map<string, Session>();
  /** Per grant id, its session keys, oldest first (a Set keeps insertion order). */
  private readonly byGrant = new Map<string, Set<string>>();
  /**
   * With a signer: sessions ended (signed out, evicted) before their expiry, by key, so their signed cookies are not
   * taken back while this process runs; at most `bounds.max`, oldest forgotten first.
   */
  private readonly ended = new Map<string, number>();

  constructor(
    readonly bounds: SessionBounds,
    private readonly onEnd: (key: string, session: Session) => void = () => undefined,
    private readonly now: () => number = Date.now,
    /** With a signer, cookies are signed and a session survives a restart of the API (SessionSigner). */
    private readonly signer?: SessionSigner,
  ) {}

  get size(): number {
    return this.sessions.size;
  }

  /** A new session of `grant`: the cookie's value (`id`) and key (for the sockets that use it). */
  create(grant: Grant): { id: string; key: string; session: Session } {
    const { id, key, session } = this.add(grant, randomBytes(32).toString('base64url'), this.now() + this.bounds.ttlMs);
    return { id: this.signer ? this.signer.sign(id, session) : id, key, session };
  }

  private add(grant: Grant, id: string, expiresAt: number): { id: string; key: string; session: Session } {
    const now = this.now();
    const mine = this.byGrant.get(grant.id);
    if (mine && mine.size >= this.bounds.maxPerToken) this.end(mine.values().next().value!);
    if (this.sessions.size >= this.bounds.max) this.sweep();
    if (this.sessions.size >= this.bounds.max)
      throw new SessionsFull(`every one of the ${this.bounds.max} sessions is in use; try again later`);
    const key = sha256(id).toString('hex');
    const session: Session = { grant, createdAt: now, expiresAt };
    this.sessions.set(key, session);
    let set = this.byGrant.get(grant.id);
    if (!set) this.byGrant.set(grant.id, (set = new Set()));
    set.add(key);
    return { id, key, session };
  }

  /** The live session of a cookie's id, with its key; undefined for anything else (malformed, unknown, expired). */
  find(value: string): { key: string; session: Session } | undefined {
    const signed = this.signer?.verify(value);
    const id = signed?.id ?? value;
    if (!signed && (this.signer || !SessionIdPattern.test(id))) return undefined;
    const key = sha256(id).toString('hex');
    let session = this.sessions.get(key);
    if (!session && signed && signed.expiresAt > this.now() && !this.ended.has(key)) {
      // Signed by this secret before a restart: taken back (within the bounds, as a login is).
      try {
        session = this.add(signed.grant, signed.id, signed.expiresAt).session;
      } catch (e) {
        if (!(e instanceof SessionsFull)) throw e;
        return undefined;
      }
    }
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
    if (this.signer && session.expiresAt > this.now()) {
      this.ended.set(key, session.expiresAt);
      if (this.ended.size > this.bounds.max) this.ended.delete(this.ended.keys().next().value!);
    }
    const set = this.byGrant.get(session.grant.id);
    set?.delete(key);
    if (set?.size === 0) this.byGrant.delete(session.grant.id);
    this.onEnd(key, session);
  }

  /** Ends every expired session (run on a timer, and before refusing a login). */
  sweep(): void {
    const now = this.now();
    for (const [key, s] of this.sessions) if (s.expiresAt <= now) this.end(key);
    for (const [key, expiresAt] of this.ended) if (expiresAt <= now) this.ended.delete(key);
  }
}
