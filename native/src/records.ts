import type { ParseResult } from './types';

/** One Kafka record of a parse result. `value` is a view into `result.values` (no copy). */
export interface TelemetryRecord {
  key: string;
  value: Buffer;
  /** Events in the record (1 unless grouped by device). */
  events: number;
}

/** The records of a result, in order: slices `values` at `valueEnds`. */
export function recordsOf(result: ParseResult): TelemetryRecord[] {
  const out: TelemetryRecord[] = [];
  let start = 0;
  for (let i = 0; i < result.keys.length; i++) {
    const end = result.valueEnds[i]!;
    out.push({ key: result.keys[i]!, value: result.values.subarray(start, end), events: result.eventCounts[i]! });
    start = end;
  }
  return out;
}
