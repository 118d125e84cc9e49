/**
 * Device patterns of tokens (docs/contract.md, "Telemetry in" and "Dashboard API"): ingestion's device tokens and
 * the dashboard's viewer/admin tokens may be limited to device ids by a glob. One matcher, so a pattern means the
 * same thing at every door; the Rust parser (native/src/parser/events.rs) is held to it by the parsers' differential
 * tests.
 */

/** A token's characters and length, as FLEETPULSE_TOKENS and the dashboard's tokens take them. */
export const TokenSyntax = /^[A-Za-z0-9._~+/-]{8,256}$/;

/** A device pattern: device-id characters and the wildcards `*` (any run) and `?` (one character). */
export const DeviceGlobSyntax = /^[A-Za-z0-9._:*?-]{1,128}$/;

/**
 * `*` any run of characters, `?` exactly one, everything else itself, case-sensitive. Backtracks only to the last
 * `*` (O(glob x text)), so no pattern can make a match explode.
 */
export function globMatch(glob: string, text: string): boolean {
  let g = 0;
  let t = 0;
  let star = -1;
  let mark = 0;
  while (t < text.length) {
    if (g < glob.length && (glob[g] === '?' || glob[g] === text[t])) {
      g++;
      t++;
    } else if (g < glob.length && glob[g] === '*') {
      star = g++;
      mark = t;
    } else if (star >= 0) {
      g = star + 1;
      t = ++mark;
    } else return false;
  }
  while (g < glob.length && glob[g] === '*') g++;
  return g === glob.length;
}

/** One `<token>[=<device glob>]` entry of a token list. */
export interface TokenEntry {
  token: string;
  /** Absent: the token is not limited to devices. */
  glob?: string;
  /** Its place in the list, from 1, for messages. */
  entry: number;
}

/**
 * `tok1=sensor-*,tok2` (the syntax of FLEETPULSE_TOKENS and of the dashboard's token lists) -> its entries. A
 * malformed entry is left out, and what is wrong with it goes to `problems`, naming `variable` and the entry.
 */
export function parseTokenEntries(variable: string, spec: string, problems: string[]): TokenEntry[] {
  const entries: TokenEntry[] = [];
  for (const [i, item] of spec.split(',').entries()) {
    const text = item.trim();
    if (text === '') continue;
    const eq = text.indexOf('=');
    const token = eq < 0 ? text : text.slice(0, eq);
    const glob = eq < 0 ? undefined : text.slice(eq + 1);
    if (!TokenSyntax.test(token)) {
      problems.push(`${variable} entry ${i + 1}: a token is 8-256 chars of [A-Za-z0-9._~+/-]`);
      continue;
    }
    if (glob !== undefined && !DeviceGlobSyntax.test(glob)) {
      problems.push(
        `${variable} entry ${i + 1}: device pattern "${glob}" may use [A-Za-z0-9._:-] and the wildcards * ?`,
      );
      continue;
    }
    entries.push({ token, entry: i + 1, ...(glob === undefined ? {} : { glob }) });
  }
  return entries;
}
