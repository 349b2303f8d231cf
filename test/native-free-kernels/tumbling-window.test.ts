import { test } from 'node:test';
import assert from 'node:assert/strict';
import { assignTumbling, tumblingStarts, windowNumber } from '../../native-free-kernels/tumbling-window.js';
import { mulberry32, type Rng } from '../helpers/random.js';

/**
 * Reference: k is the window of t iff k·size ≤ t < (k+1)·size. With integral sizes and
 * |k·size| < 2^53 both products are exact doubles, so the check itself is exact.
 */
function inWindow(t: number, size: number, k: number): boolean {
  return k * size <= t && t < (k + 1) * size;
}

const f64 = new Float64Array(1);
const u64 = new BigInt64Array(f64.buffer);

/** The next double below x (x finite, non-zero). */
function nextDown(x: number): number {
  f64[0] = x;
  u64[0] = x > 0 ? u64[0]! - 1n : u64[0]! + 1n;
  return f64[0]!;
}

function nextUp(x: number): number {
  f64[0] = x;
  u64[0] = x > 0 ? u64[0]! + 1n : u64[0]! - 1n;
  return f64[0]!;
}

const SIZES = [1, 3, 7, 10, 1000, 60_000, 86_400_000];

/** Times that break things: boundaries, one ulp either side, fractions, negatives, far dates. */
function trickyTimes(rng: Rng, size: number, count: number): number[] {
  const out: number[] = [0, -0, size, -size, size - 1, 1 - size, 0.5, -0.5, 1e-300, -1e-300];
  for (let i = 0; i < count; i++) {
    const k = Math.floor((rng() - 0.5) * 2 * Math.min(2 ** 40, 2 ** 52 / size));
    const b = k * size;
    const r = rng();
    if (r < 0.25) out.push(b);
    else if (r < 0.5) out.push(b === 0 ? -5e-324 : nextDown(b));
    else if (r < 0.6) out.push(b === 0 ? 5e-324 : nextUp(b));
    else if (r < 0.8) out.push(b + rng() * size); // fractional ms
    else out.push(Math.floor((rng() - 0.5) * 2 * 8.64e15)); // anywhere in the Date range
  }
  return out;
}

test('windowNumber is exact: boundaries, one ulp below them, fractions, negative times', () => {
  const rng = mulberry32(11);
  for (const size of SIZES) {
    for (const t of trickyTimes(rng, size, 3000)) {
      const k = windowNumber(t, size);
      assert.ok(Number.isInteger(k), `windowNumber(${t}, ${size}) = ${k}`);
      assert.ok(inWindow(t, size, k), `t=${t} size=${size}: k=${k} gives [${k * size}, ${(k + 1) * size})`);
    }
  }
  assert.equal(windowNumber(-1, 10), -1);
  assert.equal(windowNumber(-10, 10), -1);
  assert.equal(windowNumber(-10.5, 10), -2);
  assert.ok(windowNumber(-0, 10) === 0);
  assert.equal(windowNumber(9.999999999, 10), 0);
  assert.equal(windowNumber(10, 10), 1);
  assert.equal(windowNumber(-5e-324, 10), -1);
});

test('windowNumber corrects the rounded division for fractional sizes', () => {
  // With integral sizes the correctly rounded t / size never crosses an integer, but with a
  // fractional size (0.1 ms) it does: floor(0.3 / 0.1) = 2 while 3 · 0.1 > 0.3. The promise is
  // then k·size ≤ t < (k+1)·size in the same double arithmetic that computes window starts.
  let fixedUp = 0;
  let fixedDown = 0;
  for (const size of [0.1, 0.3, 0.001, 1 / 3]) {
    for (let k = 1; k < 100_000; k += 7) {
      for (const sign of [1, -1]) {
        const b = sign * k * size;
        for (const t of [b, nextDown(b), nextUp(b)]) {
          const q = Math.floor(t / size);
          if (q * size > t) fixedDown++;
          if ((q + 1) * size <= t) fixedUp++;
          const w = windowNumber(t, size);
          assert.ok(w * size <= t && t < (w + 1) * size, `t=${t} size=${size}: k=${w}`);
        }
      }
    }
  }
  assert.ok(fixedDown > 0 && fixedUp > 0, 'the data holds cases where a plain floor(t / size) is off in both directions');
  assert.equal(windowNumber(0.3, 0.1), 2);
});

test('assignTumbling: offsets + base are the window numbers, with and without a selection', () => {
  const rng = mulberry32(12);
  for (const size of SIZES) {
    const n = 2000;
    const ts = new Float64Array(n);
    // a realistic batch: an hour of event time, unordered, with fractions and a few negatives
    const t0 = (rng() - 0.3) * 1e12;
    for (let i = 0; i < n; i++) ts[i] = t0 + (rng() < 0.1 ? Math.floor(rng() * 3600) * 1000 : rng() * 3_600_000);
    for (const useSel of [false, true]) {
      const sel = useSel ? Int32Array.from([...Array(n).keys()].filter(() => rng() < 0.5)) : null;
      const m = sel === null ? n : sel.length;
      const offsets = new Int32Array(m);
      const base = assignTumbling(ts, sel, m, size, offsets);
      assert.notEqual(base, null);
      assert.equal(base, windowNumber(ts[sel === null ? 0 : sel[0]!]!, size));
      for (let i = 0; i < m; i++) {
        const t = ts[sel === null ? i : sel[i]!]!;
        assert.ok(inWindow(t, size, base! + offsets[i]!), `position ${i}: t=${t} size=${size}`);
      }
      const starts = new Float64Array(m);
      tumblingStarts(ts, sel, m, size, starts);
      for (let i = 0; i < m; i++) assert.equal(starts[i], (base! + offsets[i]!) * size);
    }
  }
});

test('assignTumbling on an empty selection returns base 0', () => {
  assert.equal(assignTumbling(new Float64Array(0), null, 0, 10, new Int32Array(0)), 0);
  assert.equal(assignTumbling(Float64Array.from([123]), new Int32Array(0), 0, 10, new Int32Array(0)), 0);
});

test('assignTumbling returns null exactly when offsets leave ±2^30; tumblingStarts is the fallback', () => {
  const LIMIT = 2 ** 30;
  for (const size of [1, 10]) {
    const cases: [number, boolean][] = [
      [(LIMIT - 1) * size, true],
      [LIMIT * size, false],
      [-(LIMIT - 1) * size, true],
      [-LIMIT * size, false],
    ];
    for (const [far, fits] of cases) {
      // first row at 0 sets the base; the far row is second, and a third row goes back near 0
      const ts = Float64Array.from([0, far, 5 * size]);
      const offsets = new Int32Array(3);
      const base = assignTumbling(ts, null, 3, size, offsets);
      if (fits) {
        assert.equal(base, 0, `far=${far} size=${size}`);
        assert.deepEqual([...offsets], [0, far / size, 5]);
      } else {
        assert.equal(base, null, `far=${far} size=${size}`);
      }
      const starts = new Float64Array(3);
      tumblingStarts(ts, null, 3, size, starts);
      assert.deepEqual([...starts], [0, far, 5 * size]);
    }
  }
  // 1 ms windows over 12 days of event time: the fallback path in a selection
  const ts = Float64Array.from([1.7e12, 1.7e12 + 1e9 + 0.5, 1.7e12 + 2e9 - 0.25, -1.7e12 + 0.75]);
  const sel = Int32Array.from([3, 0, 2]);
  assert.equal(assignTumbling(ts, sel, 3, 1, new Int32Array(3)), null);
  const starts = new Float64Array(3);
  tumblingStarts(ts, sel, 3, 1, starts);
  assert.deepEqual([...starts], [-1.7e12, 1.7e12, 1.7e12 + 2e9 - 1]);
});

test('every row is in exactly one window, the same as by brute force over nearby windows', () => {
  const rng = mulberry32(13);
  for (const size of [3, 7, 10]) {
    for (let trial = 0; trial < 2000; trial++) {
      const t = (rng() - 0.5) * 200 * size;
      let count = 0;
      let found = NaN;
      for (let k = -120; k <= 120; k++) {
        if (inWindow(t, size, k)) {
          count++;
          found = k;
        }
      }
      assert.equal(count, 1);
      assert.equal(windowNumber(t, size), found);
    }
  }
});
