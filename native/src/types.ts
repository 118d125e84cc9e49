/** Options of one `parseTelemetry` call. All times are epoch milliseconds. */
export interface ParseOptions {
  /** `json`: one event object or an array of them; `ndjson`: one event per line. */
  contentType: 'json' | 'ndjson';
  /** Stamped on every accepted event as `receivedAt`. */
  receivedAt: number;
  /** The `ts` bounds are relative to this (a parameter rather than the clock, so results are reproducible). */
  nowMs: number;
  /** Latest accepted `ts` is `nowMs + maxFutureMs` (contract default 5 min = 300000). */
  maxFutureMs: number;
  /** Earliest accepted `ts` is `nowMs - maxPastMs` (contract default 30 days = 2592000000). */
  maxPastMs: number;
  /** More events than this: `tooManyEvents`, nothing accepted (contract default 10000). Integer >= 0. */
  maxEvents: number;
  /** One Kafka record per device (a JSON array of its events) instead of one per event. */
  groupByDevice: boolean;
  /** Glob of the device ids the token may send for: `*` any run, `?` one character. Absent: any device. */
  allowedDevices?: string;
}

/** An event that failed validation; `start`/`end` is its byte range in the body (for the DLQ). */
export interface RejectedEvent {
  /** Position of the event (array index; line number for NDJSON), from 0. */
  index: number;
  error: string;
  start: number;
  end: number;
}

export interface ParseResult {
  /** False: the body could not be parsed (or had too many events) and nothing is accepted. */
  ok: boolean;
  /** When !ok: the reason, for the 400/413 answer. */
  error?: string;
  /** When !ok: byte offset in the body the error refers to. */
  offset?: number;
  /** Set (true) when the body holds more than `maxEvents` events: answer 413. */
  tooManyEvents?: boolean;
  /** Events accepted. */
  accepted: number;
  /** One per Kafka record: the device id. */
  keys: string[];
  /** Every record's value (UTF-8 JSON), concatenated. */
  values: Buffer;
  /** End offset of record i's value in `values` (start is the previous end, or 0). */
  valueEnds: Uint32Array;
  /** Events in record i: 1, or the size of the device's group with `groupByDevice`. */
  eventCounts: Uint32Array;
  rejected: RejectedEvent[];
}

export type ParseTelemetry = (body: Buffer, opts: ParseOptions) => ParseResult;

/** Which implementation `parseTelemetry` uses in this process. */
export type ParserKind = 'native' | 'fallback';
