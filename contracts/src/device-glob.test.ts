import { DeviceGlobSyntax, globMatch, parseTokenEntries, TokenSyntax } from './device-glob';

describe('device globs', () => {
  it.each([
    ['sensor-*', 'sensor-12', true],
    ['sensor-*', 'sensor-', true],
    ['sensor-*', 'pump-1', false],
    ['*-12', 'sensor-12', true],
    ['s?nsor-1', 'sensor-1', true],
    ['s?nsor-1', 'snsor-1', false],
    ['*a*b*', 'xxaxxbxx', true],
    ['*a*b', 'xxaxxbxc', false],
    ['exact', 'exact', true],
    ['exact', 'Exact', false],
    ['*', '', true],
    ['?', '', false],
  ])('%s against %s: %s', (glob, text, expected) => {
    expect(globMatch(glob, text)).toBe(expected);
  });

  it('stays linear on patterns made to backtrack', () => {
    const text = 'a'.repeat(128);
    const glob = '*a'.repeat(40) + 'b';
    // No timing assertion (shared machines): an exponential matcher would not finish within the test's timeout.
    expect(globMatch(glob, text)).toBe(false);
  });

  it('says which tokens and patterns are well formed', () => {
    expect(TokenSyntax.test('s3cret-token-1')).toBe(true);
    expect(TokenSyntax.test('short')).toBe(false);
    expect(DeviceGlobSyntax.test('sensor-*')).toBe(true);
    expect(DeviceGlobSyntax.test('sensor/*')).toBe(false);
  });

  it('reads a token list, naming the variable and the entry of each malformed one', () => {
    const problems: string[] = [];
    expect(
      parseTokenEntries('TOKENS', ' tok-one-1=sensor-* ,, short, tok-two-22, tok-three=bad glob', problems),
    ).toEqual([
      { token: 'tok-one-1', glob: 'sensor-*', entry: 1 },
      { token: 'tok-two-22', entry: 4 },
    ]);
    expect(problems).toEqual([
      'TOKENS entry 3: a token is 8-256 chars of [A-Za-z0-9._~+/-]',
      'TOKENS entry 5: device pattern "bad glob" may use [A-Za-z0-9._:-] and the wildcards * ?',
    ]);
  });
});
