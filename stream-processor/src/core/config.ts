import { resolutionMs } from '@fleetpulse/contracts';

/** Options of a {@link WindowAggregator}; every field has the contract's default (docs/contract.md, "Windows"). */
export interface AggregatorConfig {
  /** [resolutions=['1s','10s','60s']] - window sizes as contract labels (`<seconds>s`), at most 8. */
  resolutions?: readonly string[];
  /** [allowedLatenessMs=2000] - L: a device's watermark is its largest event time minus L, in milliseconds. */
  allowedLatenessMs?: number;
  /** [idleTimeoutMs=5000] - a device's windows close once its partition's processing time is this far past its last receivedAt. */
  idleTimeoutMs?: number;
  /** [maxMetricsPerDevice=64] - distinct metric names a device's open windows may hold; an event adding more is refused. */
  maxMetricsPerDevice?: number;
  /**
   * [maxQuietDevices=50000] - quiet devices (no open window, state stored) kept in memory, shared evenly by the
   * assigned partitions; beyond it the longest-quiet ones leave memory and are read back from the state store when
   * they report again.
   */
  maxQuietDevices?: number;
  /**
   * [liveSnapshots=false] - list the devices whose finest open window changed, for provisional snapshots
   * ({@link WindowAggregator.takeLive}); off, the list is not kept (it grows until taken).
   */
  liveSnapshots?: boolean;
}

export interface ResolvedConfig {
  /** Labels, smallest window first. */
  readonly labels: readonly string[];
  /** Window sizes in ms, same order as `labels`. */
  readonly sizes: readonly number[];
  readonly allowedLatenessMs: number;
  readonly idleTimeoutMs: number;
  readonly maxMetricsPerDevice: number;
  readonly maxQuietDevices: number;
  readonly liveSnapshots: boolean;
}

export const DefaultResolutions: readonly string[] = ['1s', '10s', '60s'];
export const DefaultAllowedLatenessMs = 2000;
export const DefaultIdleTimeoutMs = 5000;
export const DefaultMaxMetricsPerDevice = 64;
export const DefaultMaxQuietDevices = 50_000;
/** Late events carry the missed resolutions as a bit mask; 8 keeps the label cache at 256 entries. */
export const MaxResolutions = 8;

export class AggregatorConfigError extends RangeError {
  override readonly name = 'AggregatorConfigError';
  constructor(readonly problems: readonly string[]) {
    super(`invalid aggregator configuration: ${problems.join('; ')}`);
  }
}

/** Checks every option at once and throws one error listing every problem. */
export function resolveConfig(config: AggregatorConfig = {}): ResolvedConfig {
  const problems: string[] = [];
  const labels = config.resolutions ?? DefaultResolutions;
  const parsed: { label: string; ms: number }[] = [];
  if (!Array.isArray(labels) || labels.length === 0) problems.push('resolutions: at least one is required');
  else {
    if (labels.length > MaxResolutions) problems.push(`resolutions: at most ${MaxResolutions}`);
    const seen = new Set<number>();
    for (const label of labels) {
      let ms: number;
      try {
        ms = resolutionMs(String(label));
      } catch (e) {
        problems.push(`resolutions: ${(e as Error).message}`);
        continue;
      }
      if (seen.has(ms)) problems.push(`resolutions: "${label}" is listed twice`);
      seen.add(ms);
      parsed.push({ label: String(label), ms });
    }
  }
  const lateness = config.allowedLatenessMs ?? DefaultAllowedLatenessMs;
  if (typeof lateness !== 'number' || !Number.isFinite(lateness) || lateness < 0)
    problems.push(`allowedLatenessMs: expected a finite number >= 0, got ${String(lateness)}`);
  const idle = config.idleTimeoutMs ?? DefaultIdleTimeoutMs;
  if (typeof idle !== 'number' || !Number.isFinite(idle) || idle <= 0)
    problems.push(`idleTimeoutMs: expected a finite number > 0, got ${String(idle)}`);
  const maxMetrics = config.maxMetricsPerDevice ?? DefaultMaxMetricsPerDevice;
  if (!Number.isInteger(maxMetrics) || maxMetrics < 1 || maxMetrics > 4096)
    problems.push(`maxMetricsPerDevice: expected a whole number in [1, 4096], got ${String(maxMetrics)}`);
  const maxQuiet = config.maxQuietDevices ?? DefaultMaxQuietDevices;
  if (!Number.isInteger(maxQuiet) || maxQuiet < 0)
    problems.push(`maxQuietDevices: expected a whole number >= 0, got ${String(maxQuiet)}`);
  if (problems.length > 0) throw new AggregatorConfigError(problems);
  parsed.sort((a, b) => a.ms - b.ms);
  return {
    labels: parsed.map((p) => p.label),
    sizes: parsed.map((p) => p.ms),
    allowedLatenessMs: lateness,
    idleTimeoutMs: idle,
    maxMetricsPerDevice: maxMetrics,
    maxQuietDevices: maxQuiet,
    liveSnapshots: config.liveSnapshots === true,
  };
}
