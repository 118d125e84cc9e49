/**
 * The addon's `parseTelemetryPacked` is registered by hand (native/src/lib.rs, `init`): its argument checks are
 * its own, so they are tested here; the results themselves are the vectors' and the differential test's.
 */
import { nativeParseTelemetry } from './index';

interface Packed {
  parseTelemetryPacked(body?: unknown, out?: unknown, allowedDevices?: unknown): boolean;
}

const run = nativeParseTelemetry === undefined ? describe.skip : describe;

run('native binding arguments', () => {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const binding = (): Packed => require('../binding.js') as Packed;
  const out = (): Buffer => {
    const b = Buffer.alloc(1 << 16);
    b.writeUInt32LE(1000, 32); // maxEvents
    b.writeUInt32LE(4096, 40); // head
    b.writeUInt32LE(4096, 44); // vpos
    return b;
  };
  const body = Buffer.from('{"deviceId":"d-1","ts":1763803200000,"metrics":{"t":1}}');

  it('parses with or without a device glob', () => {
    for (const glob of [undefined, null, 'd-*', 'é*']) {
      expect(binding().parseTelemetryPacked(body, out(), glob)).toBe(true);
    }
  });

  it('throws for arguments of the wrong kind', () => {
    expect(() => binding().parseTelemetryPacked('text', out())).toThrow('body: expected a Buffer');
    expect(() => binding().parseTelemetryPacked(body, {})).toThrow('out: expected a Buffer');
    expect(() => binding().parseTelemetryPacked(body, Buffer.alloc(16))).toThrow('expected at least 48 bytes');
    expect(() => binding().parseTelemetryPacked(body, out(), 7)).toThrow('allowedDevices: expected a string');
    expect(() => binding().parseTelemetryPacked()).toThrow('body: expected a Buffer');
    const shared = out();
    expect(() => binding().parseTelemetryPacked(shared.subarray(100, 200), shared)).toThrow('must not overlap');
  });
});
