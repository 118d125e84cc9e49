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
