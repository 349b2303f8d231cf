/**
 * Human durations and sizes in configuration values (DESIGN.md A2): `250ms`, `1m30s`, `16MiB`.
 *
 * Both parse to integers (milliseconds, bytes) and reject anything that would need rounding:
 * `0.5ms` or `1.5B` is almost certainly a mistake, and silently rounding it would make two
 * spellings of "the same" config behave differently. Fractions are computed in integer
 * arithmetic (`1.1s` is 1100 ms, not 1100.0000000000002).
 */
import { sluiceError } from './errors.js';

export const DURATION_MESSAGE = 'expected a duration like 10s';
export const SIZE_MESSAGE = 'expected a size like 16MiB';

/** Milliseconds per duration unit, largest first (compound durations must use this order). */
const DURATION_UNITS: ReadonlyArray<readonly [unit: string, ms: number]> = [
  ['d', 86_400_000],
  ['h', 3_600_000],
  ['m', 60_000],
  ['s', 1_000],
  ['ms', 1],
];
const DURATION_UNIT_RANK = new Map(DURATION_UNITS.map(([u, ms], rank) => [u, { ms, rank }]));

/** One `<number><unit>` term; `ms` is tried before `m` so `250ms` is not `250m` + `s`. */
const DURATION_TERM = /(\d+)(?:\.(\d{1,9}))?(ms|d|h|m|s)/y;
const PLAIN_INTEGER = /^\d+$/;

/** Bytes per size unit. Decimal units are powers of 1000, binary (…iB) of 1024; case-insensitive. */
const SIZE_UNITS = new Map<string, number>([
  ['b', 1],
  ['kb', 1e3],
  ['mb', 1e6],
  ['gb', 1e9],
  ['tb', 1e12],
  ['kib', 2 ** 10],
  ['mib', 2 ** 20],
  ['gib', 2 ** 30],
  ['tib', 2 ** 40],
]);
const SIZE_TEXT = /^(\d+)(?:\.(\d{1,9}))? ?([A-Za-z]+)?$/;

/** `int.frac` × unit as an exact integer, or undefined when the product is not an integer. */
function scaled(intDigits: string, fracDigits: string | undefined, unit: number): number | undefined {
  let value = Number(intDigits) * unit;
  if (fracDigits !== undefined) {
    const scale = 10 ** fracDigits.length;
    const num = Number(fracDigits) * unit;
    if (num % scale !== 0) return undefined;
    value += num / scale;
  }
  return Number.isSafeInteger(value) ? value : undefined;
}

/**
 * A duration in integer milliseconds, or undefined when `v` is not one. Accepts a non-negative
 * integer number or digit string (milliseconds) and strings of terms with units
 * `d h m s ms` in decreasing order, each at most once: `250ms`, `10s`, `1m30s`, `1.5h`.
 */
export function durationMs(v: unknown): number | undefined {
  if (typeof v === 'number') return Number.isSafeInteger(v) && v >= 0 ? v : undefined;
  if (typeof v !== 'string') return undefined;
  const s = v.trim();
  if (s === '') return undefined;
  if (PLAIN_INTEGER.test(s)) {
    const n = Number(s);
    return Number.isSafeInteger(n) ? n : undefined;
  }
  let total = 0;
  let lastRank = -1;
  DURATION_TERM.lastIndex = 0;
  while (DURATION_TERM.lastIndex < s.length) {
    const m = DURATION_TERM.exec(s);
    if (m === null) return undefined;
    const unit = DURATION_UNIT_RANK.get(m[3]!)!;
    if (unit.rank <= lastRank) return undefined;
    lastRank = unit.rank;
    const part = scaled(m[1]!, m[2], unit.ms);
    if (part === undefined) return undefined;
    total += part;
  }
  return Number.isSafeInteger(total) ? total : undefined;
}

/**
 * A size in integer bytes, or undefined when `v` is not one. Accepts a non-negative integer
 * number or digit string (bytes) and `<number>[ ]<unit>` with B, KB, MB, GB, TB (powers of
 * 1000) or KiB, MiB, GiB, TiB (powers of 1024), case-insensitive: `16MiB`, `1.5MiB`, `10MB`.
 */
export function sizeBytes(v: unknown): number | undefined {
  if (typeof v === 'number') return Number.isSafeInteger(v) && v >= 0 ? v : undefined;
  if (typeof v !== 'string') return undefined;
  const m = SIZE_TEXT.exec(v.trim());
  if (m === null) return undefined;
  if (m[3] === undefined) return m[2] === undefined ? scaled(m[1]!, undefined, 1) : undefined;
  const unit = SIZE_UNITS.get(m[3].toLowerCase());
  return unit === undefined ? undefined : scaled(m[1]!, m[2], unit);
}

/** `parseDuration('1m30s') === 90000`; throws SLUICE_CONFIG_INVALID for anything else. */
export function parseDuration(s: string | number): number {
  const ms = durationMs(s);
  if (ms === undefined) throw sluiceError('CONFIG_INVALID', `${DURATION_MESSAGE}, got ${JSON.stringify(s)}`);
  return ms;
}

/** `parseSize('16MiB') === 16777216`; throws SLUICE_CONFIG_INVALID for anything else. */
export function parseSize(s: string | number): number {
  const bytes = sizeBytes(s);
  if (bytes === undefined) throw sluiceError('CONFIG_INVALID', `${SIZE_MESSAGE}, got ${JSON.stringify(s)}`);
  return bytes;
}

/** The shortest compound form: 90000 → `1m30s`, 250 → `250ms`, 0 → `0s`. Round-trips through parseDuration. */
export function formatDuration(ms: number): string {
  if (!Number.isSafeInteger(ms) || ms < 0) throw sluiceError('INTERNAL', `formatDuration: not a duration in ms: ${ms}`);
  if (ms === 0) return '0s';
  let rest = ms;
  let out = '';
  for (const [unit, size] of DURATION_UNITS) {
    const n = Math.floor(rest / size);
    if (n > 0) {
      out += `${n}${unit}`;
      rest -= n * size;
    }
  }
  return out;
}

/** 16777216 → `16MiB`, 10000000 → `10MB`, 1000001 → `1000001B`. Round-trips through parseSize. */
export function formatSize(bytes: number): string {
  if (!Number.isSafeInteger(bytes) || bytes < 0) throw sluiceError('INTERNAL', `formatSize: not a size in bytes: ${bytes}`);
  if (bytes === 0) return '0B';
  for (const [unit, label] of [[2 ** 40, 'TiB'], [2 ** 30, 'GiB'], [2 ** 20, 'MiB'], [2 ** 10, 'KiB'],
    [1e12, 'TB'], [1e9, 'GB'], [1e6, 'MB'], [1e3, 'KB']] as const) {
    if (bytes % unit === 0) return `${bytes / unit}${label}`;
  }
  return `${bytes}B`;
}
