import { addressKey, BucketTable } from './rate';

describe('BucketTable', () => {
  it('lets a key go while its bucket holds more than zero, takes what it spent afterwards, refills at its rate', () => {
    const t = new BucketTable<string>(100, 200, 10);
    expect(t.wait('a', 0)).toBe(0);
    t.spend('a', 150, 0); // 50 left
    expect(t.wait('a', 0)).toBe(0);
    t.spend('a', 450, 0); // a request is taken whole: 400 below zero
    expect(t.wait('a', 0)).toBe(4);
    expect(t.wait('a', 3500)).toBe(1); // 50 below zero: 0.5 s, said as a whole second
    expect(t.wait('a', 4001)).toBe(0);
    // Never more than the burst, however long it was quiet.
    t.spend('a', 0, 3_600_000);
    t.spend('a', 201, 3_600_000);
    expect(t.wait('a', 3_600_000)).toBe(1);
    expect(t.wait('b', 0)).toBe(0);
  });

  it('says at least one second while a bucket is empty', () => {
    const t = new BucketTable<string>(1e6, 10, 10);
    t.spend('a', 10, 0);
    expect(t.wait('a', 0)).toBe(1);
  });

  it('keeps at most maxKeys: forgets refilled buckets first, then the oldest, a tenth at a time', () => {
    const t = new BucketTable<number>(1, 10, 100);
    for (let k = 0; k < 100; k++) t.spend(k, k % 2 === 0 ? 10 : 1, 0);
    expect(t.size).toBe(100);
    // At 5 s the odd keys (1 spent) are full again; the even ones (10 spent) are at 5.
    t.spend(1000, 1, 5000);
    expect(t.size).toBe(51);
    expect(t.wait(0, 5000)).toBe(0);
    t.spend(0, 10, 5000); // key 0 is still tracked: its debt is kept
    expect(t.wait(0, 5000)).toBe(5);
    // Nothing refilled: the oldest go, down to 90 of 100.
    for (let k = 2000; k < 2049; k++) t.spend(k, 10, 5000);
    expect(t.size).toBe(100);
    t.spend(3000, 10, 5000);
    expect(t.size).toBe(91);
    expect(t.wait(0, 5000)).toBe(0); // forgotten (the oldest): it starts again with a full bucket
    expect(t.wait(3000, 5000)).toBe(1);
  });
});

describe('addressKey', () => {
  it.each([
    ['192.0.2.7', '192.0.2.7'],
    ['::ffff:192.0.2.7', '192.0.2.7'],
    ['2001:db8:1:2:3:4:5:6', '2001:db8:1:2::/64'],
    ['2001:0DB8:0001:0002:ffff::1', '2001:db8:1:2::/64'],
    ['2001:db8::1', '2001:db8:0:0::/64'],
    ['::1', '0:0:0:0::/64'],
    ['fe80::1:2:3:4', 'fe80:0:0:0::/64'],
  ])('%s -> %s', (address, key) => expect(addressKey(address)).toBe(key));

  it('takes two addresses of one /64 as one', () => {
    expect(addressKey('2001:db8:a:b:1::1')).toBe(addressKey('2001:db8:a:b:ffff:ffff:ffff:ffff'));
  });
});
