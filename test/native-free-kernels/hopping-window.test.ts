import { test } from 'node:test';
import assert from 'node:assert/strict';
import { assignHopping, hoppingCapacity, hoppingStarts } from '../../native-free-kernels/hopping-window.js';
import { windowNumber } from '../../native-free-kernels/tumbling-window.js';
import { mulberry32, type Rng } from '../helpers/random.js';

/**
 * Reference: window k is [k·slide, k·slide + size); it holds t iff k·slide ≤ t < k·slide + size.
 * Brute force scans every k near t/slide; with integral size and slide the products and sums are
 * exact doubles, so membership is decided exactly.
 */
function bruteWindows(t: number, size: number, slide: number): number[] {
  const out: number[] = [];
  const c = Math.floor(t / slide);
  const span = Math.ceil(size / slide) + 3;
  for (let k = c - span; k <= c + 3; k++) if (k * slide <= t && t < k * slide + size) out.push(k);
  return out;
}

const SHAPES: [size: number, slide: number][] = [
  [10, 2],
  [10, 3], // size not a multiple of slide
  [7, 7], // tumbling as a special case
  [2, 5], // slide > size: gaps between windows, some rows are in none
  [1000, 1],
  [3_600_000, 60_000],
  [86_400_000, 3_600_000],
  [5, 4],
];

function times(rng: Rng, size: number, slide: number, n: number): Float64Array {
  const ts = new Float64Array(n);
  const t0 = Math.floor((rng() - 0.5) * 2e12);
  for (let i = 0; i < n; i++) {
    const r = rng();
    const k = Math.floor(t0 / slide) + Math.floor((rng() - 0.5) * 50);
    if (r < 0.3) ts[i] = k * slide; // on a window start
    else if (r < 0.45) ts[i] = k * slide + size; // on a window end
    else if (r < 0.55) ts[i] = k * slide + size - 0.5;
    else if (r < 0.65) ts[i] = -(k * slide) + rng() * slide; // the mirror image: negative, fractional
    else ts[i] = k * slide + rng() * 3 * slide;
  }
  return ts;
}

/** (row, window) pairs of an expansion, sorted, for set comparison. */
function pairsOf(rows: Int32Array, windows: ArrayLike<number>, n: number): string[] {
  const out: string[] = [];
  for (let p = 0; p < n; p++) out.push(`${rows[p]}@${windows[p]}`);
  return out.sort();
}

test('assignHopping and hoppingStarts give exactly the brute-force windows of every row', () => {
  const rng = mulberry32(21);
  for (const [size, slide] of SHAPES) {
    for (const useSel of [false, true]) {
      const n = 600;
      const ts = times(rng, size, slide, n);
      const sel = useSel ? Int32Array.from([...Array(n).keys()].filter(() => rng() < 0.5)) : null;
      const m = sel === null ? n : sel.length;
      const cap = hoppingCapacity(m, size, slide);
      const rows = new Int32Array(cap);
      const offsets = new Int32Array(cap);
      // the batch spans ±1e12 ms, so small slides overflow int32 offsets; that is checked below
      const e = assignHopping(ts, sel, m, size, slide, rows, offsets);
      const expected: string[] = [];
      const perRow = new Map<number, number>();
      for (let i = 0; i < m; i++) {
        const r = sel === null ? i : sel[i]!;
        const ws = bruteWindows(ts[r]!, size, slide);
        for (const k of ws) expected.push(`${r}@${k * slide}`);
        perRow.set(r, ws.length);
        assert.ok(ws.length <= Math.ceil(size / slide));
        if (slide <= size && size % slide === 0) assert.equal(ws.length, size / slide, `t=${ts[r]} size=${size} slide=${slide}`);
      }
      expected.sort();
      assert.ok(expected.length <= cap);

      const startRows = new Int32Array(cap);
      const starts = new Float64Array(cap);
      const count = hoppingStarts(ts, sel, m, size, slide, startRows, starts);
      assert.deepEqual(pairsOf(startRows, starts, count), expected, `hoppingStarts size=${size} slide=${slide}`);

      let minK = Infinity;
      let maxK = -Infinity;
      for (let p = 0; p < count; p++) {
        minK = Math.min(minK, starts[p]! / slide);
        maxK = Math.max(maxK, starts[p]! / slide);
      }
      const first = windowNumber(ts[sel === null ? 0 : sel[0]!]!, slide);
      const fits = minK - first > -(2 ** 30) && maxK - first < 2 ** 30;
      if (!fits) {
        assert.equal(e, null, `size=${size} slide=${slide}`);
        continue;
      }
      assert.notEqual(e, null);
      assert.equal(e!.base, first);
      assert.equal(e!.n, expected.length);
      const ks = new Float64Array(e!.n);
      for (let p = 0; p < e!.n; p++) ks[p] = (e!.base + offsets[p]!) * slide;
      assert.deepEqual(pairsOf(rows, ks, e!.n), expected, `assignHopping size=${size} slide=${slide}`);
      // positions come grouped by row in (ascending) selection order: first/last rely on it
      for (let p = 1; p < e!.n; p++) assert.ok(rows[p]! >= rows[p - 1]!);
    }
  }
});

test('a batch within an int32 offset range: window counts per row equal brute force', () => {
  const rng = mulberry32(22);
  for (const [size, slide] of SHAPES) {
    const n = 3000;
    const ts = new Float64Array(n);
    const t0 = (rng() - 0.5) * 2 * slide * 1e5;
    for (let i = 0; i < n; i++) {
      const k = Math.floor(t0 / slide) + Math.floor(rng() * 1000) - 500;
      const r = rng();
      ts[i] = r < 0.3 ? k * slide : r < 0.5 ? k * slide + size : k * slide + (rng() - 0.5) * size;
    }
    const cap = hoppingCapacity(n, size, slide);
    const rows = new Int32Array(cap);
    const offsets = new Int32Array(cap);
    const e = assignHopping(ts, null, n, size, slide, rows, offsets);
    assert.notEqual(e, null);
    const counts = new Int32Array(n);
    for (let p = 0; p < e!.n; p++) {
      const r = rows[p]!;
      counts[r]!++;
      const k = e!.base + offsets[p]!;
      assert.ok(k * slide <= ts[r]! && ts[r]! < k * slide + size, `row ${r} t=${ts[r]} in window ${k}`);
    }
    for (let r = 0; r < n; r++) assert.equal(counts[r], bruteWindows(ts[r]!, size, slide).length, `row ${r} t=${ts[r]}`);
    // rows ascending without a selection: every row's windows are contiguous
    for (let p = 1; p < e!.n; p++) assert.ok(rows[p]! >= rows[p - 1]!);
  }
});

test('boundaries: a time on a window start is in it, a time on a window end is not', () => {
  const rows = new Int32Array(16);
  const offsets = new Int32Array(16);
  // size 10, slide 5: t = 10 is in [5, 15) and [10, 20), not in [0, 10)
  let e = assignHopping(Float64Array.from([10]), null, 1, 10, 5, rows, offsets);
  assert.deepEqual([...offsets.subarray(0, e!.n)].map((o) => (e!.base + o) * 5), [5, 10]);
  // t = -0.5: [-10, 0) and [-5, 5)
  e = assignHopping(Float64Array.from([-0.5]), null, 1, 10, 5, rows, offsets);
  assert.deepEqual([...offsets.subarray(0, e!.n)].map((o) => (e!.base + o) * 5), [-10, -5]);
  // size 10, slide 3, t = 9: windows starting at 0, 3, 6, 9 ([−3, 7) does not hold 9)
  e = assignHopping(Float64Array.from([9]), null, 1, 10, 3, rows, offsets);
  assert.deepEqual([...offsets.subarray(0, e!.n)].map((o) => (e!.base + o) * 3), [0, 3, 6, 9]);
  // slide > size: t = 3 with windows [0, 2), [5, 7) is in none
  e = assignHopping(Float64Array.from([3]), null, 1, 2, 5, rows, offsets);
  assert.equal(e!.n, 0);
  assert.equal(assignHopping(new Float64Array(0), null, 0, 10, 5, rows, offsets)!.n, 0);
});

test('hoppingCapacity bounds the expansion', () => {
  for (const [size, slide] of SHAPES) {
    assert.ok(hoppingCapacity(1, size, slide) >= Math.ceil(size / slide));
    assert.equal(hoppingCapacity(0, size, slide), 0);
  }
});

test('assignHopping returns null past ±2^30 window numbers; hoppingStarts still expands', () => {
  const LIMIT = 2 ** 30;
  const rows = new Int32Array(64);
  const offsets = new Int32Array(64);
  const starts = new Float64Array(64);
  // size 2, slide 1: t = (LIMIT - 1) is in windows LIMIT-2 and LIMIT-1 → fits
  let ts = Float64Array.from([0.5, LIMIT - 1]);
  let e = assignHopping(ts, null, 2, 2, 1, rows, offsets);
  assert.notEqual(e, null);
  assert.equal(e!.n, 4);
  ts = Float64Array.from([0.5, LIMIT]);
  assert.equal(assignHopping(ts, null, 2, 2, 1, rows, offsets), null);
  ts = Float64Array.from([0.5, -LIMIT + 2]);
  e = assignHopping(ts, null, 2, 2, 1, rows, offsets);
  assert.notEqual(e, null);
  // the first window of -LIMIT + 1 is -LIMIT: offset -LIMIT does not fit
  ts = Float64Array.from([0.5, -LIMIT + 1]);
  assert.equal(assignHopping(ts, null, 2, 2, 1, rows, offsets), null);
  const count = hoppingStarts(ts, null, 2, 2, 1, rows, starts);
  assert.equal(count, 4);
  assert.deepEqual([...rows.subarray(0, 4)], [0, 0, 1, 1]);
  assert.deepEqual([...starts.subarray(0, 4)], [-1, 0, -LIMIT, -LIMIT + 1]);
});

test('windows of times where t − size is not exactly representable (far negative or sub-ulp negative times)', () => {
  // t − size is computed in doubles; when it rounds up onto a window boundary the first window
  // is lost. Both times are valid Float64 event times (DESIGN: ms since the epoch as doubles).
  const cases: [t: number, size: number, slide: number][] = [
    [-(2 ** 52) + 0.5, 3, 1], // t − 3 = −(2^52 + 2.5) rounds to −(2^52 + 2)
    [-1e-10, 3_600_000, 60_000], // t − size = −3600000.0000000001 rounds to −3600000
  ];
  const rows = new Int32Array(256);
  const starts = new Float64Array(256);
  const wrong: string[] = [];
  for (const [t, size, slide] of cases) {
    const count = hoppingStarts(Float64Array.from([t]), null, 1, size, slide, rows, starts);
    const got = [...starts.subarray(0, count)];
    const expected = bruteWindows(t, size, slide).map((k) => k * slide);
    if (JSON.stringify(got) !== JSON.stringify(expected)) {
      wrong.push(`t=${t} size=${size} slide=${slide}: ${got.length} windows from ${got[0]}, expected ${expected.length} from ${expected[0]}`);
    }
    const e = assignHopping(Float64Array.from([t]), null, 1, size, slide, rows, new Int32Array(256));
    if (e === null || e.n !== expected.length) wrong.push(`assignHopping t=${t}: ${e?.n} windows, expected ${expected.length}`);
  }
  assert.deepEqual(wrong, []);
});
