import { parseTelemetry } from '@fleetpulse/native';
import { TokenTable } from '../auth';
import { authenticateConnect, grantAllows, mayPublishFor, payloadFormat, telemetryTopicDevice } from './topic';

describe('telemetryTopicDevice', () => {
  it('takes the device id of telemetry/<deviceId> and nothing else', () => {
    expect(telemetryTopicDevice('telemetry/sensor-12')).toBe('sensor-12');
    expect(telemetryTopicDevice('telemetry/a.b:c_d-9')).toBe('a.b:c_d-9');
    expect(telemetryTopicDevice(`telemetry/${'x'.repeat(128)}`)).toBe('x'.repeat(128));
    for (const t of [
      'telemetry/',
      'telemetry',
      'telemetry/a/b',
      'telemetry/has space',
      'telemetry/+',
      'Telemetry/a',
      '/telemetry/a',
      'other/a',
      `telemetry/${'x'.repeat(129)}`,
    ])
      expect(telemetryTopicDevice(t)).toBeUndefined();
  });
});

describe('authenticateConnect', () => {
  const tokens = new TokenTable([
    { token: 'pump-only-token', allowedDevices: 'pump-*' },
    { token: 'one-device-token', allowedDevices: 'sensor-12' },
    { token: 'dev-token', gateway: true },
  ]);
  const pw = (s: string) => Buffer.from(s);
  const connect = (username: string | undefined, password: Buffer | undefined, clientId = username ?? '') =>
    authenticateConnect(tokens, username, password, clientId);

  it('accepts a device with its token, and a token without a glob for any device id', () => {
    expect(connect('sensor-12', pw('one-device-token'))).toEqual({
      ok: true,
      grant: { token: 'one-device-token', allowedDevices: 'sensor-12' },
    });
    expect(connect('pump-3', pw('pump-only-token')).ok).toBe(true);
    expect(connect('anything', pw('dev-token')).ok).toBe(true);
  });

  it('answers 4 (bad username or password) without credentials or with an unknown token', () => {
    expect(connect(undefined, undefined)).toMatchObject({ ok: false, code: 4 });
    expect(connect('sensor-12', undefined)).toMatchObject({ ok: false, code: 4 });
    expect(connect('sensor-12', pw(''))).toMatchObject({ ok: false, code: 4 });
    expect(connect('sensor-12', pw('wrong-token'))).toMatchObject({ ok: false, code: 4 });
  });

  it('answers 5 (not authorized) for a device the token may not write, or a username that is not a device id', () => {
    expect(connect('sensor-13', pw('one-device-token'))).toMatchObject({ ok: false, code: 5 });
    expect(connect('valve-1', pw('pump-only-token'))).toMatchObject({ ok: false, code: 5 });
    expect(connect('has space', pw('dev-token'))).toMatchObject({ ok: false, code: 5 });
  });

  it('answers 2 (identifier rejected) unless the client id is the username or starts with it', () => {
    expect(connect('pump-3', pw('pump-only-token'), 'pump-3-a1b2').ok).toBe(true);
    expect(connect('pump-3', pw('pump-only-token'), 'pump-4')).toMatchObject({ ok: false, code: 2 });
    expect(connect('pump-3', pw('pump-only-token'), 'x-pump-3')).toMatchObject({ ok: false, code: 2 });
    expect(connect('pump-3', pw('pump-only-token'), `pump-3${'x'.repeat(251)}`)).toMatchObject({ ok: false, code: 2 });
    // Checked once the token is good: no answer tells a guessed token's holder more than 4.
    expect(connect('pump-3', pw('wrong-token'), 'pump-4')).toMatchObject({ ok: false, code: 4 });
  });

  it('limits publishing to the devices of the token', () => {
    const grant = { token: 'one-device-token', allowedDevices: 'sensor-12' };
    expect(grantAllows(grant, 'sensor-12')).toBe(true);
    expect(grantAllows(grant, 'sensor-13')).toBe(false);
    expect(grantAllows({ token: 'dev-token' }, 'sensor-13')).toBe(true);
  });

  it('lets a device publish its own topic only, and a gateway token every device of its glob', () => {
    const device = { token: 'pump-only-token', allowedDevices: 'pump-*' };
    expect(mayPublishFor(device, 'pump-1', 'pump-1')).toBe(true);
    expect(mayPublishFor(device, 'pump-1', 'pump-2')).toBe(false);
    const gateway = { ...device, gateway: true as const };
    expect(mayPublishFor(gateway, 'pump-1', 'pump-2')).toBe(true);
    expect(mayPublishFor(gateway, 'pump-1', 'valve-2')).toBe(false);
  });
});

describe('payloadFormat', () => {
  const ev = (i: number) => JSON.stringify({ deviceId: 'd', ts: 1763803200000 + i, metrics: { temp: i } });

  it('tells JSON (object, array, pretty-printed) from NDJSON of two or more lines', () => {
    expect(payloadFormat(Buffer.from(ev(1)))).toBe('json');
    expect(payloadFormat(Buffer.from(`  [${ev(1)},\n${ev(2)}]`))).toBe('json');
    expect(payloadFormat(Buffer.from(JSON.stringify(JSON.parse(ev(1)), null, 2)))).toBe('json');
    expect(payloadFormat(Buffer.from(`${ev(1)}\n`))).toBe('json');
    expect(payloadFormat(Buffer.from(`${ev(1)}\n${ev(2)}\n`))).toBe('ndjson');
    expect(payloadFormat(Buffer.from(`${ev(1)}\r\n\r\n  ${ev(2)}`))).toBe('ndjson');
    expect(payloadFormat(Buffer.from('{"a":"}\\n{"}'))).toBe('json'); // an escaped newline inside a string
    expect(payloadFormat(Buffer.from(''))).toBe('json');
  });

  it('gives the parser the format under which the payload parses, as HTTP would with the right content type', () => {
    const opts = {
      receivedAt: 1763803200000,
      nowMs: 1763803200000,
      maxFutureMs: 1e9,
      maxPastMs: 1e9,
      maxEvents: 100,
      groupByDevice: true,
    };
    for (const body of [
      ev(1),
      `[${ev(1)},${ev(2)}]`,
      `${ev(1)}\n${ev(2)}\n${ev(3)}\n`,
      JSON.stringify(JSON.parse(ev(1)), null, 2),
    ]) {
      const b = Buffer.from(body);
      const r = parseTelemetry(b, { ...opts, contentType: payloadFormat(b) });
      expect(r.ok).toBe(true);
      expect(r.rejected).toEqual([]);
    }
  });
});
