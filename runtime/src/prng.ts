/** A uniform source in [0, 1). */
export type Rng = () => number;

/**
 * mulberry32: a 32-bit PRNG of a few integer operations. Fast enough for several draws per event at 250k events/s,
 * and one seed gives one stream on every platform, so a test's or a benchmark's input is the same on every run.
 */
export function mulberry32(seed: number): Rng {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
