/**
 * Seeded randomness for the generator. mulberry32 is a 32-bit PRNG of a few integer operations: fast enough for
 * several draws per event at 250k events/s, and the same seed gives the same stream on every platform.
 */

/** A uniform source in [0, 1). */
export type Rng = () => number;

export function mulberry32(seed: number): Rng {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const NORMAL_BITS = 16;
const NORMAL_SIZE = 1 << NORMAL_BITS;

/**
 * Standard normal deviates, drawn once (Box-Muller, fixed seed) and then picked by index: one PRNG draw per noise
 * sample instead of a log, a sqrt and a cosine. Because the table is finite its largest deviate is known exactly,
 * which lets every device state a hard band its normal readings never leave (see `NormalMax`).
 */
const NormalTable: Float64Array = (() => {
  const rng = mulberry32(0x9e3779b9);
  const t = new Float64Array(NORMAL_SIZE);
  for (let i = 0; i < NORMAL_SIZE; i += 2) {
    const u1 = 1 - rng();
    const u2 = rng();
    const r = Math.sqrt(-2 * Math.log(u1));
    t[i] = r * Math.cos(2 * Math.PI * u2);
    t[i + 1] = r * Math.sin(2 * Math.PI * u2);
  }
  return t;
})();

/** The largest |deviate| `normal()` can return (about 4.5). */
export const NormalMax: number = NormalTable.reduce((m, v) => Math.max(m, Math.abs(v)), 0);

/** A standard normal deviate from one draw of `rng`, bounded by `NormalMax`. */
export function normal(rng: Rng): number {
  return NormalTable[(rng() * NORMAL_SIZE) | 0]!;
}
