/**
 * Whether a service exports traces, read from the standard OpenTelemetry variables. Kept apart from
 * `@fleetpulse/runtime/tracing` so a service's config.ts can validate it without loading the SDK.
 */
export interface TracingConfig {
  /** OTLP/HTTP traces URL (…/v1/traces); null: tracing off, nothing propagated, no span made. */
  endpoint: string | null;
  /** Share of new traces sampled, 0-1; a sampled parent (a device's `traceparent`, a record's header) always is. */
  sampleRatio: number;
}

export const TracingEnv = {
  traces: 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT',
  base: 'OTEL_EXPORTER_OTLP_ENDPOINT',
  disabled: 'OTEL_SDK_DISABLED',
  ratio: 'FLEETPULSE_TRACE_SAMPLE_RATIO',
} as const;

function httpUrl(name: string, value: string, problems: string[]): URL | null {
  try {
    const url = new URL(value);
    if (url.protocol === 'http:' || url.protocol === 'https:') return url;
  } catch {
    // reported below
  }
  problems.push(`${name}: "${value}" is not an http(s) URL`);
  return null;
}

/**
 * Off unless OTEL_EXPORTER_OTLP_TRACES_ENDPOINT (used as is) or OTEL_EXPORTER_OTLP_ENDPOINT (+ /v1/traces) is set,
 * as the OpenTelemetry spec says; OTEL_SDK_DISABLED=true turns it off all the same. FLEETPULSE_TRACE_SAMPLE_RATIO
 * (default 1) is the root sampler's ratio of a parent-based sampler. What is wrong goes to `problems`, named.
 */
export function tracingConfig(env: NodeJS.ProcessEnv, problems: string[]): TracingConfig {
  const ratioText = env[TracingEnv.ratio]?.trim() ?? '';
  let sampleRatio = 1;
  if (ratioText !== '') {
    sampleRatio = Number(ratioText);
    if (!(Number.isFinite(sampleRatio) && sampleRatio >= 0 && sampleRatio <= 1)) {
      problems.push(`${TracingEnv.ratio}: "${ratioText}" is not a number from 0 to 1`);
      sampleRatio = 1;
    }
  }
  const disabled = env[TracingEnv.disabled]?.trim().toLowerCase() === 'true';
  const traces = env[TracingEnv.traces]?.trim() ?? '';
  const base = env[TracingEnv.base]?.trim() ?? '';
  let endpoint: string | null = null;
  if (traces !== '') endpoint = httpUrl(TracingEnv.traces, traces, problems)?.href ?? null;
  else if (base !== '') {
    const url = httpUrl(TracingEnv.base, base, problems);
    if (url) endpoint = `${url.href.replace(/\/+$/, '')}/v1/traces`;
  }
  return { endpoint: disabled ? null : endpoint, sampleRatio };
}
