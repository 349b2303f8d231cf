/**
 * Deterministic test data.
 *
 *   const rng = mulberry32(42);
 *   const batch = randomBatch(schema, 1000, rng, { nullRate: 0.1 });
 *
 * `randomBatch` builds a valid engine Batch (engine/schema.ts layout) with the values that break
 * code: int64 beyond ±2^53 and at the int64 limits, negative numbers, int32 limits, floats of
 * every magnitude (and NaN / ±Infinity unless `nonFinite: false`), empty and non-ASCII strings
 * (accents, CJK, emoji, quotes, backslashes, newlines, NUL, a leading BOM), and timestamps in no
 * particular order, before and after 1970. Same seed, same batch.
 */
import type { Batch, Column, ColumnType, StreamSchema, StringColumn } from '../../engine/schema.js';

import { mulberry32, type Rng } from '../../bench/random.js';

export { mulberry32, type Rng };

export interface RandomBatchOptions {
  /** Probability that a value is null (default 0.1). With 0, every column has `valid = null`. */
  nullRate?: number;
  /** Put NaN, +Infinity and -Infinity into float64 columns (default true; JSON cannot carry them). */
  nonFinite?: boolean;
}

const TWO_32 = 4294967296;

const STRINGS = [
  '', 'a', 'web', 'mobile', 'spam', 'café', 'ünïcödé', '日本語', 'emoji 🎉🚀', 'quote "x"', 'back\\slash',
  'new\nline', 'tab\tand\rcr', 'nul\u0000byte', '\uFEFFbom first', 'Ω≈ç√∫', 'a-rather-long-channel-name-beyond-24-bytes',
];
const ALPHABET = 'abcdefghijklmnopqrstuvwxyz0123456789 _-éßø中文€😀';

function pick<T>(rng: Rng, items: readonly T[]): T {
  return items[Math.floor(rng() * items.length)]!;
}

function randomString(rng: Rng): string {
  if (rng() < 0.7) return pick(rng, STRINGS);
  const chars = [...ALPHABET];
  const n = 1 + Math.floor(rng() * 40);
  let s = '';
  for (let i = 0; i < n; i++) s += pick(rng, chars);
  return s;
}

/** [lo, hi] words of an int64 from a mix of small, safe, huge and limit values. */
function randomInt64(rng: Rng): [number, number] {
  const r = rng();
  if (r < 0.3) return words(Math.floor(rng() * 2001) - 1000);
  if (r < 0.6) return words(Math.floor((rng() * 2 - 1) * Number.MAX_SAFE_INTEGER));
  if (r < 0.9) return [(rng() * TWO_32) | 0, (rng() * TWO_32) | 0]; // anywhere in int64, mostly beyond 2^53
  return pick(rng, [
    [0, -0x80000000], [-1, 0x7fffffff], // int64 min / max
    [0, 0x200000], [1, 0x200000], [0, -0x200000], [-1, -0x200001], // ±2^53, 2^53 + 1, -2^53 - 1
    [-1, 0x1fffff], [1, -0x200000], // ±(2^53 - 1)
    [-1, -1], [0, 0],
  ] as [number, number][]);
}

function words(v: number): [number, number] {
  const hi = Math.floor(v / TWO_32);
  return [(v - hi * TWO_32) | 0, hi | 0];
}

function randomFloat(rng: Rng, nonFinite: boolean): number {
  const r = rng();
  if (nonFinite && r < 0.06) return pick(rng, [NaN, Infinity, -Infinity]);
  if (r < 0.2) return Math.floor((rng() - 0.5) * 2000); // integral values
  if (r < 0.25) return pick(rng, [0, 5e-324, Number.MAX_VALUE, -Number.MAX_VALUE, 0.1, 1 / 3]);
  return (rng() - 0.5) * 10 ** Math.floor(rng() * 40 - 20);
}

/** Random ms in [1900, 2100), integral, unordered. */
function randomTimestamp(rng: Rng): number {
  return Math.floor(-2208988800000 + rng() * 6311433600000);
}

function randomColumn(type: ColumnType, n: number, rng: Rng, nullRate: number, nonFinite: boolean): Column {
  let valid: Uint8Array | null = null;
  if (nullRate > 0) {
    valid = new Uint8Array(n);
    let nulls = 0;
    for (let i = 0; i < n; i++) {
      valid[i] = rng() < nullRate ? 0 : 1;
      nulls += 1 - valid[i]!;
    }
    if (nulls === 0) valid = null;
  }
  const present = (i: number): boolean => valid === null || valid[i] === 1;
  switch (type) {
    case 'bool': {
      const values = new Uint8Array(n);
      for (let i = 0; i < n; i++) if (present(i)) values[i] = rng() < 0.5 ? 1 : 0;
      return { type, values, valid };
    }
    case 'int32': {
      const values = new Int32Array(n);
      for (let i = 0; i < n; i++) {
        if (!present(i)) continue;
        const r = rng();
        values[i] = r < 0.1 ? pick(rng, [-0x80000000, 0x7fffffff, 0, -1]) : r < 0.5 ? Math.floor(rng() * 200) - 100 : (rng() * TWO_32) | 0;
      }
      return { type, values, valid };
    }
    case 'int64': {
      const w = new Int32Array(2 * n);
      for (let i = 0; i < n; i++) {
        if (!present(i)) continue;
        const [lo, hi] = randomInt64(rng);
        w[2 * i] = lo;
        w[2 * i + 1] = hi;
      }
      return { type, words: w, valid };
    }
    case 'float64': {
      const values = new Float64Array(n);
      for (let i = 0; i < n; i++) if (present(i)) values[i] = randomFloat(rng, nonFinite);
      return { type, values, valid };
    }
    case 'timestamp': {
      const values = new Float64Array(n);
      for (let i = 0; i < n; i++) if (present(i)) values[i] = randomTimestamp(rng);
      return { type, values, valid };
    }
    case 'string': {
      const codes = new Int32Array(n);
      const dict: string[] = [];
      const ids = new Map<string, number>();
      for (let i = 0; i < n; i++) {
        if (!present(i)) continue;
        const s = randomString(rng);
        let id = ids.get(s);
        if (id === undefined) {
          id = dict.length;
          ids.set(s, id);
          dict.push(s);
        }
        codes[i] = id;
      }
      return { type, codes, dict, valid };
    }
  }
}

/** A random batch of `rows` rows for `schema`; values at null positions are 0. */
export function randomBatch(schema: StreamSchema, rows: number, rng: Rng, opts: RandomBatchOptions = {}): Batch {
  const nullRate = opts.nullRate ?? 0.1;
  const nonFinite = opts.nonFinite ?? true;
  const columns = schema.fields.map((f) => randomColumn(f.type, rows, rng, nullRate, nonFinite));
  return { schema, length: rows, columns };
}

/** Strings as a dictionary-encoded column, no nulls (each distinct string once in `dict`). */
export function stringColumnOf(values: readonly string[]): StringColumn {
  const dict: string[] = [];
  const ids = new Map<string, number>();
  const codes = new Int32Array(values.length);
  for (let i = 0; i < values.length; i++) {
    const s = values[i]!;
    let id = ids.get(s);
    if (id === undefined) {
      id = dict.length;
      dict.push(s);
      ids.set(s, id);
    }
    codes[i] = id;
  }
  return { type: 'string', codes, dict, valid: null };
}
