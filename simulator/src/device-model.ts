/**
 * What a healthy device reports: each device's parameters (level, daily cycle, slow drift and noise per metric),
 * drawn once from the fleet's PRNG, the readings they give at an event time, and the band those readings never
 * leave. Apart from the fleet's scheduling and impairments (fleet.ts) and from anomalies (anomalies.ts), which
 * only read it: this is the physics, and the band is what makes an anomaly's ground truth checkable.
 */
import type { Rng } from '@fleetpulse/runtime';
import { normal, NormalMax } from './normal';
import { MetricNames, PhysicalRange } from './fleet-types';

/** Metric indexes, in MetricNames order. */
export const M_TEMP = 0;
export const M_HUM = 1;
export const M_VIB = 2;
export const M_VOLT = 3;

const DAY_MS = 86_400_000;
const TWO_PI = 2 * Math.PI;
/** Rounding of reported values: 0.01 °C, 0.1 %, 0.001 g, 0.01 V. */
const Scale = [100, 10, 1000, 100] as const;
const PhysLo = MetricNames.map((m) => PhysicalRange[m][0]);
const PhysHi = MetricNames.map((m) => PhysicalRange[m][1]);

// Per-device parameters live in one Float64Array (100,000 devices would otherwise mean 800,000 small arrays).
// Per metric: base, daily amplitude, drift amplitude, drift phase, noise sigma, band low, band high, last value.
const P_BASE = 0;
const P_DAY = 1;
const P_DRIFT = 2;
const P_PHASE = 3;
const P_NOISE = 4;
const P_LO = 5;
const P_HI = 6;
const P_LAST = 7;
const PER_METRIC = 8;
const D_DAY_OFFSET = 4 * PER_METRIC;
const D_DRIFT_PERIOD = D_DAY_OFFSET + 1;
const STRIDE = D_DRIFT_PERIOD + 1;

/** A value of metric `m` as a device reports it: rounded to the sensor's resolution, inside its physical range. */
export function roundReading(v: number, m: number): number {
  const s = Scale[m]!;
  const r = Math.round(v * s) / s;
  return r < PhysLo[m]! ? PhysLo[m]! : r > PhysHi[m]! ? PhysHi[m]! : r;
}

export class DeviceModels {
  /** The latest `sample()`, per metric (anomalies overwrite their metric in it before it is reported). */
  readonly values = new Float64Array(4);
  private readonly p: Float64Array;

  /** Draws every device's parameters from `rng`, device 0 first. */
  constructor(
    devices: number,
    private readonly rng: Rng,
  ) {
    this.p = new Float64Array(devices * STRIDE);
    for (let i = 0; i < devices; i++) this.init(i);
  }

  /** The lower edge of device `i`'s normal band for metric `m` (see `high`). */
  low(i: number, m: number): number {
    return this.p[i * STRIDE + m * PER_METRIC + P_LO]!;
  }

  /**
   * The upper edge of the band device `i`'s normal readings of metric `m` never leave: daily cycle + drift + the
   * largest possible noise + rounding. Anything outside it is an injected anomaly.
   */
  high(i: number, m: number): number {
    return this.p[i * STRIDE + m * PER_METRIC + P_HI]!;
  }

  /** The last value device `i` reported for metric `m` (0 before its first reading). */
  last(i: number, m: number): number {
    return this.p[i * STRIDE + m * PER_METRIC + P_LAST]!;
  }

  setLast(i: number, temp: number, humidity: number, vib: number, volt: number): void {
    const pl = i * STRIDE + P_LAST;
    this.p[pl] = temp;
    this.p[pl + PER_METRIC] = humidity;
    this.p[pl + 2 * PER_METRIC] = vib;
    this.p[pl + 3 * PER_METRIC] = volt;
  }

  /** Normal readings of device `i` at `ts` into `values`: daily cycle (temp peaks when humidity dips), slow drift over days, noise. */
  sample(i: number, ts: number): void {
    const p = this.p;
    const r = this.rng;
    const v = this.values;
    const o = i * STRIDE;
    const dayPhase = (TWO_PI * ((((ts + p[o + D_DAY_OFFSET]!) % DAY_MS) + DAY_MS) % DAY_MS)) / DAY_MS;
    const s = Math.sin(dayPhase);
    const c = Math.cos(dayPhase);
    const slow = (TWO_PI * ts) / p[o + D_DRIFT_PERIOD]!;
    let b = o;
    v[M_TEMP] =
      p[b]! + p[b + P_DAY]! * s + p[b + P_DRIFT]! * Math.sin(slow + p[b + P_PHASE]!) + p[b + P_NOISE]! * normal(r);
    b += PER_METRIC;
    v[M_HUM] =
      p[b]! - p[b + P_DAY]! * s + p[b + P_DRIFT]! * Math.sin(slow + p[b + P_PHASE]!) + p[b + P_NOISE]! * normal(r);
    b += PER_METRIC;
    // Vibration follows the working day (machines run when it is warm) and wears up or down slowly.
    v[M_VIB] =
      p[b]! *
      (1 + p[b + P_DAY]! * (c > 0 ? c : 0)) *
      (1 + p[b + P_DRIFT]! * Math.sin(slow + p[b + P_PHASE]!)) *
      (1 + p[b + P_NOISE]! * normal(r));
    b += PER_METRIC;
    v[M_VOLT] =
      p[b]! + p[b + P_DAY]! * s + p[b + P_DRIFT]! * Math.sin(slow + p[b + P_PHASE]!) + p[b + P_NOISE]! * normal(r);
  }

  private init(i: number): void {
    const r = this.rng;
    const p = this.p;
    const o = i * STRIDE;
    p[o + D_DAY_OFFSET] = r() * DAY_MS;
    p[o + D_DRIFT_PERIOD] = (2 + 8 * r()) * DAY_MS;
    const set = (m: number, base: number, day: number, drift: number, noise: number): void => {
      const b = o + m * PER_METRIC;
      p[b + P_BASE] = base;
      p[b + P_DAY] = day;
      p[b + P_DRIFT] = drift;
      p[b + P_PHASE] = r() * TWO_PI;
      p[b + P_NOISE] = noise;
      const half = 0.5 / Scale[m]!;
      if (m === M_VIB) {
        p[b + P_LO] = base * (1 - drift) * (1 - noise * NormalMax) - half;
        p[b + P_HI] = base * (1 + day) * (1 + drift) * (1 + noise * NormalMax) + half;
      } else {
        const spread = day + drift + noise * NormalMax + half;
        p[b + P_LO] = base - spread;
        p[b + P_HI] = base + spread;
      }
    };
    set(M_TEMP, 15 + 13 * r(), 1 + 4 * r(), 1.5 * r(), 0.05 + 0.2 * r());
    set(M_HUM, 30 + 35 * r(), 3 + 9 * r(), 4 * r(), 0.3 + 0.7 * r());
    set(M_VIB, 0.02 + 0.38 * r(), 1.5 * r(), 0.3 * r(), 0.05 + 0.1 * r());
    set(M_VOLT, 11.9 + 0.9 * r(), 0.02 + 0.13 * r(), 0.2 * r(), 0.005 + 0.025 * r());
  }
}
