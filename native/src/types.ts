import type { VectorParseOptions } from '@fleetpulse/contracts';

/**
 * Options of one `parseTelemetry` call. All times are epoch milliseconds. Declared once, in contracts (the vectors
 * carry them): `contentType` `json` (one event object or an array of them) or `ndjson` (one event per line);
 * `receivedAt` is stamped on every accepted event; the `ts` bounds are `nowMs + maxFutureMs` and
 * `nowMs - maxPastMs` (contract defaults 5 min and 30 days), `nowMs` a parameter rather than the clock so results
 * are reproducible; more than `maxEvents` events (integer >= 0, default 10000) is `tooManyEvents` with nothing
 * accepted; `groupByDevice` makes one Kafka record per device (a JSON array of its events) instead of one per
 * event; `allowedDevices`, a glob of the device ids the token may send for (`*` any run, `?` one character),
 * absent for any device.
 */
export type ParseOptions = VectorParseOptions;

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
