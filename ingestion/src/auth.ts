import { timingSafeEqual } from 'node:crypto';
import type { TokenGrant } from './config';

/** Looks bearer tokens up in constant time per candidate, so timing does not leak a token's prefix. */
export class TokenTable {
  private readonly grants: { token: Buffer; grant: TokenGrant }[];

  constructor(grants: TokenGrant[]) {
    this.grants = grants.map((grant) => ({ token: Buffer.from(grant.token), grant }));
  }

  /** The grant of `Authorization: Bearer <token>`, or undefined when absent or unknown. */
  fromAuthorizationHeader(header: string | undefined): TokenGrant | undefined {
    if (header === undefined) return undefined;
    const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
    return m ? this.lookup(m[1]!) : undefined;
  }

  lookup(token: string): TokenGrant | undefined {
    const candidate = Buffer.from(token);
    let found: TokenGrant | undefined;
    for (const { token: known, grant } of this.grants) {
      if (known.length === candidate.length && timingSafeEqual(known, candidate)) found ??= grant;
    }
    return found;
  }
}
