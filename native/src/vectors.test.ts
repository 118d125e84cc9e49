import { loadTelemetryVectors } from '@fleetpulse/contracts';
import { fallbackParseTelemetry, nativeLoadError, nativeParseTelemetry } from './index';
import { plain } from './testing';
import type { ParseTelemetry } from './types';

const vectors = loadTelemetryVectors();
const allowFallback = process.env.FLEETPULSE_ALLOW_FALLBACK === '1';

describe('telemetry vectors', () => {
  it('has the addon built (set FLEETPULSE_ALLOW_FALLBACK=1 to test the fallback alone)', () => {
    if (!allowFallback && nativeParseTelemetry === undefined) {
      throw new Error(`native addon not loaded; run npm run build:native -w native (${String(nativeLoadError)})`);
    }
  });

  it('has vectors in every file', () => {
    const files = new Set(vectors.map((v) => v.file));
    expect([...files].sort()).toEqual(['invalid-events.json', 'unparseable.json', 'valid.json']);
    expect(vectors.length).toBeGreaterThan(150);
  });

  const parsers: [string, ParseTelemetry | undefined][] = [
    ['native', nativeParseTelemetry],
    ['fallback', fallbackParseTelemetry],
  ];
  for (const [kind, parse] of parsers) {
    const run = parse === undefined ? describe.skip : describe;
    run(kind, () => {
      it.each(vectors.map((v) => [`${v.file}: ${v.name}`, v] as const))('%s', (_name, v) => {
        expect(plain(parse!(v.body, v.options))).toEqual(v.expect);
      });
    });
  }
});
