/**
 * Tumbling window assignment: a row at event time t belongs to window number k = ⌊t / size⌋,
 * i.e. [k·size, (k+1)·size), aligned to the Unix epoch (DESIGN.md B3).
 *
 * Output is per position of the selection: `offsets[i] = k − base`, an int32 that the group-by
 * hashes as one word, with `base` the window number of the first selected row. A batch whose
 * windows span more than 2^30 numbers (1 ms windows over 12 days of event time) does not fit;
 * the function then returns null and the caller uses `windowNumbers` (float64) instead.
 */

/** Window number of t for windows of `size` starting at multiples of `size` (exact for any t). */
export function windowNumber(t: number, size: number): number {
  let k = Math.floor(t / size);
  // t / size is rounded; for fractional t near a boundary the floor can be off by one.
  if (k * size > t) k--;
  else if ((k + 1) * size <= t) k++;
  return k;
}

const LIMIT = 1 << 30;

/**
 * Assign positions 0..n-1 (rows `sel[i]`, or i when sel is null) to tumbling windows.
 * Returns the base window number, or null when offsets do not fit in int32.
 */
export function assignTumbling(
  ts: Float64Array,
  sel: Int32Array | null,
  n: number,
  size: number,
  offsets: Int32Array,
): number | null {
  if (n === 0) return 0;
  const base = windowNumber(ts[sel === null ? 0 : sel[0]!]!, size);
  let lo = 0;
  let hi = 0;
  for (let i = 0; i < n; i++) {
    const t = ts[sel === null ? i : sel[i]!]!;
    // inline of windowNumber(t, size) - base
    let k = Math.floor(t / size);
    if (k * size > t) k--;
    else if ((k + 1) * size <= t) k++;
    const o = k - base;
    if (o < lo) lo = o;
    else if (o > hi) hi = o;
    offsets[i] = o;
  }
  return lo > -LIMIT && hi < LIMIT ? base : null;
}

/** Fallback of assignTumbling for huge spans: the window START (ms) per position. */
export function tumblingStarts(ts: Float64Array, sel: Int32Array | null, n: number, size: number, starts: Float64Array): void {
  for (let i = 0; i < n; i++) starts[i] = windowNumber(ts[sel === null ? i : sel[i]!]!, size) * size;
}
