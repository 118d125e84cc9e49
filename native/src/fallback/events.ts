/**
 * One telemetry event (twin of `src/parser/events.rs`): which keys it has (canonical form with a `metrics` object,
 * or flat form where every other numeric field is a metric), their checks in the contract's order, and handing the
 * result to the sink.
 *
 * Separate because this is the contract (docs/contract.md, "Telemetry in") as code: the scanner below it knows
 * only JSON, the encoder after it only the output format.
 */
import { globMatch } from '@fleetpulse/contracts';
import type { ParseOptions } from '../types';
import { encodeEvent, type Sink } from './encoding';
import { rfc3339Ms } from './rfc3339';
import { LBRACE, MINUS, RBRACE, allChars, isAlnum, isDigit, type Scanner, type Str, type Val } from './scanner';

/** Most metrics one event may carry. */
export const MAX_METRICS = 64;
const MAX_DEVICE_ID = 128;
/** Below this a numeric `ts` is epoch seconds (contract: flat form). */
const SECONDS_LIMIT = 1e11;

const DEVICE_ID_PATTERN = 'deviceId: expected 1-128 characters of [A-Za-z0-9._:-]';
const TS_FORMAT = 'ts: expected epoch milliseconds or an RFC 3339 string';
const SEQ_FORMAT = 'seq: expected a non-negative integer';

/** A metric as scanned: its name and what its value was. */
export interface Entry {
  name: Str;
  value: Val;
}

/** Fields of one event object found by the scan. */
interface Fields {
  deviceId?: Val;
  ts?: Val;
  seq?: Val;
  hasMetrics: boolean;
  metricsIsObject: boolean;
  entries: Entry[];
  entriesOverflow: boolean;
  candidates: Entry[];
  candidatesOverflow: boolean;
  duplicate?: string;
}

export type Event = { valid: true; device: string; json: string } | { valid: false; error: string };

function isDeviceChar(c: number): boolean {
  return isAlnum(c) || c === 0x2e || c === 0x5f || c === 0x3a || c === 0x2d;
}

/** Reads, validates and encodes events one at a time, at the scanner's cursor. */
export class EventReader {
  private readonly receivedAt: string;

  constructor(
    readonly sc: Scanner,
    private readonly opts: ParseOptions,
  ) {
    this.receivedAt = String(opts.receivedAt);
  }

  /** Reads the event at the cursor and hands it to the sink; `index` is its position in the array. */
  eventInto(sink: Sink, index: number, depth: number): void {
    const start = this.sc.pos;
    const ev = this.event(depth);
    this.emit(sink, ev, index, start, this.sc.pos);
  }

  /** Accepts a valid event under its device id, or rejects an invalid one with its byte range. */
  emit(sink: Sink, ev: Event, index: number, start: number, end: number): void {
    if (ev.valid) sink.accept(ev.device, ev.json);
    else sink.reject(index, ev.error, start, end);
  }

  /** Scans one event value at the cursor (any JSON value), then validates and encodes it. */
  event(depth: number): Event {
    const sc = this.sc;
    if (sc.peek() !== LBRACE) {
      sc.skipValue(depth);
      return { valid: false, error: 'expected an object' };
    }
    const f: Fields = {
      hasMetrics: false,
      metricsIsObject: false,
      entries: [],
      entriesOverflow: false,
      candidates: [],
      candidatesOverflow: false,
    };
    sc.members(depth, RBRACE, () => {
      const key = sc.key();
      const kind = this.keyKind(key);
      if (kind === 'deviceId' || kind === 'ts' || kind === 'seq') {
        const v = sc.fieldValue(depth);
        if (f[kind] !== undefined) f.duplicate ??= `${kind}: duplicate key`;
        else f[kind] = v;
      } else if (kind === 'metrics') {
        if (f.hasMetrics) {
          f.duplicate ??= 'metrics: duplicate key';
          sc.skipValue(depth + 1);
        } else {
          f.hasMetrics = true;
          if (sc.peek() === LBRACE) {
            f.metricsIsObject = true;
            this.metricsObject(depth + 1, f);
          } else sc.skipValue(depth + 1);
        }
      } else {
        // Flat form: every numeric top-level field is a metric candidate.
        const c = sc.peek();
        if (c === MINUS || isDigit(c)) {
          const n = sc.number();
          if (f.candidates.length < MAX_METRICS) f.candidates.push({ name: key, value: n });
          else f.candidatesOverflow = true;
        } else sc.skipValue(depth + 1);
      }
    });
    return this.validate(f);
  }

  private keyKind(k: Str): 'deviceId' | 'ts' | 'seq' | 'metrics' | 'other' {
    if (k.escaped && k.end - k.start > 64) return 'other';
    switch (this.sc.text(k)) {
      case 'deviceId':
      case 'device_id':
        return 'deviceId';
      case 'ts':
        return 'ts';
      case 'seq':
        return 'seq';
      case 'metrics':
        return 'metrics';
      default:
        return 'other';
    }
  }

  /** The `metrics` object's entries (any value; validation comes later), up to MAX_METRICS. */
  private metricsObject(depth: number, f: Fields): void {
    const sc = this.sc;
    sc.members(depth, RBRACE, () => {
      const name = sc.key();
      const value = sc.fieldValue(depth);
      if (f.entries.length < MAX_METRICS) f.entries.push({ name, value });
      else f.entriesOverflow = true;
    });
  }

  /** Checks in a fixed order (duplicates, deviceId, ts, seq, metrics), then encodes the canonical event. */
  private validate(f: Fields): Event {
    const sc = this.sc;
    const bad = (error: string): Event => ({ valid: false, error });
    if (f.duplicate !== undefined) return bad(f.duplicate);
    // deviceId
    if (f.deviceId === undefined) return bad('deviceId: required');
    if (f.deviceId.kind !== 'str') return bad('deviceId: expected a string');
    const device = sc.text(f.deviceId);
    if (device.length === 0 || device.length > MAX_DEVICE_ID || !allChars(device, isDeviceChar)) {
      return bad(DEVICE_ID_PATTERN);
    }
    if (this.opts.allowedDevices !== undefined && !globMatch(this.opts.allowedDevices, device)) {
      return bad('deviceId: not allowed for this token');
    }
    // ts
    let ts: number;
    if (f.ts === undefined) return bad('ts: required');
    if (f.ts.kind === 'num') {
      const v = sc.numberValue(f.ts);
      if (!Number.isFinite(v)) return bad(TS_FORMAT);
      if (v < SECONDS_LIMIT) ts = Math.floor(v * 1000 + 0.5);
      else if (!Number.isInteger(v)) return bad('ts: expected an integer number of milliseconds');
      else ts = v;
    } else if (f.ts.kind === 'str') {
      const ms = rfc3339Ms(sc.text(f.ts));
      if (ms === undefined) return bad(TS_FORMAT);
      ts = ms;
    } else return bad(TS_FORMAT);
    if (ts > this.opts.nowMs + this.opts.maxFutureMs) {
      return bad(`ts: more than ${String(this.opts.maxFutureMs)} ms in the future`);
    }
    if (ts < this.opts.nowMs - this.opts.maxPastMs) {
      return bad(`ts: more than ${String(this.opts.maxPastMs)} ms in the past`);
    }
    // seq
    let seq: string | undefined;
    if (f.seq !== undefined) {
      if (f.seq.kind !== 'num') return bad(SEQ_FORMAT);
      const v = sc.numberValue(f.seq);
      if (!(Number.isFinite(v) && v >= 0 && Number.isInteger(v) && v <= Number.MAX_SAFE_INTEGER)) {
        return bad(SEQ_FORMAT);
      }
      seq = String(v);
    }
    // metrics
    if (f.hasMetrics && !f.metricsIsObject) return bad('metrics: expected an object');
    const entries = f.hasMetrics ? f.entries : f.candidates;
    const overflow = f.hasMetrics ? f.entriesOverflow : f.candidatesOverflow;
    return encodeEvent(sc, device, ts, seq, entries, overflow, this.receivedAt);
  }
}
