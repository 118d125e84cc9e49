/** Test helpers shared by the parser tests and the benchmark: a result in a plain, comparable form. */
import { recordsOf } from './records';
import type { ParseResult } from './types';

export interface PlainResult {
  ok: boolean;
  error?: string;
  offset?: number;
  tooManyEvents?: true;
  accepted?: number;
  records?: { key: string; events: number; value: string }[];
  rejected?: { index: number; error: string; start: number; end: number }[];
}

/** The vectors' `expect` shape: failures carry only error/offset(/tooManyEvents), successes only the records. */
export function plain(r: ParseResult): PlainResult {
  if (!r.ok) {
    const f: PlainResult = { ok: false };
    if (r.error !== undefined) f.error = r.error;
    if (r.offset !== undefined) f.offset = r.offset;
    if (r.tooManyEvents === true) f.tooManyEvents = true;
    // A failed result must not carry records: nothing is accepted.
    if (r.accepted !== 0 || r.keys.length !== 0 || r.values.length !== 0 || r.rejected.length !== 0) {
      f.records = recordsOf(r).map((x) => ({ key: x.key, events: x.events, value: x.value.toString('utf8') }));
    }
    return f;
  }
  const out: PlainResult = {
    ok: true,
    accepted: r.accepted,
    records: recordsOf(r).map((x) => ({ key: x.key, events: x.events, value: x.value.toString('utf8') })),
    rejected: r.rejected.map(({ index, error, start, end }) => ({ index, error, start, end })),
  };
  if (r.error !== undefined) out.error = r.error;
  if (r.offset !== undefined) out.offset = r.offset;
  if (r.tooManyEvents !== undefined) out.tooManyEvents = r.tooManyEvents as true;
  return out;
}
