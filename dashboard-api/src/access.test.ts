import type * as NodeCrypto from 'node:crypto';
import {
  DeviceScope,
  globCovers,
  grantsOf,
  SessionSigner,
  SessionStore,
  SessionsFull,
  TokenBook,
  type Grant,
} from './access';

describe('DeviceScope', () => {
  it('holds every device, or those matching one of its patterns; its key names the pattern set', () => {
    expect(DeviceScope.All.allows('anything')).toBe(true);
    const s = new DeviceScope(['pump-*', 'acme-?']);
    expect(['pump-1', 'acme-x', 'acme-xy', 'other'].map((d) => s.allows(d))).toEqual([true, true, false, false]);
    expect(s.key).toBe(new DeviceScope(['acme-?', 'pump-*']).key);
    expect(new DeviceScope([]).allows('x')).toBe(false);
  });
});

describe('globCovers / DeviceScope.covers (alert rules of a device-limited token)', () => {
  it('is true only when every device the glob matches, the pattern matches too', () => {
    const yes: [string, string][] = [
      ['acme-*', 'acme-*'],
      ['acme-*', 'acme-pump-*'],
      ['acme-*', 'acme-?'],
      ['acme-*', 'acme-1'],
      ['*', '*'],
      ['a?c', 'abc'],
      ['a?c', 'a?c'],
      ['*-pump', 'acme-*-pump'],
    ];
    const no: [string, string][] = [
      ['acme-*', '*'],
      ['acme-*', 'acm*'],
      ['acme-?', 'acme-*'],
      ['a?c', 'a*c'],
      ['acme-1', 'acme-?'],
      ['acme-*', 'other-1'],
    ];
    for (const [p, g] of yes) expect([p, g, globCovers(p, g)]).toEqual([p, g, true]);
    for (const [p, g] of no) expect([p, g, globCovers(p, g)]).toEqual([p, g, false]);
    expect(DeviceScope.All.covers('*')).toBe(true);
    const s = new DeviceScope(['acme-*', 'pump-?']);
    expect(['acme-*', 'pump-1', 'pump-*', '*'].map((g) => s.covers(g))).toEqual([true, true, false, false]);
  });
});

describe('TokenBook', () => {
  const grants = grantsOf({ viewer: 'viewer-token-1=acme-*', admin: 'admin-token-1' }, false, []);
  const book = new TokenBook(grants);

  it('finds a token by its digest, and nothing for any other string', () => {
    expect(book.find('viewer-token-1')?.role).toBe('viewer');
    expect(book.find('admin-token-1')?.role).toBe('admin');
    for (const other of ['', 'viewer-token-', 'viewer-token-12', 'x'.repeat(10_000), 'dev-token'])
      expect(book.find(other)).toBeUndefined();
  });

  it('compares every digest whatever is presented (no early exit, no length)', () => {
    const compared: number[] = [];
    // The module object access.ts calls into (an `import *` here would be a copy).
    const spy = jest
      .spyOn(jest.requireActual<typeof NodeCrypto>('node:crypto'), 'timingSafeEqual')
      .mockImplementation((a, b) => {
        compared.push(a.byteLength, b.byteLength);
        return Buffer.compare(a as Buffer, b as Buffer) === 0;
      });
    try {
      book.find('viewer-token-1');
      book.find('short');
      book.find('y'.repeat(5000));
    } finally {
      spy.mockRestore();
    }
    // Two grants, three lookups: six comparisons, every one of two 32-byte digests.
    expect(compared).toEqual(Array.from({ length: 12 }, () => 32));
  });
});

describe('SessionStore', () => {
  const grant = (id: string): Grant => ({ id, role: 'viewer', scope: DeviceScope.All, digest: Buffer.alloc(32) });
  let now = 1_000_000;
  const ended: string[] = [];
  const store = (max: number, maxPerToken: number) =>
    new SessionStore(
      { ttlMs: 60_000, max, maxPerToken },
      (key) => ended.push(key),
      () => now,
    );

  beforeEach(() => {
    now = 1_000_000;
    ended.length = 0;
  });

  it('hands out random ids, keeps only their digests, and finds a live session by its id', () => {
    const s = store(10, 10);
    const a = s.create(grant('t1'));
    const b = s.create(grant('t1'));
    expect(a.id).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(a.id).not.toBe(b.id);
    expect(a.key).toMatch(/^[0-9a-f]{64}$/);
    expect(a.key).not.toContain(a.id);
    expect(s.find(a.id)?.session.grant.id).toBe('t1');
    expect(s.find(a.key)).toBeUndefined();
    expect(s.find('not-a-session-id')).toBeUndefined();
    expect(a.session.expiresAt).toBe(now + 60_000);
  });

  it('ends a session at its expiry (absolute), on find and on a sweep, and says so', () => {
    const s = store(10, 10);
    const a = s.create(grant('t1'));
    const b = s.create(grant('t1'));
    now += 59_999;
    expect(s.find(a.id)).toBeDefined();
    now += 1;
    expect(s.find(a.id)).toBeUndefined();
    expect(ended).toEqual([a.key]);
    s.sweep();
    expect(ended).toEqual([a.key, b.key]);
    expect(s.size).toBe(0);
  });

  it("ends a token's oldest session past its per-token bound, and no other token's", () => {
    const s = store(10, 2);
    const other = s.create(grant('t2'));
    const a = s.create(grant('t1'));
    const b = s.create(grant('t1'));
    const c = s.create(grant('t1'));
    expect(ended).toEqual([a.key]);
    expect([a, b, c, other].map((x) => s.find(x.id) !== undefined)).toEqual([false, true, true, true]);
  });

  it('refuses a login past the global bound once expired sessions are swept, until one ends', () => {
    const s = store(2, 10);
    const a = s.create(grant('t1'));
    s.create(grant('t2'));
    expect(() => s.create(grant('t3'))).toThrow(SessionsFull);
    expect(s.size).toBe(2);
    s.end(a.key);
    expect(s.create(grant('t3')).session.grant.id).toBe('t3');
    now += 60_000;
    // Both expired: swept to make room.
    expect(s.create(grant('t4')).session.grant.id).toBe('t4');
    expect(s.size).toBe(1);
  });

  describe('with a session secret (signed cookies)', () => {
    const grants = grantsOf({ viewer: 'viewer-token-1=acme-*', admin: 'admin-token-1' }, false, []);
    const secret = Buffer.from('x'.repeat(40));
    const signed = (g: readonly Grant[] = grants, key = secret) =>
      new SessionStore(
        { ttlMs: 60_000, max: 10, maxPerToken: 10 },
        (k) => ended.push(k),
        () => now,
        new SessionSigner(key, g),
      );

    it('takes a session back after a restart (a new store, same secret) until its expiry', () => {
      const a = signed().create(grants[0]!);
      expect(a.id).toMatch(/^[A-Za-z0-9_-]{43}\.[0-9a-z]+\.viewer-1\.[A-Za-z0-9_-]{43}$/);
      const restarted = signed();
      const found = restarted.find(a.id);
      expect(found?.session.grant.scope.patterns).toEqual(['acme-*']);
      expect(found?.key).toBe(a.key);
      expect(found?.session.expiresAt).toBe(a.session.expiresAt);
      now += 60_000;
      expect(signed().find(a.id)).toBeUndefined();
    });

    it('refuses a forged, altered or foreign cookie, a plain id, and a grant whose token changed', () => {
      const a = signed().create(grants[0]!);
      const [id, exp, , mac] = a.id.split('.') as [string, string, string, string];
      expect(signed().find(`${id}.${exp}.admin-2.${mac}`)).toBeUndefined();
      expect(signed().find(`${id}.${(now + 1e9).toString(36)}.viewer-1.${mac}`)).toBeUndefined();
      expect(signed(grants, Buffer.from('y'.repeat(40))).find(a.id)).toBeUndefined();
      expect(signed().find(id)).toBeUndefined();
      const rotated = grantsOf({ viewer: 'viewer-token-2=acme-*', admin: 'admin-token-1' }, false, []);
      expect(signed(rotated).find(a.id)).toBeUndefined();
    });

    it('does not take back a session signed out in this process', () => {
      const s = signed();
      const a = s.create(grants[1]!);
      s.end(a.key);
      expect(s.find(a.id)).toBeUndefined();
    });
  });
});
