/**
 * RFC 3339 timestamps to epoch milliseconds (twin of `src/parser/rfc3339.rs`), for the `ts` field's string form.
 *
 * Separate because it is a self-contained calendar calculation with its own exact grammar, used only by
 * validation and tested through the vectors' timestamp cases.
 */
import { isDigit } from './scanner';

/** `YYYY-MM-DDTHH:MM:SS[.fff...](Z|+HH:MM|-HH:MM)`, at most 64 chars, to epoch ms; fraction truncated to ms. */
export function rfc3339Ms(t: string): number | undefined {
  const num = (a: number, n: number): number | undefined => {
    if (a + n > t.length) return undefined;
    let v = 0;
    for (let i = a; i < a + n; i++) {
      const c = t.charCodeAt(i);
      if (!isDigit(c)) return undefined;
      v = v * 10 + (c - 0x30);
    }
    return v;
  };
  // Bounded so a huge fraction cannot cost anything; no real timestamp comes close.
  if (t.length < 20 || t.length > 64) return undefined;
  const year = num(0, 4);
  if (t[4] !== '-' || t[7] !== '-' || (t[10] !== 'T' && t[10] !== 't') || t[13] !== ':' || t[16] !== ':') {
    return undefined;
  }
  const month = num(5, 2);
  const day = num(8, 2);
  const hour = num(11, 2);
  const minute = num(14, 2);
  const second = num(17, 2);
  if (
    year === undefined ||
    month === undefined ||
    day === undefined ||
    hour === undefined ||
    minute === undefined ||
    second === undefined
  ) {
    return undefined;
  }
  let i = 19;
  let fracMs = 0;
  if (t[i] === '.') {
    i++;
    const fs = i;
    while (i < t.length && isDigit(t.charCodeAt(i))) i++;
    if (i === fs) return undefined;
    for (let k = 0; k < 3; k++) fracMs = fracMs * 10 + (fs + k < i ? t.charCodeAt(fs + k) - 0x30 : 0);
  }
  const c = t[i];
  let offsetMin: number;
  if ((c === 'Z' || c === 'z') && i + 1 === t.length) offsetMin = 0;
  else if ((c === '+' || c === '-') && i + 6 === t.length && t[i + 3] === ':') {
    const oh = num(i + 1, 2);
    const om = num(i + 4, 2);
    if (oh === undefined || om === undefined || oh > 23 || om > 59) return undefined;
    offsetMin = c === '-' ? -(oh * 60 + om) : oh * 60 + om;
  } else return undefined;
  if (month < 1 || month > 12 || day < 1 || day > daysInMonth(year, month)) return undefined;
  if (hour > 23 || minute > 59 || second > 59) return undefined;
  const days = daysFromCivil(year, month, day);
  return days * 86_400_000 + hour * 3_600_000 + minute * 60_000 + second * 1000 + fracMs - offsetMin * 60_000;
}

function daysInMonth(y: number, m: number): number {
  if (m === 2) return (y % 4 === 0 && y % 100 !== 0) || y % 400 === 0 ? 29 : 28;
  return m === 4 || m === 6 || m === 9 || m === 11 ? 30 : 31;
}

/** Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm). */
function daysFromCivil(y0: number, m: number, d: number): number {
  const y = m <= 2 ? y0 - 1 : y0;
  const era = Math.floor(y / 400);
  const yoe = y - era * 400;
  const mp = m > 2 ? m - 3 : m + 9;
  const doy = Math.floor((153 * mp + 2) / 5) + d - 1;
  const doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy;
  return era * 146_097 + doe - 719_468;
}
