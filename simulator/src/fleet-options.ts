/**
 * What a fleet can be asked for, its defaults, and every check of a request: apart from the generator so that the
 * CLI (config.ts) can validate and describe options without building a fleet.
 */
import { AnomalyKinds, type AnomalyKind } from './fleet-types';

export interface FleetOptions {
  /** Number of devices, 1 to 100,000. */
  devices: number;
  /** PRNG seed (uint32). Same seed and options give the same events. [1] */
  seed?: number;
  /** Event time of the first reading, epoch ms. [Date.now()] */
  start?: number;
  /** Readings per second of event time across the fleet; each device reads every devices/rate s. [devices] */
  rate?: number;
  /** Most events per batch. [500] */
  batchSize?: number;
  /** Devices are split over this many lanes (device index mod lanes); a batch holds one lane's devices. [1] */
  lanes?: number;
  /** A batch is closed once it spans this much event time, so slow fleets still send promptly (ms). [Infinity] */
  maxBatchSpanMs?: number;
  /** Stop after this many readings have been emitted (retry resends not counted). [unbounded] */
  maxEvents?: number;
  /** Stop after this much event time (ms). [unbounded] */
  durationMs?: number;
  /** Device ids are this prefix and a zero-padded index. ['sim-'] */
  devicePrefix?: string;
  /** Per reading: held back and sent after the device's next reading. [0.005] */
  outOfOrderRate?: number;
  /** Per reading: held back 5-15 s of event time, then sent. [0.0005] */
  lateRate?: number;
  /** Per batch: the batch is sent a second time, unchanged. [0.001] */
  retryRate?: number;
  /** Per reading: the reading is lost. [0.001] */
  dropoutRate?: number;
  /** Per reading: one metric is missing from the event. [0.001] */
  metricDropoutRate?: number;
  /** Per reading: the device goes offline, buffers, and uploads the backlog when back. [0.00002] */
  offlineRate?: number;
  /** Mean offline period (ms); each lasts 0.5x to 1.5x this. [120000] */
  offlineDurationMs?: number;
  /** Per reading of a device with no anomaly running: an anomaly starts with this reading. [0.0005] */
  anomalyRate?: number;
  /** Kinds to inject, picked uniformly. [all] */
  anomalyKinds?: readonly AnomalyKind[];
}

export const FleetDefaults = {
  seed: 1,
  batchSize: 500,
  lanes: 1,
  maxBatchSpanMs: Infinity,
  devicePrefix: 'sim-',
  outOfOrderRate: 0.005,
  lateRate: 0.0005,
  retryRate: 0.001,
  dropoutRate: 0.001,
  metricDropoutRate: 0.001,
  offlineRate: 0.00002,
  offlineDurationMs: 120_000,
  anomalyRate: 0.0005,
  anomalyKinds: AnomalyKinds,
} as const;

/** The options with a default, filled in (start, rate and the limits are resolved by the fleet itself). */
export type ResolvedFleetOptions = Required<Omit<FleetOptions, 'start' | 'rate' | 'maxEvents' | 'durationMs'>>;

/** The options over their defaults; a RangeError naming every problem when they are unusable. */
export function resolveFleetOptions(options: FleetOptions): ResolvedFleetOptions {
  const errors = validateFleetOptions(options);
  if (errors.length > 0) throw new RangeError(`invalid fleet options: ${errors.join('; ')}`);
  const given = Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined)) as Partial<FleetOptions>;
  return { ...FleetDefaults, ...given, devices: options.devices };
}

function checkRate(errors: string[], name: string, v: number | undefined): void {
  if (v !== undefined && !(v >= 0 && v <= 1)) errors.push(`${name} must be between 0 and 1, got ${v}`);
}

/** Every problem with the options, as messages; empty when they are usable. */
export function validateFleetOptions(o: FleetOptions): string[] {
  const errors: string[] = [];
  if (!Number.isInteger(o.devices) || o.devices < 1 || o.devices > 100_000)
    errors.push(`devices must be an integer from 1 to 100000, got ${o.devices}`);
  const rate = o.rate ?? o.devices;
  if (!(rate > 0) || !Number.isFinite(rate)) errors.push(`rate must be a positive number of events/s, got ${rate}`);
  else if (rate / o.devices > 1000)
    errors.push(`rate ${rate}/s over ${o.devices} devices is over 1000 readings/s per device (1 per ms)`);
  if (o.seed !== undefined && !(Number.isInteger(o.seed) && o.seed >= 0 && o.seed <= 0xffffffff))
    errors.push(`seed must be an integer from 0 to 4294967295, got ${o.seed}`);
  if (o.start !== undefined && !Number.isFinite(o.start)) errors.push(`start must be epoch ms, got ${o.start}`);
  if (o.batchSize !== undefined && !(Number.isInteger(o.batchSize) && o.batchSize >= 1))
    errors.push(`batchSize must be a positive integer, got ${o.batchSize}`);
  if (o.lanes !== undefined && !(Number.isInteger(o.lanes) && o.lanes >= 1))
    errors.push(`lanes must be a positive integer, got ${o.lanes}`);
  if (o.maxBatchSpanMs !== undefined && !(o.maxBatchSpanMs > 0))
    errors.push(`maxBatchSpanMs must be positive, got ${o.maxBatchSpanMs}`);
  if (o.maxEvents !== undefined && !(Number.isInteger(o.maxEvents) && o.maxEvents >= 0))
    errors.push(`maxEvents must be a non-negative integer, got ${o.maxEvents}`);
  if (o.durationMs !== undefined && !(o.durationMs >= 0)) errors.push(`durationMs must be >= 0, got ${o.durationMs}`);
  if (o.devicePrefix !== undefined && !/^[A-Za-z0-9._:-]{0,100}$/.test(o.devicePrefix))
    errors.push(`devicePrefix must be up to 100 chars of [A-Za-z0-9._:-], got "${o.devicePrefix}"`);
  checkRate(errors, 'outOfOrderRate', o.outOfOrderRate);
  checkRate(errors, 'lateRate', o.lateRate);
  checkRate(errors, 'retryRate', o.retryRate);
  checkRate(errors, 'dropoutRate', o.dropoutRate);
  checkRate(errors, 'metricDropoutRate', o.metricDropoutRate);
  checkRate(errors, 'offlineRate', o.offlineRate);
  checkRate(errors, 'anomalyRate', o.anomalyRate);
  const sum =
    (o.dropoutRate ?? FleetDefaults.dropoutRate) +
    (o.offlineRate ?? FleetDefaults.offlineRate) +
    (o.outOfOrderRate ?? FleetDefaults.outOfOrderRate) +
    (o.lateRate ?? FleetDefaults.lateRate);
  if (sum > 1) errors.push(`dropout + offline + out-of-order + late rates add up to ${sum}, over 1`);
  if (o.offlineDurationMs !== undefined && !(o.offlineDurationMs > 0))
    errors.push(`offlineDurationMs must be positive, got ${o.offlineDurationMs}`);
  for (const k of o.anomalyKinds ?? [])
    if (!AnomalyKinds.includes(k)) errors.push(`unknown anomaly kind "${k}" (known: ${AnomalyKinds.join(', ')})`);
  return errors;
}
