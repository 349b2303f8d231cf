/**
 * ISO-8601 / RFC 3339 timestamps → milliseconds since the epoch, one parser for every place
 * Sluice reads them (JSON and MessagePack batches, timestamp literals in expressions).
 *
 * Accepted: a date (`2024-05-01`), optionally a time after `T`, `t` or a space (`12:30`,
 * `12:30:15`, `12:30:15.250`, fraction with `.` or `,`, up to 9 digits), optionally a zone
 * after a time (`Z`, `z`, `+02`, `+0200`, `+02:00`). No zone means UTC. Digits beyond the
 * millisecond are dropped, i.e. the time is floored to whole milliseconds, as Arrow µs / ns
 * timestamps are. Date.parse alone would accept `May 1 2024` and read zone-less times in the
 * host's local zone; the calendar arithmetic here does not use Date, so the result does not
 * depend on the host.
 */

const ISO_RE = /^(\d{4})-(\d{2})-(\d{2})(?:[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?(?:([Zz])|([+-])(\d{2})(?::?(\d{2}))?)?)?$/;
const MONTH_DAYS = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

/** Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil). */
function daysFromCivil(y: number, m: number, d: number): number {
  y -= m <= 2 ? 1 : 0;
  const era = Math.floor(y / 400);
  const yoe = y - era * 400;
  const doy = Math.floor((153 * (m > 2 ? m - 3 : m + 9) + 2) / 5) + d - 1;
  const doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy;
  return era * 146097 + doe - 719468;
}

/** Milliseconds since the epoch, or NaN when the text is not such a timestamp. */
export function parseIsoTimestamp(s: string): number {
  if (s.length > 40) return NaN;
  const m = ISO_RE.exec(s);
  if (m === null) return NaN;
  const year = Number(m[1]);
  const month = Number(m[2]);
  const day = Number(m[3]);
  if (month < 1 || month > 12 || day < 1) return NaN;
  const leap = (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0;
  if (day > (month === 2 && leap ? 29 : MONTH_DAYS[month - 1]!)) return NaN;
  let ms = daysFromCivil(year, month, day) * 86400000;
  if (m[4] !== undefined) {
    const hour = Number(m[4]);
    const minute = Number(m[5]);
    const second = m[6] === undefined ? 0 : Number(m[6]);
    if (hour > 23 || minute > 59 || second > 59) return NaN;
    ms += hour * 3600000 + minute * 60000 + second * 1000;
    if (m[7] !== undefined) ms += Number(m[7].slice(0, 3).padEnd(3, '0'));
    if (m[9] !== undefined) {
      const oh = Number(m[10]);
      const om = m[11] === undefined ? 0 : Number(m[11]);
      if (oh > 23 || om > 59) return NaN;
      const off = (oh * 60 + om) * 60000;
      ms += m[9] === '+' ? -off : off;
    }
  }
  return ms;
}
