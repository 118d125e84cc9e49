/** Webhook signatures (docs/contract.md, "Alerts (v2)"): `X-Fleetpulse-Signature: sha256=<hex HMAC-SHA256 of the body>`. */
import { createHmac, timingSafeEqual } from 'node:crypto';

export const SignatureHeader = 'x-fleetpulse-signature';
export const DeliveryHeader = 'x-fleetpulse-delivery';

/** The header value for `body` (the exact bytes sent) under `secret`. */
export function sign(body: string | Buffer, secret: string): string {
  return `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
}

/** What a receiver does: recompute and compare in constant time. */
export function verifySignature(body: string | Buffer, secret: string, header: string | undefined | null): boolean {
  if (typeof header !== 'string') return false;
  const expected = Buffer.from(sign(body, secret));
  const given = Buffer.from(header);
  return given.length === expected.length && timingSafeEqual(given, expected);
}
