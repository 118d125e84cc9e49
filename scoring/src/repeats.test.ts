import { RecentWindows, fingerprint, windowKey } from './repeats';

const bytes = (s: string) => Buffer.from(s);

describe('RecentWindows', () => {
  it('knows a window scored with the same bytes and models, not with other bytes or other models', () => {
    const r = new RecentWindows(10);
    const key = windowKey('d1', '10s', 1000);
    const fp = fingerprint(bytes('{"a":1}'), 'iforest@abc');
    r.remember(0, key, fp);
    expect(r.has(0, key, fp)).toBe(true);
    expect(r.has(0, key, fingerprint(bytes('{"a":2}'), 'iforest@abc'))).toBe(false);
    expect(r.has(0, key, fingerprint(bytes('{"a":1}'), 'iforest@def'))).toBe(false);
    expect(r.has(1, key, fp)).toBe(false); // another partition
    expect(r.has(0, windowKey('d1', '10s', 2000), fp)).toBe(false);
  });

  it('holds at most perPartition windows a partition, forgetting the least recently scored first', () => {
    const r = new RecentWindows(3);
    for (let i = 0; i < 3; i++) r.remember(0, windowKey('d', '1s', i), i);
    r.remember(0, windowKey('d', '1s', 0), 0); // scored again: now the newest
    r.remember(0, windowKey('d', '1s', 3), 3);
    expect(r.size(0)).toBe(3);
    expect([0, 1, 2, 3].map((i) => r.has(0, windowKey('d', '1s', i), i))).toEqual([true, false, true, true]);
  });

  it('remembers nothing with a window of 0, and forgets a dropped partition', () => {
    const off = new RecentWindows(0);
    off.remember(0, 'k', 1);
    expect(off.has(0, 'k', 1)).toBe(false);
    const r = new RecentWindows(5);
    r.remember(2, 'k', 1);
    r.drop(2);
    expect(r.has(2, 'k', 1)).toBe(false);
  });
});

describe('fingerprint', () => {
  it('is stable, 53-bit, and differs for a one-byte change', () => {
    const a = fingerprint(bytes('{"deviceId":"d","metrics":{"t":{"count":1}}}'), 'm@1');
    expect(fingerprint(bytes('{"deviceId":"d","metrics":{"t":{"count":1}}}'), 'm@1')).toBe(a);
    expect(Number.isSafeInteger(a)).toBe(true);
    expect(fingerprint(bytes('{"deviceId":"d","metrics":{"t":{"count":2}}}'), 'm@1')).not.toBe(a);
  });
});
