/**
 * Injected anomalies: which kind a new one is and how large, what it does to a device's readings while it runs,
 * when it is over, and its ground truth. Apart from the normal readings (device-model.ts) and the fleet's
 * scheduling (fleet.ts) so that everything that makes a reading abnormal, and what the truth says of it, is here.
 */
import type { Rng } from '@fleetpulse/runtime';
import { normal } from './normal';
import { AnomalyKinds, MetricNames, type AnomalyKind, type AnomalyTruth } from './fleet-types';
import { M_HUM, M_TEMP, M_VIB, M_VOLT, roundReading, type DeviceModels } from './device-model';

/** Kind indexes, in AnomalyKinds order. */
const K_SPIKE = 0;
const K_STUCK = 1;
const K_DRIFT = 2;
const K_VIBBURST = 3;

export interface ActiveAnomaly {
  truth: AnomalyTruth;
  kind: number;
  metric: number;
  /** Last event time the anomaly covers (spike: unused, it counts readings). */
  until: number;
  remaining: number;
  value: number;
  durationMs: number;
}

/** What an anomaly needs to know of its device. */
export interface AnomalousDevice {
  index: number;
  id: string;
  /** Whether the device has reported before (a stuck sensor freezes its last value). */
  hasLast: boolean;
}

/** Whether a running anomaly is over by this reading: a spike once its readings are spent, the others after `until`. */
export function anomalyOver(a: ActiveAnomaly, ts: number): boolean {
  return a.kind === K_SPIKE ? a.remaining === 0 : ts > a.until;
}

/**
 * Counts a reading inside the anomaly, sent or lost: the truth's range grows to it. True when that was a spike's
 * last reading.
 */
export function coverReading(a: ActiveAnomaly, ts: number): boolean {
  a.truth.endTs = ts;
  a.truth.readings++;
  return a.kind === K_SPIKE && --a.remaining === 0;
}

export class AnomalyInjector {
  private nextId = 1;
  private readonly kinds: number[];

  /** Draws from the fleet's `rng` (the same stream as the readings, so one seed gives one fleet). */
  constructor(
    private readonly rng: Rng,
    kinds: readonly AnomalyKind[],
    private readonly intervalMs: number,
    private readonly models: DeviceModels,
  ) {
    this.kinds = kinds.map((k) => AnomalyKinds.indexOf(k));
  }

  /** Whether any kind may start. */
  get enabled(): boolean {
    return this.kinds.length > 0;
  }

  /** A new anomaly of the device, starting with its reading at `ts`. */
  start(d: AnomalousDevice, ts: number): ActiveAnomaly {
    const r = this.rng;
    const kind = this.kinds[(r() * this.kinds.length) | 0]!;
    const interval = this.intervalMs;
    let metric: number;
    let durationMs = 0;
    let remaining = 0;
    if (kind === K_VIBBURST) metric = M_VIB;
    else if (kind === K_DRIFT) metric = [M_TEMP, M_HUM, M_VOLT][(r() * 3) | 0]!;
    else metric = (r() * 4) | 0;
    const lo = this.models.low(d.index, metric);
    const hi = this.models.high(d.index, metric);
    const up = r() < 0.5;
    const u = r();
    let value = 0;
    switch (kind) {
      case K_SPIKE:
        remaining = 1 + ((r() * 3) | 0);
        if (metric === M_TEMP) value = up ? hi + 5 + (hi - lo) * (0.5 + u) : lo - 5 - (hi - lo) * (0.5 + u);
        else if (metric === M_HUM) value = 100 - hi >= lo ? hi + (100 - hi) * (0.4 + 0.5 * u) : lo * (0.6 - 0.5 * u);
        else if (metric === M_VIB) value = hi * (3 + 7 * u);
        else value = up ? hi + 0.5 + 1.5 * u : lo - 0.5 - 1.5 * u;
        value = roundReading(value, metric);
        break;
      case K_STUCK:
        durationMs = Math.max(30_000 + 270_000 * u, 5 * interval);
        if (d.hasLast) value = this.models.last(d.index, metric);
        else {
          this.models.sample(d.index, ts);
          value = roundReading(this.models.values[metric]!, metric);
        }
        break;
      case K_DRIFT: {
        durationMs = Math.max(60_000 + 540_000 * u, 10 * interval);
        // Even the last reading before the planned end (>= 90% of the ramp) ends up outside the band.
        const size = (1.25 + 0.5 * r()) * (hi - lo);
        const goUp = metric === M_HUM ? 100 - hi >= lo : up;
        value = goUp ? size : -size;
        break;
      }
      default:
        durationMs = Math.max(10_000 + 110_000 * u, 3 * interval);
        value = 2 + 4 * r();
    }
    const truth: AnomalyTruth = {
      id: this.nextId++,
      deviceId: d.id,
      kind: AnomalyKinds[kind]!,
      metrics: [MetricNames[metric]!],
      startTs: ts,
      endTs: ts,
      readings: 0,
      magnitude: kind === K_DRIFT || kind === K_VIBBURST ? Math.round(value * 1000) / 1000 : value,
    };
    return { truth, kind, metric, until: ts + durationMs, remaining, value, durationMs };
  }

  /**
   * Overwrites the anomaly's metric in the device's sampled `values` at this reading, and counts the reading in its
   * truth; true when that was a spike's last reading.
   */
  apply(a: ActiveAnomaly, deviceIndex: number, ts: number): boolean {
    const v = this.models.values;
    const m = a.metric;
    switch (a.kind) {
      case K_SPIKE:
      case K_STUCK:
        v[m] = a.value;
        break;
      case K_DRIFT:
        v[m] = v[m]! + (a.value * (ts - a.truth.startTs)) / a.durationMs;
        break;
      default:
        v[m] = this.models.high(deviceIndex, m) * a.value * (1 + 0.25 * Math.abs(normal(this.rng)));
    }
    return coverReading(a, ts);
  }
}
