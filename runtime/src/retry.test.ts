import { backoffDelay, retry } from './retry';

describe('backoffDelay', () => {
  it('doubles from the initial delay up to the cap', () => {
    const full = (attempt: number) => backoffDelay(attempt, { initialMs: 100, maxMs: 1000, jitter: 0.5 }, () => 1);
    expect([0, 1, 2, 3, 4, 50].map(full)).toEqual([100, 200, 400, 800, 1000, 1000]);
  });

  it('draws the jittered share at random: between half and all of the delay at jitter 0.5', () => {
    expect(backoffDelay(2, { initialMs: 100, jitter: 0.5 }, () => 0)).toBe(200);
    expect(backoffDelay(2, { initialMs: 100, jitter: 0 }, () => 0)).toBe(400);
  });
});

describe('retry', () => {
  it('runs until the operation succeeds, reporting each failure', async () => {
    let calls = 0;
    const seen: number[] = [];
    const value = await retry(
      async () => {
        if (++calls < 4) throw new Error(`failure ${calls}`);
        return 'done';
      },
      { initialMs: 1, maxMs: 2, onRetry: (attempt) => seen.push(attempt) },
    );
    expect(value).toBe('done');
    expect(calls).toBe(4);
    expect(seen).toEqual([1, 2, 3]);
  });

  it('rethrows at once what bail says will never succeed', async () => {
    let calls = 0;
    const fatal = new Error('fatal');
    await expect(
      retry(
        async () => {
          calls++;
          throw fatal;
        },
        { initialMs: 1, bail: (e) => e === fatal },
      ),
    ).rejects.toBe(fatal);
    expect(calls).toBe(1);
  });
});
