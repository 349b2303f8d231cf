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

/** The smallest and largest offset written (lets the group-by skip its own range pass). */
export interface OffsetRange {
  lo: number;
  hi: number;
}

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
  range?: OffsetRange,
): number | null {
  if (n === 0) {
    if (range !== undefined) {
      range.lo = 0;
      range.hi = 0;
    }
    return 0;
  }
  const base = windowNumber(ts[sel === null ? 0 : sel[0]!]!, size);
  // Consecutive events almost always fall in the window of the previous one: keep its bounds
  // and divide only when an event leaves them (2× faster than dividing for every row).
  let start = base * size;
  let end = start + size;
  let cur = 0;
  let lo = 0;
  let hi = 0;
  for (let i = 0; i < n; i++) {
    const t = ts[sel === null ? i : sel[i]!]!;
    if (t < start || t >= end) {
      const k = windowNumber(t, size);
      cur = k - base;
      start = k * size;
      end = start + size;
      if (cur < lo) lo = cur;
      else if (cur > hi) hi = cur;
    }
    offsets[i] = cur;
  }
  if (range !== undefined) {
    range.lo = lo;
    range.hi = hi;
  }
  return lo > -LIMIT && hi < LIMIT ? base : null;
}

/** Fallback of assignTumbling for huge spans: the window START (ms) per position. */
export function tumblingStarts(ts: Float64Array, sel: Int32Array | null, n: number, size: number, starts: Float64Array): void {
  for (let i = 0; i < n; i++) starts[i] = windowNumber(ts[sel === null ? i : sel[i]!]!, size) * size;
}
