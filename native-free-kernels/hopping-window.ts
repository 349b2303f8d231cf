/**
 * Hopping (sliding) window assignment: windows [k·slide, k·slide + size) for every integer k,
 * aligned to the Unix epoch; a row at t belongs to every window that contains it, k from
 * ⌊(t − size) / slide⌋ + 1 to ⌊t / slide⌋ — size/slide windows when slide divides size
 * (DESIGN.md B3).
 *
 * The selection is expanded: position p of the output is (row `rows[p]`, window `offsets[p]`
 * relative to `base`). Aggregates then run over the expanded positions exactly as for tumbling
 * windows, so one row feeds each of its windows once.
 */

import { windowNumber } from './tumbling-window.js';

export interface HoppingExpansion {
  /** number of output positions */
  n: number;
  /** base window number; window start of offset o is (base + o) · slide */
  base: number;
}

/** Upper bound of output positions for n rows (size for the output arrays). */
export function hoppingCapacity(n: number, size: number, slide: number): number {
  return n * (Math.ceil(size / slide) + 1);
}

const LIMIT = 1 << 30;

/**
 * The first window number k whose end k·slide + size is > t, given last = ⌊t / slide⌋.
 * Computed from `last` by stepping with exact products rather than from ⌊(t − size) / slide⌋,
 * because t − size itself may round onto a boundary (huge or tiny negative t).
 */
function firstWindow(t: number, last: number, size: number, slide: number): number {
  let f = last - Math.ceil(size / slide) - 1;
  while (f * slide + size <= t) f++;
  return f;
}

/**
 * Expand n selected positions into (row, window) positions. `rows` and `offsets` must hold
 * hoppingCapacity(n) entries. Returns null when the window offsets do not fit in int32 (then
 * use hoppingStarts).
 */
export function assignHopping(
  ts: Float64Array,
  sel: Int32Array | null,
  n: number,
  size: number,
  slide: number,
  rows: Int32Array,
  offsets: Int32Array,
): HoppingExpansion | null {
  if (n === 0) return { n: 0, base: 0 };
  const base = windowNumber(ts[sel === null ? 0 : sel[0]!]!, slide);
  let p = 0;
  let lo = 0;
  let hi = 0;
  for (let i = 0; i < n; i++) {
    const r = sel === null ? i : sel[i]!;
    const t = ts[r]!;
    const last = windowNumber(t, slide);
    const first = firstWindow(t, last, size, slide);
    for (let k = first; k <= last; k++) {
      rows[p] = r;
      offsets[p++] = k - base;
    }
    if (first - base < lo) lo = first - base;
    if (last - base > hi) hi = last - base;
  }
  return lo > -LIMIT && hi < LIMIT ? { n: p, base } : null;
}

/** Fallback for huge spans: expansion with window STARTS (ms) per position. Returns the count. */
export function hoppingStarts(
  ts: Float64Array,
  sel: Int32Array | null,
  n: number,
  size: number,
  slide: number,
  rows: Int32Array,
  starts: Float64Array,
): number {
  let p = 0;
  for (let i = 0; i < n; i++) {
    const r = sel === null ? i : sel[i]!;
    const t = ts[r]!;
    const last = windowNumber(t, slide);
    for (let k = firstWindow(t, last, size, slide); k <= last; k++) {
      rows[p] = r;
      starts[p++] = k * slide;
    }
  }
  return p;
}
