/**
 * Differential test: random valid, broken and arbitrary bodies through the addon and the fallback, compared
 * byte for byte. The vectors pin the semantics; this catches the corners the vectors do not name.
 */
import fc from 'fast-check';
import { fallbackParseTelemetry, nativeLoadError, nativeParseTelemetry } from './index';
import { plain } from './testing';
import type { ParseOptions, ParseResult } from './types';

const NOW = 1763803200000;
const allowFallback = process.env.FLEETPULSE_ALLOW_FALLBACK === '1';
const native = nativeParseTelemetry;
const runs = Number(process.env.FLEETPULSE_DIFF_RUNS ?? 2000);

// --- numbers: any text the JSON grammar allows, biased to the shapes the fast path must get right
const digits = (min: number, max: number) =>
  fc.array(fc.constantFrom(...'0123456789'), { minLength: min, maxLength: max }).map((a) => a.join(''));
const grammarNumber = fc
  .tuple(
    fc.boolean(),
    fc.oneof(
      fc.constant('0'),
      fc.tuple(fc.constantFrom(...'123456789'), digits(0, 24)).map(([a, b]) => a + b),
    ),
    fc.option(digits(1, 24), { nil: undefined }),
    fc.option(fc.tuple(fc.constantFrom('e', 'E'), fc.constantFrom('', '+', '-'), digits(1, 3)), { nil: undefined }),
  )
  .map(
    ([neg, int, frac, exp]) =>
      `${neg ? '-' : ''}${int}${frac === undefined ? '' : '.' + frac}${exp === undefined ? '' : exp.join('')}`,
  );
const doubleText = fc
  .tuple(fc.double(), fc.integer({ min: 0, max: 4 }), fc.integer({ min: 1, max: 21 }))
  .map(([d, how, p]) => {
    if (!Number.isFinite(d)) return '1e400';
    if (how === 0 || Math.abs(d) >= 1e21) return String(d).replace('+', '');
    if (how === 1) return d.toExponential();
    if (how === 2) return d.toPrecision(p);
    if (how === 3) return d.toFixed(Math.min(p, 20));
    return String(Math.round(d * 100) / 100);
  })
  .filter((t) => /^-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?$/.test(t));
const numberText = fc.oneof(
  grammarNumber,
  doubleText,
  fc.constantFrom('0', '-0', '23.5', '41', '1e400', '0.000001', '1e-7'),
);

// --- event fields
const ws = fc.constantFrom('', '', '', ' ', '\n', ' \t', '\r\n ');
const validId = fc.stringMatching(/^[A-Za-z0-9._:-]{1,20}$/);
const deviceId = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom('sensor-1', 'sensor-2', 'sa', 's:1.b_c') },
  { weight: 2, arbitrary: validId },
  { weight: 1, arbitrary: fc.string({ maxLength: 8 }) },
);
const tsText = fc.oneof(
  fc.integer({ min: NOW - 40 * 86_400_000, max: NOW + 600_000 }).map(String),
  fc.integer({ min: (NOW - 40 * 86_400_000) / 1000, max: (NOW + 600_000) / 1000 }).map(String),
  fc.double({ min: 1.76e9, max: 1.7639e9, noNaN: true }).map(String),
  fc
    .tuple(
      fc.date({ min: new Date(NOW - 40 * 86_400_000), max: new Date(NOW + 600_000), noInvalidDate: true }),
      fc.constantFrom('Z', 'z', '+02:00', '-05:30', '+00:00', '+24:00'),
      fc.constantFrom('', '.5', '.123456', '.'),
    )
    .map(([d, off, frac]) => JSON.stringify(d.toISOString().slice(0, 19) + frac + off)),
  fc.constantFrom('"2025-02-29T00:00:00Z"', '"2024-02-29T09:20:00Z"', '"x"', 'null', 'true', '1e400', '{}'),
);
const metricName = fc.oneof(
  { weight: 8, arbitrary: fc.constantFrom('temp', 'humidity', 'vib', 'volt', 'a.b', 'x_y-z') },
  { weight: 1, arbitrary: fc.string({ maxLength: 6 }) },
);
const scalarJson = fc.oneof(
  { weight: 8, arbitrary: numberText },
  { weight: 1, arbitrary: fc.constantFrom('"23.5"', 'null', 'true', '[1]', '{"a":1}') },
);
const unknownField = fc.tuple(
  fc.constantFrom('fw', 'loc', 'battery', 'note', 'receivedAt'),
  fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify(v)),
);
const field = fc.oneof(
  fc.tuple(
    fc.constantFrom('deviceId', 'device_id'),
    deviceId.map((d) => JSON.stringify(d)),
  ),
  fc.tuple(fc.constant('ts'), tsText),
  fc.tuple(fc.constant('seq'), fc.oneof(fc.nat().map(String), numberText)),
  fc.tuple(
    fc.constant('metrics'),
    fc
      .array(fc.tuple(metricName, scalarJson), { minLength: 0, maxLength: 6 })
      .map((es) => `{${es.map(([k, v]) => `${JSON.stringify(k)}:${v}`).join(',')}}`),
  ),
  fc.tuple(metricName, scalarJson),
  unknownField,
);
/** Mostly well-formed events: deviceId and ts first, then random fields (duplicates happen naturally). */
const eventText = fc
  .tuple(fc.constantFrom('deviceId', 'device_id'), deviceId, tsText, fc.array(field, { maxLength: 6 }), ws)
  .map(([dk, d, ts, rest, w]) => {
    const fields = [[dk, JSON.stringify(d)], ['ts', ts], ...rest] as [string, string][];
    return `{${fields.map(([k, v]) => `${w}${JSON.stringify(k)}${w}:${w}${v}`).join(',')}${w}}`;
  });

/** Events meant to be accepted: the accepting path (encoding, number printing, grouping) needs volume too. */
const goodEvent = fc
  .tuple(
    fc.constantFrom('sensor-1', 'sensor-2', 'sa', 's:1.b_c'),
    fc.oneof(
      fc.integer({ min: NOW - 29 * 86_400_000, max: NOW + 299_000 }).map(String),
      fc.integer({ min: (NOW - 29 * 86_400_000) / 1000, max: (NOW + 299_000) / 1000 }).map(String),
    ),
    fc.uniqueArray(fc.tuple(fc.constantFrom('temp', 'humidity', 'vib', 'volt', 'a.b', 'x_y-z'), numberText), {
      minLength: 1,
      maxLength: 5,
      selector: ([k]) => k,
    }),
    fc.option(fc.nat().map(String), { nil: undefined }),
    fc.boolean(),
    fc.option(unknownField, { nil: undefined }),
  )
  .map(([d, ts, ms, seq, flat, extra]) => {
    const parts = flat
      ? [`"device_id":"${d}"`, `"ts":${ts}`, ...ms.map(([k, v]) => `"${k}":${v}`)]
      : [`"deviceId":"${d}"`, `"ts":${ts}`, `"metrics":{${ms.map(([k, v]) => `"${k}":${v}`).join(',')}}`];
    if (seq !== undefined) parts.push(`"seq":${seq}`);
    if (extra !== undefined && !flat) parts.push(`"${extra[0]}":${extra[1]}`);
    return `{${parts.join(',')}}`;
  });
const anyEvent = fc.oneof({ weight: 3, arbitrary: goodEvent }, { weight: 2, arbitrary: eventText });

const body = fc.oneof(
  anyEvent.map((e) => ({ text: e, contentType: 'json' as const })),
  fc
    .tuple(fc.array(anyEvent, { maxLength: 8 }), ws)
    .map(([es, w]) => ({ text: `[${w}${es.join(`,${w}`)}${w}]`, contentType: 'json' as const })),
  fc
    .tuple(fc.array(anyEvent, { maxLength: 8 }), fc.constantFrom('\n', '\r\n', '\n\n'))
    .map(([es, nl]) => ({ text: es.join(nl), contentType: 'ndjson' as const })),
);

/** Damage: cut, insert a byte, overwrite a byte, or leave as is. */
const damaged = fc
  .tuple(body, fc.nat(), fc.integer({ min: 0, max: 255 }), fc.integer({ min: 0, max: 3 }))
  .map(([b, at, byte, how]) => {
    const buf = Buffer.from(b.text, 'utf8');
    const i = buf.length === 0 ? 0 : at % buf.length;
    if (how === 1) return { buf: buf.subarray(0, i), contentType: b.contentType };
    if (how === 2)
      return {
        buf: Buffer.concat([buf.subarray(0, i), Buffer.from([byte]), buf.subarray(i)]),
        contentType: b.contentType,
      };
    if (how === 3 && buf.length > 0) {
      const c = Buffer.from(buf);
      c[i] = byte;
      return { buf: c, contentType: b.contentType };
    }
    return { buf, contentType: b.contentType };
  });

const options = fc.record({
  groupByDevice: fc.boolean(),
  maxEvents: fc.oneof({ weight: 4, arbitrary: fc.constant(10_000) }, { weight: 1, arbitrary: fc.nat(6) }),
  allowedDevices: fc.option(fc.stringMatching(/^[sa*?1-]{0,6}$/), { nil: undefined }),
});

function opts(
  contentType: 'json' | 'ndjson',
  o: { groupByDevice: boolean; maxEvents: number; allowedDevices: string | undefined },
): ParseOptions {
  const r: ParseOptions = {
    contentType,
    receivedAt: NOW + 500,
    nowMs: NOW,
    maxFutureMs: 300_000,
    maxPastMs: 30 * 86_400_000,
    maxEvents: o.maxEvents,
    groupByDevice: o.groupByDevice,
  };
  if (o.allowedDevices !== undefined) r.allowedDevices = o.allowedDevices;
  return r;
}

function same(buf: Buffer, o: ParseOptions): ParseResult {
  const a: ParseResult = native!(buf, o);
  const b: ParseResult = fallbackParseTelemetry(buf, o);
  expect(plain(a)).toEqual(plain(b));
  expect(Buffer.compare(a.values, b.values)).toBe(0);
  expect([...a.valueEnds]).toEqual([...b.valueEnds]);
  expect([...a.eventCounts]).toEqual([...b.eventCounts]);
  return a;
}

const run = native === undefined ? describe.skip : describe;

describe('native addon vs TypeScript fallback', () => {
  it('has the addon built (set FLEETPULSE_ALLOW_FALLBACK=1 to skip this comparison)', () => {
    if (!allowFallback && native === undefined) throw new Error(`native addon not loaded (${String(nativeLoadError)})`);
  });

  run('byte-identical results', () => {
    it('on generated bodies (mostly valid)', () => {
      let accepted = 0;
      let rejected = 0;
      fc.assert(
        fc.property(body, options, (b, o) => {
          const r = same(Buffer.from(b.text, 'utf8'), opts(b.contentType, o));
          accepted += r.accepted;
          rejected += r.rejected.length;
        }),
        { numRuns: runs },
      );
      // The generator must exercise the accepting path, not only the error paths. Each count averages about
      // runs / 4 over fast-check's random seeds; a tenth leaves room for the seed without losing the point.
      expect(accepted).toBeGreaterThan(runs / 10);
      expect(rejected).toBeGreaterThan(runs / 10);
    });

    it('on damaged bodies', () => {
      fc.assert(
        fc.property(damaged, options, (b, o) => {
          same(b.buf, opts(b.contentType, o));
        }),
        { numRuns: runs },
      );
    });

    it('on arbitrary bytes', () => {
      const bytes = fc.oneof(
        fc.uint8Array({ maxLength: 64 }),
        fc
          .array(fc.constantFrom(...'{}[]",:0123456789-.eE tfnrul\\\n'), { maxLength: 64 })
          .map((a) => new TextEncoder().encode(a.join(''))),
      );
      fc.assert(
        fc.property(bytes, fc.constantFrom('json' as const, 'ndjson' as const), options, (u, ct, o) => {
          same(Buffer.from(u), opts(ct, o));
        }),
        { numRuns: runs },
      );
    });

    it('on number texts', () => {
      fc.assert(
        fc.property(numberText, (t) => {
          same(
            Buffer.from(`{"deviceId":"s","ts":${NOW},"metrics":{"v":${t}},"seq":${t}}`),
            opts('json', { groupByDevice: false, maxEvents: 10, allowedDevices: undefined }),
          );
        }),
        { numRuns: runs * 2 },
      );
    });
  });
});
