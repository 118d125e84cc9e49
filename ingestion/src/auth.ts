import { createHmac, randomBytes } from 'node:crypto';
import type { TokenGrant } from './config';

/**
 * Looks bearer tokens up without leaking them through timing, their length included: every presented token is
 * reduced to its HMAC-SHA-256 under a key drawn at start-up, and the grant is found by that digest in a Map. The
 * work done on the presented token depends only on its own length (which its sender knows), and the lookup's
 * timing depends only on digests, which say nothing of any token to whoever does not hold the key. One hash per
 * lookup, whatever the number of tokens.
 */
export class TokenTable {
  private readonly key = randomBytes(32);
  private readonly byDigest = new Map<string, TokenGrant>();

  constructor(grants: TokenGrant[]) {
    for (const grant of grants) {
      const digest = this.digest(grant.token);
      if (!this.byDigest.has(digest)) this.byDigest.set(digest, grant);
    }
  }

  /** The grant of `Authorization: Bearer <token>`, or undefined when absent or unknown. */
  fromAuthorizationHeader(header: string | undefined): TokenGrant | undefined {
    if (header === undefined) return undefined;
    const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
    return m ? this.lookup(m[1]!) : undefined;
  }

  lookup(token: string | Buffer): TokenGrant | undefined {
    return this.byDigest.get(this.digest(token));
  }

  private digest(token: string | Buffer): string {
    return createHmac('sha256', this.key).update(token).digest('base64');
  }
}
