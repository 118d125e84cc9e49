/** Normal deviates for the generator, drawn from the shared seeded PRNG (@fleetpulse/runtime's mulberry32). */
import { mulberry32, type Rng } from '@fleetpulse/runtime';

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
