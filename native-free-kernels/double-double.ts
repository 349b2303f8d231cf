/**
 * Double-double arithmetic (a value is hi + lo, ~106 bits) for the final step of the
 * floating-point aggregates. Used once per group when a window closes, never per row, so
 * clarity beats speed here; the per-row accumulation loops inline TwoSum themselves.
 *
 * Each operation returns its result in `dd.hi` / `dd.lo` (no allocation).
 */

const SPLIT = 134217729; // 2^27 + 1, Dekker's splitter

export const dd = { hi: 0, lo: 0 };

/** hi + lo = a + b exactly (Knuth's TwoSum). */
export function twoSum(a: number, b: number): void {
  const s = a + b;
  const bb = s - a;
  dd.hi = s;
  dd.lo = a - (s - bb) + (b - bb);
}

/** hi + lo = a · b exactly (Dekker's TwoProduct, no FMA). */
export function twoProd(a: number, b: number): void {
  const p = a * b;
  if (!(Math.abs(a) < 1e300 && Math.abs(b) < 1e300)) {
    // the split would overflow (or the operands are ±Infinity / NaN): no error term, which at
    // these magnitudes is below anything a double can show next to p anyway
    dd.hi = p;
    dd.lo = 0;
    return;
  }
  let c = SPLIT * a;
  const ah = c - (c - a);
  const al = a - ah;
  c = SPLIT * b;
  const bh = c - (c - b);
  const bl = b - bh;
  dd.hi = p;
  dd.lo = ah * bh - p + ah * bl + al * bh + al * bl;
}

/** (ah + al) + (bh + bl), normalised. */
export function ddAdd(ah: number, al: number, bh: number, bl: number): void {
  twoSum(ah, bh);
  const s = dd.hi;
  const e = dd.lo + al + bl;
  twoSum(s, e);
}

/** (ah + al) / b, normalised. */
export function ddDiv(ah: number, al: number, b: number): void {
  const q = ah / b;
  twoProd(q, b);
  const r = (ah - dd.hi - dd.lo + al) / b;
  twoSum(q, r);
}

/** (ah + al)², normalised. */
export function ddSquare(ah: number, al: number): void {
  twoProd(ah, ah);
  const p = dd.hi;
  const e = dd.lo + 2 * ah * al + al * al;
  twoSum(p, e);
}
