import { compileRule, parseRule, splitFeature } from './rule';

const good = {
  name: 'overheat',
  devices: 'sensor-*',
  resolution: '10s',
  when: { feature: 'temp.max', op: '>', value: 80, forWindows: 2 },
  webhook: 'http://ops.example/hooks/fleet',
};

const errorsOf = (input: unknown): string[] => {
  const r = parseRule(input);
  if (r.ok) throw new Error('expected errors');
  return r.errors;
};

describe('parseRule', () => {
  it("accepts the contract's examples, as an object or as JSON text", () => {
    expect(parseRule(good)).toEqual({ ok: true, rule: good });
    expect(parseRule(JSON.stringify(good))).toEqual({ ok: true, rule: good });
    const anomaly = { ...good, when: { anomaly: { model: 'iforest' } } };
    expect(parseRule(anomaly)).toEqual({ ok: true, rule: anomaly });
    expect(parseRule({ ...good, when: { anomaly: {} } })).toEqual({
      ok: true,
      rule: { ...good, when: { anomaly: {} } },
    });
    expect(parseRule({ ...good, webhook: 'https://ops.example:8443/h?x=1' }).ok).toBe(true);
  });

  it('takes forWindows as 1 when it is left out', () => {
    const r = parseRule({ ...good, when: { feature: 'temp.max', op: '>=', value: 1 } });
    expect(r.ok && r.rule.when).toEqual({ feature: 'temp.max', op: '>=', value: 1, forWindows: 1 });
  });

  it('names every bad field at once', () => {
    expect(
      errorsOf({
        name: '',
        devices: 'bad glob!',
        resolution: '10m',
        when: { feature: 'temp', op: '=', value: '80', forWindows: 0 },
        webhook: 'ftp://x',
        extra: 1,
      }),
    ).toEqual([
      'extra: unknown field',
      'name: must be 1-100 characters, not blank',
      'devices: a glob is 1-128 characters of [A-Za-z0-9._:-] and the wildcards * ?',
      'resolution: must be <seconds>s, from 1s to 86400s',
      'when.feature: must be <metric>.<stat>, the stat one of count, sum, min, max, mean, stddev, first, last',
      'when.op: must be one of > >= < <=',
      'when.value: required, a finite number',
      'when.forWindows: must be a whole number from 1 to 1000',
      'webhook: must be http or https, not ftp',
    ]);
  });

  it('requires every field', () => {
    expect(errorsOf({})).toEqual([
      'name: required, a string',
      'devices: required, a device glob such as "sensor-*"',
      'resolution: required, such as "10s"',
      'when: required, {"feature", "op", "value", "forWindows"} or {"anomaly": {"model"?}}',
      'webhook: required, an http(s) URL',
    ]);
  });

  it.each([
    [{ name: 'x'.repeat(101) }, 'name: must be 1-100 characters, not blank'],
    [{ name: '   ' }, 'name: must be 1-100 characters, not blank'],
    [{ name: 'a\nb' }, 'name: must not hold control characters'],
    [{ devices: 'x'.repeat(129) }, 'devices: a glob is 1-128 characters of [A-Za-z0-9._:-] and the wildcards * ?'],
    [{ devices: 7 }, 'devices: required, a device glob such as "sensor-*"'],
    [{ resolution: '0s' }, 'resolution: must be <seconds>s, from 1s to 86400s'],
    [{ resolution: '86401s' }, 'resolution: must be <seconds>s, from 1s to 86400s'],
    [{ when: [] }, 'when: required, {"feature", "op", "value", "forWindows"} or {"anomaly": {"model"?}}'],
    [
      { when: { ...good.when, feature: 'temp.median' } },
      expect.stringMatching(/^when\.feature: must be <metric>\.<stat>/),
    ],
    [{ when: { ...good.when, feature: 'bad name.max' } }, expect.stringMatching(/^when\.feature: must be/)],
    [{ when: { ...good.when, feature: 3 } }, 'when.feature: required, metric.stat such as "temp.max"'],
    [{ when: { ...good.when, value: Infinity } }, 'when.value: required, a finite number'],
    [{ when: { ...good.when, forWindows: 1001 } }, 'when.forWindows: must be a whole number from 1 to 1000'],
    [{ when: { ...good.when, forWindows: 1.5 } }, 'when.forWindows: must be a whole number from 1 to 1000'],
    [{ when: { ...good.when, extra: true } }, 'when.extra: unknown field'],
    [{ when: { anomaly: 'iforest' } }, 'when.anomaly: must be an object, {} for any model'],
    [{ when: { anomaly: { model: '' } } }, 'when.anomaly.model: 1-128 characters of [A-Za-z0-9._-]'],
    [{ when: { anomaly: { model: 'm'.repeat(129) } } }, 'when.anomaly.model: 1-128 characters of [A-Za-z0-9._-]'],
    [{ when: { anomaly: { version: '1' } } }, 'when.anomaly.version: unknown field'],
    [{ when: { anomaly: {}, feature: 'temp.max' } }, 'when.feature: unknown field'],
    [{ webhook: 'not a url' }, 'webhook: not a URL'],
    [{ webhook: 'file:///etc/passwd' }, 'webhook: must be http or https, not file'],
    [{ webhook: 'javascript:alert(1)' }, 'webhook: must be http or https, not javascript'],
    [{ webhook: 'http://user:pw@ops.example/' }, expect.stringMatching(/^webhook: must not carry a user/)],
    [{ webhook: `http://ops.example/${'x'.repeat(2048)}` }, 'webhook: at most 2048 characters'],
    [{ id: 'chosen' }, 'id: unknown field'],
  ])('refuses bad field case %#', (change, error) => {
    expect(errorsOf({ ...good, ...change })).toEqual([error]);
  });

  it('refuses what is not a rule', () => {
    expect(errorsOf('{')).toEqual([expect.stringMatching(/^body: not JSON/)]);
    expect(errorsOf(null)).toEqual(['rule: must be a JSON object']);
    expect(errorsOf([good])).toEqual(['rule: must be a JSON object']);
  });
});

describe('features', () => {
  it('split at the last dot, so metric names may hold dots', () => {
    expect(splitFeature('temp.max')).toEqual({ metric: 'temp', stat: 'max' });
    expect(splitFeature('motor.a.stddev')).toEqual({ metric: 'motor.a', stat: 'stddev' });
    expect(splitFeature('.max')).toBeNull();
    expect(splitFeature('temp.')).toBeNull();
  });

  it('compile with the window size', () => {
    const c = compileRule({ ...good, id: 'r', createdAt: 0 } as never);
    expect(c).toMatchObject({ kind: 'threshold', metric: 'temp', stat: 'max', resolutionMs: 10_000, forWindows: 2 });
  });
});
