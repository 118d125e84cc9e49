/**
 * What the parser produces (twin of `src/parser/encoding.rs`): each valid event written in its canonical form, the
 * events gathered into Kafka records (one per event, or one per device), the rejected events' byte ranges for the
 * dead-letter queue, and the failed result of a body that cannot be parsed.
 *
 * Separate because it is the output side: the record layout handed to callers and the canonical JSON the consumers
 * read are decided here, whatever the input looked like.
 */
import type { ParseResult, RejectedEvent } from '../types';
import type { Entry, Event } from './events';
import { allChars, isAlnum, type Scanner } from './scanner';

const MAX_METRIC_NAME = 64;
const METRICS_COUNT = 'metrics: expected 1 to 64 entries';
const METRICS_NAME = 'metrics: invalid name (expected 1-64 characters of [A-Za-z0-9._-])';

function isNameChar(c: number): boolean {
  return isAlnum(c) || c === 0x2e || c === 0x5f || c === 0x2d;
}

/** A body that is refused as a whole: nothing accepted, `error` at byte `offset`. */
export function failed(error: string, offset: number): ParseResult {
  return {
    ok: false,
    error,
    offset,
    accepted: 0,
    keys: [],
    values: Buffer.alloc(0),
    valueEnds: new Uint32Array(0),
    eventCounts: new Uint32Array(0),
    rejected: [],
  };
}

/** Collects accepted events into Kafka records, grouped per device or one per event. */
export class Sink {
  accepted = 0;
  readonly keys: string[] = [];
  readonly rejected: RejectedEvent[] = [];
  private readonly values: string[] = [];
  private readonly counts: number[] = [];
  private readonly groups = new Map<string, number>();

  constructor(private readonly group: boolean) {}

  accept(device: string, json: string): void {
    this.accepted++;
    if (!this.group) {
      this.values.push(json);
      this.keys.push(device);
      this.counts.push(1);
      return;
    }
    let idx = this.groups.get(device);
    if (idx === undefined) {
      idx = this.values.length;
      this.groups.set(device, idx);
      this.values.push('[' + json);
      this.keys.push(device);
      this.counts.push(1);
    } else {
      this.values[idx] += ',' + json;
      this.counts[idx]!++;
    }
  }

  reject(index: number, error: string, start: number, end: number): void {
    this.rejected.push({ index, error, start, end });
  }

  finish(): ParseResult {
    const vals = this.group ? this.values.map((v) => v + ']') : this.values;
    const ends = new Uint32Array(vals.length);
    let off = 0;
    // Canonical values are pure ASCII, so string length is byte length.
    vals.forEach((v, i) => {
      off += v.length;
      ends[i] = off;
    });
    return {
      ok: true,
      accepted: this.accepted,
      keys: this.keys,
      values: Buffer.from(vals.join(''), 'latin1'),
      valueEnds: ends,
      eventCounts: Uint32Array.from(this.counts),
      rejected: this.rejected,
    };
  }
}

/**
 * Validates the metrics and writes the canonical event in the same pass; `device`, `ts` and `seq` are already
 * validated, `receivedAt` already formatted.
 */
export function encodeEvent(
  sc: Scanner,
  device: string,
  ts: number,
  seq: string | undefined,
  entries: Entry[],
  overflow: boolean,
  receivedAt: string,
): Event {
  const bad = (error: string): Event => ({ valid: false, error });
  const names: string[] = [];
  let metrics = '';
  for (const en of entries) {
    const name = sc.text(en.name);
    if (name.length === 0 || name.length > MAX_METRIC_NAME || !allChars(name, isNameChar)) return bad(METRICS_NAME);
    // At most 64 names, so a linear duplicate scan is bounded and cheap.
    if (names.includes(name)) return bad(`metrics.${name}: duplicate key`);
    if (en.value.kind !== 'num') return bad(`metrics.${name}: expected a number`);
    const v = sc.numberValue(en.value);
    if (!Number.isFinite(v)) return bad(`metrics.${name}: expected a finite number`);
    metrics += `${names.length > 0 ? ',' : ''}"${name}":${String(v)}`;
    names.push(name);
  }
  if (overflow || entries.length === 0) return bad(METRICS_COUNT);
  const seqPart = seq === undefined ? '' : `,"seq":${seq}`;
  const json = `{"deviceId":"${device}","ts":${String(ts)},"metrics":{${metrics}}${seqPart},"receivedAt":${receivedAt}}`;
  return { valid: true, device, json };
}
