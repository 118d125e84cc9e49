import { createHmac } from 'node:crypto';
import { sign, verifySignature } from './signature';

describe('webhook signatures', () => {
  const body = '{"id":"abc","state":"firing"}';
  const secret = 'a-secret-of-16-chars';

  it('are sha256=<hex HMAC-SHA256 of the body>', () => {
    expect(sign(body, secret)).toBe(`sha256=${createHmac('sha256', secret).update(body).digest('hex')}`);
    expect(sign(body, secret)).toMatch(/^sha256=[0-9a-f]{64}$/);
  });

  it('verify only the same body under the same secret', () => {
    const header = sign(body, secret);
    expect(verifySignature(body, secret, header)).toBe(true);
    expect(verifySignature(Buffer.from(body), secret, header)).toBe(true);
    expect(verifySignature(body.replace('firing', 'resolved'), secret, header)).toBe(false);
    expect(verifySignature(body, `${secret}x`, header)).toBe(false);
    expect(verifySignature(body, secret, header.slice(0, -1))).toBe(false);
    expect(verifySignature(body, secret, undefined)).toBe(false);
  });
});
