/**
 * 32-bit hashing of column values without allocation: murmur3's finaliser and combine step on
 * Math.imul. Every key component is one or two 32-bit words (int64 and float64 are hashed by
 * their two words), so hashing a row never builds a string or a BigInt.
 */

/** murmur3 fmix32: full avalanche of one word. */
export function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h | 0;
}

/** murmur3 body step: fold word k into running hash h. Finish with fmix32. */
export function hashCombine(h: number, k: number): number {
  k = Math.imul(k, 0xcc9e2d51);
  k = (k << 15) | (k >>> 17);
  k = Math.imul(k, 0x1b873593);
  h ^= k;
  h = (h << 13) | (h >>> 19);
  return (Math.imul(h, 5) + 0xe6546b64) | 0;
}

export const HASH_SEED = 0x9747b28c | 0;

const f64 = new Float64Array(1);
const f64words = new Int32Array(f64.buffer);

/**
 * The two words of a double, with -0 folded into +0 and every NaN into one canonical NaN so
 * that equal-by-SQL keys hash and compare equal. Returns lo; hi is left in `doubleHi`.
 */
export let doubleHi = 0;
export function doubleLo(v: number): number {
  f64[0] = v === 0 ? 0 : v !== v ? NaN : v;
  doubleHi = f64words[1]!;
  return f64words[0]!;
}

/** Hash of one double (canonicalised as in doubleLo). */
export function hashDouble(v: number, seed: number = HASH_SEED): number {
  const lo = doubleLo(v);
  return fmix32(hashCombine(hashCombine(seed, lo), doubleHi));
}

/** Hash of an int64 given as two words. */
export function hashInt64(lo: number, hi: number, seed: number = HASH_SEED): number {
  return fmix32(hashCombine(hashCombine(seed, lo), hi));
}

/** Hash of an int32 / bool / dictionary id. */
export function hashInt32(v: number, seed: number = HASH_SEED): number {
  return fmix32(hashCombine(seed, v));
}

/**
 * Hash of a string by its UTF-16 code units (two per word). Called once per dictionary entry,
 * never per row.
 */
export function hashString(s: string, seed: number = HASH_SEED): number {
  let h = seed;
  const n = s.length;
  let i = 0;
  for (; i + 1 < n; i += 2) h = hashCombine(h, s.charCodeAt(i) | (s.charCodeAt(i + 1) << 16));
  if (i < n) h = hashCombine(h, s.charCodeAt(i));
  return fmix32(h ^ n);
}
