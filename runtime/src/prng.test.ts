import { mulberry32 } from './prng';

describe('mulberry32', () => {
  it('gives the stream the simulator, the tests and the benchmarks were built on, for a seed', () => {
    // Values of the generator as first written (simulator/src/prng.ts): a change here changes every seeded input.
    const r = mulberry32(42);
    expect([r(), r(), r()]).toEqual([0.6011037519201636, 0.44829055899754167, 0.8524657934904099]);
    const s = mulberry32(0xdeadbeef);
    expect([s(), s()]).toEqual([0.9413696140982211, 0.26719574979506433]);
  });

  it('stays in [0, 1)', () => {
    const r = mulberry32(7);
    for (let i = 0; i < 100_000; i++) {
      const x = r();
      expect(x >= 0 && x < 1).toBe(true);
    }
  });
});
