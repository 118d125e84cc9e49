import type { TelemetryEvent } from '@fleetpulse/contracts';

/** A telemetry.raw value that is not a canonical event or an array of them (ingestion should never write one). */
export class InvalidRecordError extends Error {
  override readonly name = 'InvalidRecordError';
}

/**
 * Parses a telemetry.raw value: one canonical event (with `receivedAt`), or a JSON array of one device's events in
 * order. Checks what the aggregator relies on: deviceId string, finite ts, finite metric values, integer seq.
 */
export function decodeRecordValue(value: Buffer | string): TelemetryEvent[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(typeof value === 'string' ? value : value.toString('utf8'));
  } catch (e) {
    throw new InvalidRecordError(`value is not JSON: ${(e as Error).message}`);
  }
  const list = Array.isArray(parsed) ? (parsed as unknown[]) : [parsed];
  if (list.length === 0) throw new InvalidRecordError('empty event array');
  for (let i = 0; i < list.length; i++) check(list[i], i);
  const events = list as TelemetryEvent[];
  const id = events[0]!.deviceId;
  for (const e of events) if (e.deviceId !== id) throw new InvalidRecordError('an array record mixes devices');
  return events;
}

function check(e: unknown, i: number): asserts e is TelemetryEvent {
  const at = `event ${i}`;
  if (typeof e !== 'object' || e === null || Array.isArray(e)) throw new InvalidRecordError(`${at}: not an object`);
  const o = e as Record<string, unknown>;
  if (typeof o.deviceId !== 'string' || o.deviceId.length === 0)
    throw new InvalidRecordError(`${at}: deviceId: expected a string`);
  if (typeof o.ts !== 'number' || !Number.isFinite(o.ts)) throw new InvalidRecordError(`${at}: ts: expected a number`);
  if (o.receivedAt !== undefined && (typeof o.receivedAt !== 'number' || !Number.isFinite(o.receivedAt)))
    throw new InvalidRecordError(`${at}: receivedAt: expected a number`);
  if (o.seq !== undefined && (typeof o.seq !== 'number' || !Number.isSafeInteger(o.seq) || o.seq < 0))
    throw new InvalidRecordError(`${at}: seq: expected a non-negative integer`);
  const m = o.metrics;
  if (typeof m !== 'object' || m === null || Array.isArray(m))
    throw new InvalidRecordError(`${at}: metrics: expected an object`);
  let n = 0;
  for (const [k, v] of Object.entries(m)) {
    if (typeof v !== 'number' || !Number.isFinite(v))
      throw new InvalidRecordError(`${at}: metrics.${k}: expected a number`);
    n++;
  }
  if (n === 0) throw new InvalidRecordError(`${at}: metrics: at least one is required`);
}
