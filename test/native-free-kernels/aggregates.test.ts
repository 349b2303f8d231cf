import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Worker } from 'node:worker_threads';
import { AGGREGATES, doublesOf, mergeStates, shapesOf, type AddContext, type AggregateKernel } from '../../native-free-kernels/aggregates.js';
import { AggLayout, AggState } from '../../native-free-kernels/aggregate-state.js';
import { compileAddLoop, type AddLoop } from '../../native-free-kernels/fused-aggregate.js';
import { quantileDiscIndex } from '../../native-free-kernels/quantile-sketch.js';
import type { Column, ColumnType, Float64Column, Int32Column, Int64Column } from '../../engine/schema.js';
import { mulberry32, type Rng } from '../helpers/random.js';

// ---------------------------------------------------------------------------------------------
// Harness
//
// A "plan" is what engine/plan.ts builds: kernels bound to argument types, their interleaved
// layout and the one fused add loop over all of them. Most tests below look at one aggregate
// at a time through `Agg`, a plan of one aggregate (index 0); the plan tests further down put
// many aggregates side by side and check they behave exactly as they do alone.

const NO_CTX: AddContext = { eventTime: new Float64Array(0), seq: 0 };

interface AggSpec {
  readonly name: string;
  readonly type: ColumnType | null;
  readonly q?: number;
}

interface Plan {
  readonly kernels: readonly AggregateKernel[];
  readonly layout: AggLayout;
  readonly add: AddLoop;
}

function bindKernel(name: string, type: ColumnType | null, q: number | null): AggregateKernel {
  const def = AGGREGATES.get(name);
  if (def === undefined) throw new Error(`no aggregate ${name}`);
  return def.bind(type, q);
}

function planOf(specs: readonly AggSpec[]): Plan {
  const kernels = specs.map((s) => bindKernel(s.name, s.type, s.q ?? null));
  const layout = new AggLayout(shapesOf(kernels));
  return { kernels, layout, add: compileAddLoop(kernels.map((kernel, k) => ({ kernel, argType: specs[k]!.type })), layout) };
}

/** One aggregate in a plan of its own, with the per-aggregate calls of the old API shape. */
interface Agg {
  readonly kernel: AggregateKernel;
  readonly plan: Plan;
  readonly inits: readonly number[];
  state(capacity: number): AggState;
  add(st: AggState, gids: Int32Array, rows: Int32Array, n: number, arg: Column | null, ctx: AddContext): void;
  merge(dst: AggState, dstGids: Int32Array, src: AggState, srcRows: Int32Array, n: number): void;
  final(st: AggState, g: number): number | null;
}

function kernelOf(name: string, type: ColumnType | null, q: number | null = null): Agg {
  const plan = planOf([{ name, type, q: q ?? undefined }]);
  const kernel = plan.kernels[0]!;
  return {
    kernel,
    plan,
    inits: kernel.inits,
    state: (capacity) => new AggState(plan.layout, capacity),
    add: (st, gids, rows, n, arg, ctx) => plan.add(st, gids, rows, n, [arg], ctx),
    merge: (dst, dstGids, src, srcRows, n) => mergeStates([kernel], dst, dstGids, src, srcRows, n),
    final: (st, g) => kernel.final(st, 0, g),
  };
}

function identity(n: number): Int32Array {
  const a = new Int32Array(n);
  for (let i = 0; i < n; i++) a[i] = i;
  return a;
}

/** One add of every position into a fresh state of G groups. */
function addOnce(k: Agg, G: number, arg: Column | null, gids: Int32Array, rows: Int32Array, ctx: AddContext = NO_CTX): AggState {
  const st = k.state(G);
  k.add(st, gids, rows, rows.length, arg, ctx);
  return st;
}

function finals(k: Agg, st: AggState, G: number): (number | null)[] {
  return Array.from({ length: G }, (_, g) => k.final(st, g));
}

function planFinals(plan: Plan, st: AggState, G: number): (number | null)[][] {
  return plan.kernels.map((kernel, k) => Array.from({ length: G }, (_, g) => kernel.final(st, k, g)));
}

/** null = null, NaN = NaN, -0 ≠ 0. */
function sameBits(a: number | null, b: number | null): boolean {
  return a === null || b === null ? a === b : Object.is(a, b);
}

/** SQL equality of results: -0 = 0, NaN = NaN. */
function sqlSame(a: number | null, b: number | null): boolean {
  return a === null || b === null ? a === b : a === b || (Number.isNaN(a) && Number.isNaN(b));
}

function assertAll(got: (number | null)[], want: (number | null)[], same: (a: number | null, b: number | null) => boolean, what: string): void {
  assert.equal(got.length, want.length);
  const bad: string[] = [];
  got.forEach((v, g) => {
    if (!same(v, want[g]!)) bad.push(`group ${g}: got ${v}, want ${want[g]}`);
  });
  assert.deepEqual(bad.slice(0, 5), [], what);
}

function relClose(got: (number | null)[], want: (number | null)[], rel: number, what: string): void {
  assertAll(got, want, (a, b) => {
    if (a === null || b === null) return a === b;
    if (!Number.isFinite(b)) return Object.is(a, b);
    return Math.abs(a - b) <= rel * Math.abs(b);
  }, what);
}

function f64Col(values: Float64Array, valid: Uint8Array | null = null): Float64Column {
  return { type: 'float64', values, valid };
}

function validity(rng: Rng, n: number, rate: number): Uint8Array | null {
  if (rate === 0) return null;
  const v = new Uint8Array(n);
  for (let i = 0; i < n; i++) v[i] = rng() < rate ? 0 : 1;
  return v;
}

function randomGids(rng: Rng, n: number, G: number): Int32Array {
  const g = new Int32Array(n);
  for (let i = 0; i < n; i++) g[i] = Math.floor(rng() * G);
  return g;
}

/** Ascending row ids with repeats (one row feeding several positions, as hopping windows do). */
function expandedRows(rng: Rng, rowCount: number): Int32Array {
  const out: number[] = [];
  for (let r = 0; r < rowCount; r++) {
    const k = rng() < 0.8 ? 1 : 1 + Math.floor(rng() * 3);
    for (let j = 0; j < k; j++) out.push(r);
  }
  return Int32Array.from(out);
}

/** How positions are cut into contiguous batches, and the order their partials are merged in. */
interface Split {
  readonly cuts: readonly number[];
  readonly order: readonly number[];
}

function randomSplit(rng: Rng, n: number, batches: number, order: 'in' | 'shuffled'): Split {
  const cuts = [0, n];
  for (let b = 1; b < batches; b++) cuts.push(Math.floor(rng() * n));
  cuts.sort((a, b) => a - b);
  const perm = Array.from({ length: batches }, (_, b) => b);
  if (order === 'shuffled') {
    for (let i = perm.length - 1; i > 0; i--) {
      const j = Math.floor(rng() * (i + 1));
      [perm[i], perm[j]] = [perm[j]!, perm[i]!];
    }
  }
  return { cuts, order: perm };
}

/**
 * Add each batch of `split` (seq = batch index) into a compact partial state (groups renumbered
 * per batch as the aggregator does), then merge the partials into one state in the split's
 * order. With `reuse`, every batch goes through ONE scratch state that is reset, grown and
 * sliced between batches, as engine/window-aggregate.ts does; otherwise each batch gets a fresh
 * state.
 */
function splitMergePlan(
  plan: Plan,
  G: number,
  args: readonly (Column | null)[],
  gids: Int32Array,
  rows: Int32Array,
  eventTime: Float64Array,
  split: Split,
  reuse = false,
): AggState {
  const batches = split.cuts.length - 1;
  const partials: { st: AggState; toGlobal: Int32Array }[] = [];
  const scratch = new AggState(plan.layout, 4);
  let used = 0;
  for (let b = 0; b < batches; b++) {
    const from = split.cuts[b]!;
    const to = split.cuts[b + 1]!;
    const local = new Map<number, number>();
    const lg = new Int32Array(to - from);
    for (let i = from; i < to; i++) {
      let l = local.get(gids[i]!);
      if (l === undefined) {
        l = local.size;
        local.set(gids[i]!, l);
      }
      lg[i - from] = l;
    }
    let st: AggState;
    if (reuse) {
      scratch.reset(used);
      scratch.ensure(local.size);
      used = local.size;
      st = scratch;
    } else st = new AggState(plan.layout, Math.max(1, local.size));
    plan.add(st, lg, rows.subarray(from, to), to - from, args, { eventTime, seq: b });
    const toGlobal = new Int32Array(local.size);
    for (const [g, l] of local) toGlobal[l] = g;
    partials.push({ st: st.slice(local.size), toGlobal });
  }
  const dst = new AggState(plan.layout, 4);
  dst.ensure(G);
  for (const b of split.order) {
    const p = partials[b]!;
    mergeStates(plan.kernels, dst, p.toGlobal, p.st, identity(p.toGlobal.length), p.toGlobal.length);
  }
  return dst;
}

/** splitMergePlan of one aggregate over a fresh random split. */
function splitMerge(
  k: Agg,
  G: number,
  arg: Column | null,
  gids: Int32Array,
  rows: Int32Array,
  eventTime: Float64Array,
  rng: Rng,
  batches: number,
  order: 'in' | 'shuffled',
): AggState {
  return splitMergePlan(k.plan, G, [arg], gids, rows, eventTime, randomSplit(rng, rows.length, batches, order));
}

const TWO_32 = 4294967296;

/** Correctly rounded num / den (den > 0) as a double: 66+ quotient bits plus a sticky bit. */
function ratio(num: bigint, den: bigint): number {
  const neg = num < 0n;
  const a = neg ? -num : num;
  if (a === 0n) return 0;
  let shift = 0;
  while ((a << BigInt(shift)) / den < 1n << 66n) shift += 16;
  const scaled = a << BigInt(shift);
  let q = scaled / den;
  if (q * den !== scaled) q |= 1n;
  const v = Number(q) / 2 ** shift;
  return neg ? -v : v;
}

// ---------------------------------------------------------------------------------------------
// The table

test('the aggregate table: names, output types, accepted argument types, binding errors', () => {
  assert.deepEqual([...AGGREGATES.keys()].sort(), [
    'approx_count_distinct', 'approx_quantile', 'avg', 'count', 'first', 'last', 'max', 'min', 'stddev', 'sum', 'var',
  ]);
  assert.equal(AGGREGATES.get('count')!.output, 'BIGINT');
  assert.equal(AGGREGATES.get('approx_count_distinct')!.output, 'BIGINT');
  for (const name of ['sum', 'avg', 'min', 'max', 'first', 'last', 'var', 'stddev', 'approx_quantile']) assert.equal(AGGREGATES.get(name)!.output, 'DOUBLE');
  for (const name of ['sum', 'avg', 'var', 'stddev', 'approx_quantile']) {
    const def = AGGREGATES.get(name)!;
    assert.ok(def.accepts('int32') && def.accepts('int64') && def.accepts('float64'), name);
    assert.ok(!def.accepts('string') && !def.accepts('bool'), name);
    assert.throws(() => def.bind('string', 0.5), name);
    assert.throws(() => def.bind(null, 0.5), name);
  }
  for (const name of ['min', 'max', 'first', 'last']) {
    const def = AGGREGATES.get(name)!;
    assert.ok(def.accepts('timestamp') && def.accepts('bool'), name);
    assert.ok(!def.accepts('string'), name);
  }
  assert.ok(AGGREGATES.get('approx_count_distinct')!.accepts('string'));
  assert.ok(AGGREGATES.get('count')!.accepts('string'));
  const q = AGGREGATES.get('approx_quantile')!;
  assert.equal(q.param!.check(0), null);
  assert.equal(q.param!.check(1), null);
  assert.notEqual(q.param!.check(1.5), null);
  assert.notEqual(q.param!.check(-0.1), null);
  assert.notEqual(q.param!.check(NaN), null);
  assert.throws(() => q.bind('float64', null), /needs q/);
});

// ---------------------------------------------------------------------------------------------
// count

test('count() counts positions and count(col) counts non-null values, per group', () => {
  const rng = mulberry32(41);
  const n = 20_000;
  const G = 37;
  const rows = expandedRows(rng, n);
  const gids = randomGids(rng, rows.length, G);
  const valid = validity(rng, n, 0.2);
  const col = f64Col(new Float64Array(n), valid);
  const star = kernelOf('count', null);
  const colK = kernelOf('count', 'float64');
  const wantStar = new Array<number>(G).fill(0);
  const wantCol = new Array<number>(G).fill(0);
  for (let i = 0; i < rows.length; i++) {
    wantStar[gids[i]!]!++;
    if (valid![rows[i]!] === 1) wantCol[gids[i]!]!++;
  }
  assertAll(finals(star, addOnce(star, G, null, gids, rows), G), wantStar, sameBits, 'count()');
  assertAll(finals(colK, addOnce(colK, G, col, gids, rows), G), wantCol, sameBits, 'count(col)');
  // count(col) of a column without nulls is count()
  assertAll(finals(colK, addOnce(colK, G, f64Col(new Float64Array(n)), gids, rows), G), wantStar, sameBits, 'count(col) no nulls');
  // an empty group counts 0, never null
  assert.equal(star.final(star.state(1), 0), 0);
  assert.equal(colK.final(colK.state(1), 0), 0);
});

// ---------------------------------------------------------------------------------------------
// sum / avg of doubles

const SCALE_BITS = 30;

/**
 * Doubles that are integer multiples of 2^-30, so v · 2^30 is an exact integer and a BigInt sum
 * is exact: a 1..53-bit integer times 2^(-30..-10), magnitudes 2^-30 .. 2^43, both signs.
 */
function scaledDoubles(rng: Rng, n: number): Float64Array {
  const v = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const bits = 1 + Math.floor(rng() * 53);
    const mant = Math.floor(rng() * 2 ** bits) * (rng() < 0.5 ? -1 : 1);
    v[i] = mant * 2 ** (Math.floor(rng() * 21) - SCALE_BITS);
  }
  return v;
}

function exactSums(values: Float64Array, valid: Uint8Array | null, gids: Int32Array, rows: Int32Array, G: number): { sum: bigint[]; n: number[] } {
  const sum = new Array<bigint>(G).fill(0n);
  const n = new Array<number>(G).fill(0);
  for (let i = 0; i < rows.length; i++) {
    const r = rows[i]!;
    if (valid !== null && valid[r] === 0) continue;
    sum[gids[i]!] = sum[gids[i]!]! + BigInt(values[r]! * 2 ** SCALE_BITS);
    n[gids[i]!]!++;
  }
  return { sum, n };
}

test('sum(float64) and avg(float64) match an exact BigInt reference within 1e-15 relative', () => {
  const rng = mulberry32(42);
  const n = 30_000;
  const G = 50;
  const values = scaledDoubles(rng, n);
  const valid = validity(rng, n, 0.1);
  const rows = expandedRows(rng, n);
  const gids = randomGids(rng, rows.length, G - 1); // group G - 1 stays empty
  const { sum, n: cnt } = exactSums(values, valid, gids, rows, G);
  const wantSum = sum.map((s, g) => (cnt[g] === 0 ? null : ratio(s, 1n << BigInt(SCALE_BITS))));
  const wantAvg = sum.map((s, g) => (cnt[g] === 0 ? null : ratio(s, BigInt(cnt[g]!) << BigInt(SCALE_BITS))));
  const sumK = kernelOf('sum', 'float64');
  const avgK = kernelOf('avg', 'float64');
  const col = f64Col(values, valid);
  const gotSum = finals(sumK, addOnce(sumK, G, col, gids, rows), G);
  relClose(gotSum, wantSum, 1e-15, 'sum');
  relClose(finals(avgK, addOnce(avgK, G, col, gids, rows), G), wantAvg, 1e-15, 'avg');
  // the double-double accumulator is in fact correctly rounded on this data
  assertAll(gotSum, wantSum, sameBits, 'sum correctly rounded');
  // a naive running double sum is not (so the check above can fail)
  let naiveWrong = 0;
  for (let g = 0; g < G; g++) {
    let s = 0;
    for (let i = 0; i < rows.length; i++) if (gids[i] === g && (valid === null || valid[rows[i]!] === 1)) s += values[rows[i]!]!;
    if (s !== wantSum[g]) naiveWrong++;
  }
  assert.ok(naiveWrong > 0);
});

test('sum(float64) of heavy cancellation: 1e16 + 1 − 1e16 and friends', () => {
  const k = kernelOf('sum', 'float64');
  const cases: [number[], number][] = [
    [[1e16, 1, -1e16], 1],
    [[1, 1e100, 1, -1e100], 2],
    [[0.1, 0.2, -0.3], ratio(BigInt(0.1 * 2 ** 56) + BigInt(0.2 * 2 ** 56) - BigInt(0.3 * 2 ** 56), 1n << 56n)],
    [[2 ** 53, 1, 1, 1, 1], 2 ** 53 + 4],
  ];
  for (const [xs, want] of cases) {
    const st = addOnce(k, 1, f64Col(Float64Array.from(xs)), new Int32Array(xs.length), identity(xs.length));
    assert.equal(k.final(st, 0), want, JSON.stringify(xs));
  }
});

test('sum / avg with ±Infinity and NaN, nulls, and empty groups', () => {
  const sumK = kernelOf('sum', 'float64');
  const avgK = kernelOf('avg', 'float64');
  const cases: [number[], number | null][] = [
    [[1, Infinity], Infinity],
    [[-Infinity, 5, 1e308], -Infinity],
    [[Infinity, -Infinity], NaN],
    [[Infinity, 1, Infinity], Infinity],
    [[NaN, 1], NaN],
    [[1, NaN, Infinity], NaN],
    [[1e308, 1e308], Infinity],
    [[], null],
  ];
  for (const [xs, want] of cases) {
    const st = addOnce(sumK, 1, f64Col(Float64Array.from(xs)), new Int32Array(xs.length), identity(xs.length));
    const got = sumK.final(st, 0);
    assert.ok(sameBits(got, want), `sum ${JSON.stringify(xs.map(String))}: ${got}`);
    const a = avgK.final(addOnce(avgK, 1, f64Col(Float64Array.from(xs)), new Int32Array(xs.length), identity(xs.length)), 0);
    assert.ok(sameBits(a, want === null ? null : want / Math.max(1, xs.length)), `avg ${JSON.stringify(xs.map(String))}: ${a}`);
  }
  // infinities meeting in a merge
  const inf = addOnce(sumK, 1, f64Col(Float64Array.from([Infinity])), new Int32Array(1), identity(1));
  const ninf = addOnce(sumK, 1, f64Col(Float64Array.from([-Infinity, 2])), new Int32Array(2), identity(2));
  const fin = addOnce(sumK, 1, f64Col(Float64Array.from([3])), new Int32Array(1), identity(1));
  const dst = sumK.state(1);
  sumK.merge(dst, new Int32Array(1), inf, new Int32Array(1), 1);
  sumK.merge(dst, new Int32Array(1), fin, new Int32Array(1), 1);
  assert.equal(sumK.final(dst, 0), Infinity);
  sumK.merge(dst, new Int32Array(1), ninf, new Int32Array(1), 1);
  assert.ok(Number.isNaN(sumK.final(dst, 0)));
  // nulls only → null
  const nulls = f64Col(Float64Array.from([1, 2]), Uint8Array.from([0, 0]));
  assert.equal(sumK.final(addOnce(sumK, 1, nulls, new Int32Array(2), identity(2)), 0), null);
  assert.equal(avgK.final(addOnce(avgK, 1, nulls, new Int32Array(2), identity(2)), 0), null);
});

test('sum / avg merge of partials holding ±Infinity, or overflowing to it, keeps IEEE semantics', () => {
  // Every window result is a merge of partials, so this is what the result tables show.
  const wrong: string[] = [];
  for (const name of ['sum', 'avg'] as const) {
    const k = kernelOf(name, 'float64');
    const cases: [number[][], number][] = [
      [[[Infinity]], Infinity],
      [[[Infinity], [3]], Infinity],
      [[[3], [Infinity]], Infinity],
      [[[-Infinity, 2]], -Infinity],
      [[[1, 2], [-Infinity]], -Infinity],
      [[[Infinity], [-Infinity, 2]], NaN],
      [[[1e308], [1e308]], Infinity], // finite partials whose sum overflows
      [[[-1e308], [-1e308], [5]], -Infinity],
      [[[NaN], [1]], NaN],
    ];
    for (const [parts, sum] of cases) {
      const dst = k.state(1);
      let count = 0;
      for (const xs of parts) {
        k.merge(dst, new Int32Array(1), addOnce(k, 1, f64Col(Float64Array.from(xs)), new Int32Array(xs.length), identity(xs.length)), new Int32Array(1), 1);
        count += xs.length;
      }
      const want = name === 'sum' ? sum : sum / count;
      const got = k.final(dst, 0);
      if (!sameBits(got, want)) wrong.push(`${name} of partials ${JSON.stringify(parts.map((p) => p.map(String)))}: got ${got}, want ${want}`);
    }
  }
  assert.deepEqual(wrong, []);
});

// ---------------------------------------------------------------------------------------------
// sum / avg of integers

function int64Col(rng: Rng, n: number, valid: Uint8Array | null): Int64Column {
  const words = new Int32Array(2 * n);
  const limits: [number, number][] = [[0, -0x80000000], [-1, 0x7fffffff], [0, 0x200000], [1, 0x200000], [-1, -1]];
  for (let i = 0; i < n; i++) {
    const r = rng();
    if (r < 0.1) {
      const [lo, hi] = limits[Math.floor(rng() * limits.length)]!;
      words[2 * i] = lo;
      words[2 * i + 1] = hi;
    } else if (r < 0.4) {
      const v = Math.floor((rng() - 0.5) * 2000);
      words[2 * i] = v | 0;
      words[2 * i + 1] = v < 0 ? -1 : 0;
    } else {
      words[2 * i] = (rng() * TWO_32) | 0;
      words[2 * i + 1] = (rng() * TWO_32) | 0;
    }
  }
  return { type: 'int64', words, valid };
}

function bigOf(col: Int64Column | Int32Column, r: number): bigint {
  return col.type === 'int64' ? (BigInt(col.words[2 * r + 1]!) << 32n) | BigInt(col.words[2 * r]! >>> 0) : BigInt(col.values[r]!);
}

function exactIntSums(col: Int64Column | Int32Column, gids: Int32Array, rows: Int32Array, G: number): { sum: bigint[]; n: number[] } {
  const sum = new Array<bigint>(G).fill(0n);
  const n = new Array<number>(G).fill(0);
  for (let i = 0; i < rows.length; i++) {
    const r = rows[i]!;
    if (col.valid !== null && col.valid[r] === 0) continue;
    sum[gids[i]!] = sum[gids[i]!]! + bigOf(col, r);
    n[gids[i]!]!++;
  }
  return { sum, n };
}

test('sum(int64) is exact beyond 2^53 and beyond the int64 range (BigInt reference)', () => {
  const rng = mulberry32(43);
  const n = 40_000;
  const G = 13;
  const col = int64Col(rng, n, validity(rng, n, 0.1));
  const rows = expandedRows(rng, n);
  const gids = randomGids(rng, rows.length, G);
  const { sum, n: cnt } = exactIntSums(col, gids, rows, G);
  const sumK = kernelOf('sum', 'int64');
  const avgK = kernelOf('avg', 'int64');
  const st = addOnce(sumK, G, col, gids, rows);
  assertAll(finals(sumK, st, G), sum.map((s, g) => (cnt[g] === 0 ? null : Number(s))), sameBits, 'sum int64');
  const avg = finals(avgK, addOnce(avgK, G, col, gids, rows), G);
  relClose(avg, sum.map((s, g) => (cnt[g] === 0 ? null : ratio(s, BigInt(cnt[g]!)))), 2 ** -52, 'avg int64');
  // the exact sums really leave the double range of exact integers
  assert.ok(sum.some((s) => s > 1n << 63n || s < -(1n << 63n)));
});

test('sum(int64) of values whose doubles collide: 2^53 + 1 counted exactly', () => {
  const k = kernelOf('sum', 'int64');
  // (2^53 + 1) + (2^53 + 1) − 2^54 = 2
  const words = Int32Array.from([1, 0x200000, 1, 0x200000, 0, -0x400000]);
  const st = addOnce(k, 1, { type: 'int64', words, valid: null }, new Int32Array(3), identity(3));
  assert.equal(k.final(st, 0), 2);
  // int64 min + int64 max = -1
  const st2 = addOnce(k, 1, { type: 'int64', words: Int32Array.from([0, -0x80000000, -1, 0x7fffffff]), valid: null }, new Int32Array(2), identity(2));
  assert.equal(k.final(st2, 0), -1);
});

test('sum(int32) and avg(int32) at the int32 extremes', () => {
  const n = 100_000;
  const values = new Int32Array(n);
  for (let i = 0; i < n; i++) values[i] = i % 3 === 0 ? -0x80000000 : 0x7fffffff;
  const col: Int32Column = { type: 'int32', values, valid: null };
  const sumK = kernelOf('sum', 'int32');
  const avgK = kernelOf('avg', 'int32');
  const gids = new Int32Array(n);
  for (let i = 0; i < n; i++) gids[i] = i & 1;
  const { sum, n: cnt } = exactIntSums(col, gids, identity(n), 2);
  assertAll(finals(sumK, addOnce(sumK, 2, col, gids, identity(n)), 2), sum.map(Number), sameBits, 'sum int32');
  relClose(finals(avgK, addOnce(avgK, 2, col, gids, identity(n)), 2), sum.map((s, g) => ratio(s, BigInt(cnt[g]!))), 2 ** -52, 'avg int32');
  // all minimums, all maximums, -1s: the sign handling of the high word
  for (const v of [-0x80000000, 0x7fffffff, -1, -65536, 65535]) {
    const c: Int32Column = { type: 'int32', values: new Int32Array(1000).fill(v), valid: null };
    assert.equal(sumK.final(addOnce(sumK, 1, c, new Int32Array(1000), identity(1000)), 0), v * 1000, String(v));
    assert.equal(avgK.final(addOnce(avgK, 1, c, new Int32Array(1000), identity(1000)), 0), v, String(v));
  }
});

test('avg of integers: the exact quotient, negative totals rounded correctly', () => {
  const k = kernelOf('avg', 'int64');
  const cases: bigint[][] = [[-7n, 0n], [-1n, -2n], [1n, 2n, 2n], [(1n << 62n) + 1n, (1n << 62n) + 2n, -3n], [-(1n << 63n), -(1n << 63n), -1n]];
  for (const xs of cases) {
    const words = new Int32Array(2 * xs.length);
    xs.forEach((x, i) => {
      const u = BigInt.asUintN(64, x);
      words[2 * i] = Number(u & 0xffffffffn) | 0;
      words[2 * i + 1] = Number(u >> 32n) | 0;
    });
    const got = k.final(addOnce(k, 1, { type: 'int64', words, valid: null }, new Int32Array(xs.length), identity(xs.length)), 0)!;
    const want = ratio(xs.reduce((a, b) => a + b, 0n), BigInt(xs.length));
    assert.ok(Math.abs(got - want) <= Math.abs(want) * 2 ** -52, `${xs}: ${got} vs ${want}`);
  }
});

// ---------------------------------------------------------------------------------------------
// min / max

test('min / max: DuckDB NaN order, ±Infinity, nulls, empty groups', () => {
  const minK = kernelOf('min', 'float64');
  const maxK = kernelOf('max', 'float64');
  const cases: [number[], number, number][] = [
    [[NaN, 1], 1, NaN],
    [[1, NaN], 1, NaN],
    [[NaN, NaN], NaN, NaN],
    [[NaN, -Infinity, 2], -Infinity, NaN],
    [[-Infinity], -Infinity, -Infinity],
    [[Infinity, 3], 3, Infinity],
    [[-Infinity, -Infinity], -Infinity, -Infinity],
    [[2, -5, 7, 0], -5, 7],
  ];
  for (const [xs, lo, hi] of cases) {
    const col = f64Col(Float64Array.from(xs));
    const z = new Int32Array(xs.length);
    assert.ok(sameBits(minK.final(addOnce(minK, 1, col, z, identity(xs.length)), 0), lo), `min ${xs.map(String)}`);
    assert.ok(sameBits(maxK.final(addOnce(maxK, 1, col, z, identity(xs.length)), 0), hi), `max ${xs.map(String)}`);
    // the same values one per partial, merged in both orders
    for (const order of [xs, [...xs].reverse()]) {
      for (const [k, want] of [[minK, lo], [maxK, hi]] as const) {
        const dst = k.state(1);
        for (const x of order) {
          const p = addOnce(k, 1, f64Col(Float64Array.from([x])), new Int32Array(1), identity(1));
          k.merge(dst, new Int32Array(1), p, new Int32Array(1), 1);
        }
        assert.ok(sameBits(k.final(dst, 0), want), `merged ${order.map(String)}`);
      }
    }
  }
  // nulls are skipped; all-null and empty groups are null (even merged)
  const col = f64Col(Float64Array.from([100, -100, 5]), Uint8Array.from([0, 0, 1]));
  assert.equal(minK.final(addOnce(minK, 1, col, new Int32Array(3), identity(3)), 0), 5);
  assert.equal(maxK.final(addOnce(maxK, 1, col, new Int32Array(3), identity(3)), 0), 5);
  const none = addOnce(minK, 2, col, Int32Array.from([1, 1]), identity(2));
  assert.equal(minK.final(none, 0), null);
  assert.equal(minK.final(none, 1), null);
  const dst = maxK.state(1);
  maxK.merge(dst, new Int32Array(1), addOnce(maxK, 1, col, new Int32Array(2), identity(2)), new Int32Array(1), 1);
  assert.equal(maxK.final(dst, 0), null);
});

test('min / max over int64 (beyond 2^53), int32, bool and timestamp arguments', () => {
  const rng = mulberry32(44);
  const n = 5000;
  const G = 9;
  const gids = randomGids(rng, n, G);
  const rows = identity(n);
  const i64 = int64Col(rng, n, validity(rng, n, 0.1));
  const i32: Int32Column = { type: 'int32', values: Int32Array.from({ length: n }, () => (rng() * TWO_32) | 0), valid: null };
  const bool: Column = { type: 'bool', values: Uint8Array.from({ length: n }, () => (rng() < 0.5 ? 1 : 0)), valid: validity(rng, n, 0.3) };
  const ts: Column = { type: 'timestamp', values: Float64Array.from({ length: n }, () => Math.floor((rng() - 0.5) * 1e13)), valid: null };
  for (const col of [i64, i32, bool, ts]) {
    // exact extremes (BigInt for int64), rounded to a double once: the DOUBLE output column
    const lo = new Array<bigint | null>(G).fill(null);
    const hi = new Array<bigint | null>(G).fill(null);
    for (let i = 0; i < n; i++) {
      if (col.valid !== null && col.valid[i] === 0) continue;
      const g = gids[i]!;
      const v = col.type === 'int64' ? bigOf(col, i) : BigInt(col.values[i]!);
      if (lo[g] === null || v < lo[g]!) lo[g] = v;
      if (hi[g] === null || v > hi[g]!) hi[g] = v;
    }
    const want = { min: lo.map((b) => (b === null ? null : Number(b))), max: hi.map((b) => (b === null ? null : Number(b))) };
    const minK = kernelOf('min', col.type);
    const maxK = kernelOf('max', col.type);
    assertAll(finals(minK, addOnce(minK, G, col, gids, rows), G), want.min, sameBits, `min ${col.type}`);
    assertAll(finals(maxK, addOnce(maxK, G, col, gids, rows), G), want.max, sameBits, `max ${col.type}`);
  }
});

// ---------------------------------------------------------------------------------------------
// first / last

test('first / last by event time; ties broken by (batch seq, row), nulls skipped', () => {
  const rng = mulberry32(45);
  const n = 12_000;
  const G = 40;
  // few distinct times: ties everywhere
  const eventTime = Float64Array.from({ length: n }, () => 1e12 + Math.floor(rng() * 20) * 1000);
  const values = Float64Array.from({ length: n }, (_, r) => r * 10 + 0.5); // the value names its row
  const valid = validity(rng, n, 0.15);
  const col = f64Col(values, valid);
  const rows = expandedRows(rng, n);
  const gids = randomGids(rng, rows.length, G);
  const firstK = kernelOf('first', 'float64');
  const lastK = kernelOf('last', 'float64');
  for (const batches of [1, 2, 7, 40]) {
    for (const order of ['in', 'shuffled'] as const) {
      // Reference over (t, seq, row); with contiguous batches in row order seq follows row, so
      // the key is (t, row).
      const first = new Array<number | null>(G).fill(null);
      const last = new Array<number | null>(G).fill(null);
      const ft = new Array<number>(G).fill(Infinity);
      const lt = new Array<number>(G).fill(-Infinity);
      for (let i = 0; i < rows.length; i++) {
        const r = rows[i]!;
        if (valid !== null && valid[r] === 0) continue;
        const g = gids[i]!;
        const t = eventTime[r]!;
        if (t < ft[g]!) { ft[g] = t; first[g] = values[r]!; }
        if (t >= lt[g]!) { lt[g] = t; last[g] = values[r]!; }
      }
      const f = splitMerge(firstK, G, col, gids, rows, eventTime, rng, batches, order);
      const l = splitMerge(lastK, G, col, gids, rows, eventTime, rng, batches, order);
      assertAll(finals(firstK, f, G), first, sameBits, `first, ${batches} batches ${order}`);
      assertAll(finals(lastK, l, G), last, sameBits, `last, ${batches} batches ${order}`);
    }
  }
});

test('first / last merge: an equal time from a later batch loses for first and wins for last', () => {
  const firstK = kernelOf('first', 'float64');
  const lastK = kernelOf('last', 'float64');
  const eventTime = Float64Array.from([5, 5, 5]);
  const col = f64Col(Float64Array.from([10, 20, 30]));
  for (const k of [firstK, lastK]) {
    // batch seq 3 holds row 2, batch seq 1 holds rows 0 and 1; merged in either order
    const a = k.state(1);
    k.add(a, new Int32Array(1), Int32Array.from([2]), 1, col, { eventTime, seq: 3 });
    const b = k.state(1);
    k.add(b, new Int32Array(2), Int32Array.from([0, 1]), 2, col, { eventTime, seq: 1 });
    for (const parts of [[a, b], [b, a]]) {
      const dst = k.state(1);
      for (const p of parts) k.merge(dst, new Int32Array(1), p, new Int32Array(1), 1);
      assert.equal(k.final(dst, 0), k === firstK ? 10 : 30);
    }
  }
  // same seq, different rows (two partials of one batch): the row decides
  const c = firstK.state(1);
  firstK.add(c, new Int32Array(1), Int32Array.from([1]), 1, col, { eventTime, seq: 0 });
  const d = firstK.state(1);
  firstK.add(d, new Int32Array(1), Int32Array.from([0]), 1, col, { eventTime, seq: 0 });
  const dst = firstK.state(1);
  firstK.merge(dst, new Int32Array(1), c, new Int32Array(1), 1);
  firstK.merge(dst, new Int32Array(1), d, new Int32Array(1), 1);
  assert.equal(firstK.final(dst, 0), 10);
  // empty and all-null groups are null
  assert.equal(firstK.final(firstK.state(1), 0), null);
  assert.equal(lastK.final(addOnce(lastK, 1, f64Col(Float64Array.from([1]), Uint8Array.from([0])), new Int32Array(1), identity(1), { eventTime, seq: 0 }), 0), null);
  // negative and fractional event times
  const et = Float64Array.from([-1.5, -2.5, 3]);
  const st = addOnce(firstK, 1, col, new Int32Array(3), identity(3), { eventTime: et, seq: 0 });
  assert.equal(firstK.final(st, 0), 20);
});

// ---------------------------------------------------------------------------------------------
// var / stddev

/** Exact sample variance of values X / 2^s (X BigInt), correctly rounded. */
function exactVar(xs: bigint[], s: number): number | null {
  const n = BigInt(xs.length);
  if (xs.length < 2) return null;
  let sx = 0n;
  let sq = 0n;
  for (const x of xs) {
    sx += x;
    sq += x * x;
  }
  return ratio(n * sq - sx * sx, (n * (n - 1n)) << BigInt(2 * s));
}

test('var / stddev for n = 0, 1, 2', () => {
  const varK = kernelOf('var', 'float64');
  const sdK = kernelOf('stddev', 'float64');
  assert.equal(varK.final(varK.state(1), 0), null);
  assert.equal(sdK.final(sdK.state(1), 0), null);
  const one = addOnce(varK, 1, f64Col(Float64Array.from([42])), new Int32Array(1), identity(1));
  assert.equal(varK.final(one, 0), null);
  assert.equal(sdK.final(one, 0), null);
  for (const [a, b] of [[1, 3], [0.1, 0.3], [1e9 + 0.5, 1e9 + 1], [-7, -7], [1e15, 1e15 + 2]] as const) {
    const st = addOnce(varK, 1, f64Col(Float64Array.from([a, b])), new Int32Array(2), identity(2));
    // every one of these doubles is an integer multiple of 2^-60
    const want = ratio((BigInt(a * 2 ** 60) - BigInt(b * 2 ** 60)) ** 2n, 2n << 120n);
    assert.ok(Math.abs(varK.final(st, 0)! - want) <= want * 1e-15, `var(${a}, ${b}) = ${varK.final(st, 0)} want ${want}`);
    assert.ok(Math.abs(sdK.final(st, 0)! - Math.sqrt(want)) <= Math.sqrt(want) * 1e-15);
  }
  // NaN / Infinity poison the variance
  assert.ok(Number.isNaN(varK.final(addOnce(varK, 1, f64Col(Float64Array.from([1, NaN])), new Int32Array(2), identity(2)), 0)));
  assert.ok(Number.isNaN(varK.final(addOnce(varK, 1, f64Col(Float64Array.from([1, Infinity])), new Int32Array(2), identity(2)), 0)));
});

test('var / stddev of a constant column is exactly 0 (as DuckDB\'s var_samp)', () => {
  const varK = kernelOf('var', 'float64');
  const sdK = kernelOf('stddev', 'float64');
  const wrong: string[] = [];
  for (const [n, x] of [[1000, 0.1], [1000, 1e9 + 0.1], [5000, 123456.789], [1000, -3], [1000, 1.7e12 + 1]] as const) {
    const c = addOnce(varK, 1, f64Col(new Float64Array(n).fill(x)), new Int32Array(n), identity(n));
    const v = varK.final(c, 0);
    if (v !== 0) wrong.push(`var of ${n} × ${x} = ${v}, stddev ${sdK.final(c, 0)}`);
  }
  assert.deepEqual(wrong, []);
});

test('var / stddev with a huge mean (1e9 + small noise) against an exact reference, and merged splits', () => {
  const rng = mulberry32(46);
  const n = 20_000;
  const G = 8;
  const S = 20;
  // group g: mean ±1e9·(1 + g mod 3), noise ±1 in steps of 2^-20 — exact doubles, exact BigInt images
  const gids = randomGids(rng, n, G);
  const xs = Float64Array.from({ length: n }, (_, i) => {
    const g = gids[i]!;
    return (g % 2 === 0 ? 1 : -1) * 1e9 * (1 + (g % 3)) + Math.floor((rng() - 0.5) * 2 ** 21) / 2 ** S;
  });
  const byGroup: bigint[][] = Array.from({ length: G }, () => []);
  for (let i = 0; i < n; i++) byGroup[gids[i]!]!.push(BigInt(xs[i]! * 2 ** S));
  const want = byGroup.map((b) => exactVar(b, S));
  const varK = kernelOf('var', 'float64');
  const sdK = kernelOf('stddev', 'float64');
  const col = f64Col(xs);
  relClose(finals(varK, addOnce(varK, G, col, gids, identity(n)), G), want, 1e-9, 'var');
  relClose(finals(sdK, addOnce(sdK, G, col, gids, identity(n)), G), want.map((v) => (v === null ? null : Math.sqrt(v))), 1e-9, 'stddev');
  // the naive one-pass formula in doubles loses the variance entirely at this mean
  let naiveFar = 0;
  for (let g = 0; g < G; g++) {
    let s = 0;
    let q = 0;
    let m = 0;
    for (let i = 0; i < n; i++) if (gids[i] === g) { s += xs[i]!; q += xs[i]! * xs[i]!; m++; }
    const naive = (q - (s * s) / m) / (m - 1);
    if (Math.abs(naive - want[g]!) > want[g]! * 1e-3) naiveFar++;
  }
  assert.ok(naiveFar > 0);
  // random splits merged in random orders
  for (const batches of [3, 17]) {
    const merged = splitMerge(varK, G, col, gids, identity(n), new Float64Array(n), rng, batches, 'shuffled');
    relClose(finals(varK, merged, G), want, 1e-9, `var merged ${batches}`);
  }
});

test('var with mean / σ ≈ 10^12 is as accurate as DuckDB\'s Welford update (1e-4)', () => {
  // The case the double-double state exists for. Welford (DuckDB) is off by ~5e-5 on the float
  // data below; the relative error of the kernel must not be worse than 1e-4.
  const rng = mulberry32(53);
  const wrong: string[] = [];
  const n = 100_000;
  const S = 20;
  const xs = Float64Array.from({ length: n }, () => 1e12 + Math.floor((rng() - 0.5) * 2 ** 21) / 2 ** S);
  const want = exactVar([...xs].map((x) => BigInt(x * 2 ** S)), S)!;
  const varK = kernelOf('var', 'float64');
  const got = varK.final(addOnce(varK, 1, f64Col(xs), new Int32Array(n), identity(n)), 0)!;
  if (!(Math.abs(got - want) <= want * 1e-4)) wrong.push(`float64 1e12 ± 1: var ${got}, exact ${want}, relative error ${(got - want) / want}`);
  {
    // int64 ids around 2^50, spread 1000: mean / σ ≈ 4·10^12
    const m = 20_000;
    const words = new Int32Array(2 * m);
    const big: bigint[] = [];
    for (let i = 0; i < m; i++) {
      const v = 2 ** 50 + Math.floor(rng() * 1000);
      words[2 * i] = v % TWO_32 | 0;
      words[2 * i + 1] = Math.floor(v / TWO_32);
      big.push(BigInt(v));
    }
    const vi = kernelOf('var', 'int64');
    const exact = exactVar(big, 0)!;
    const v = vi.final(addOnce(vi, 1, { type: 'int64', words, valid: null }, new Int32Array(m), identity(m)), 0)!;
    if (!(Math.abs(v - exact) <= exact * 1e-4)) wrong.push(`int64 2^50 + [0, 1000): var ${v}, exact ${exact}, relative error ${(v - exact) / exact}`);
  }
  assert.deepEqual(wrong, []);
});

// ---------------------------------------------------------------------------------------------
// Merging random splits equals one add

test('merging random splits equals a single add: bit-identical for count, min, max, first, last, integer sums', () => {
  const rng = mulberry32(47);
  const n = 8000;
  const G = 60;
  const rows = expandedRows(rng, n);
  const gids = randomGids(rng, rows.length, G);
  const eventTime = Float64Array.from({ length: n }, () => Math.floor(rng() * 50));
  const special = [NaN, Infinity, -Infinity, -0, 0];
  const fvals = Float64Array.from({ length: n }, () => (rng() < 0.05 ? special[Math.floor(rng() * special.length)]! : (rng() - 0.5) * 1e6));
  const fcol = f64Col(fvals, validity(rng, n, 0.1));
  const i64 = int64Col(rng, n, validity(rng, n, 0.1));
  const i32: Int32Column = { type: 'int32', values: Int32Array.from({ length: n }, () => (rng() * TWO_32) | 0), valid: validity(rng, n, 0.05) };
  const cases: [string, ColumnType | null, Column | null][] = [
    ['count', null, null],
    ['count', 'float64', fcol],
    ['min', 'float64', fcol],
    ['max', 'float64', fcol],
    ['first', 'float64', fcol],
    ['last', 'float64', fcol],
    ['sum', 'int64', i64],
    ['avg', 'int64', i64],
    ['sum', 'int32', i32],
    ['min', 'int64', i64],
    ['max', 'int32', i32],
  ];
  for (const [name, type, col] of cases) {
    const k = kernelOf(name, type);
    const once = finals(k, addOnce(k, G, col, gids, rows, { eventTime, seq: 0 }), G);
    for (const batches of [2, 5, 33]) {
      const inOrder = finals(k, splitMerge(k, G, col, gids, rows, eventTime, rng, batches, 'in'), G);
      assertAll(inOrder, once, sameBits, `${name}(${type}) ${batches} batches in order`);
      // merge order is free too (min/max may then differ in the sign of a zero: -0 = 0 in SQL)
      const shuffled = finals(k, splitMerge(k, G, col, gids, rows, eventTime, rng, batches, 'shuffled'), G);
      assertAll(shuffled, once, name === 'min' || name === 'max' ? sqlSame : sameBits, `${name}(${type}) ${batches} batches shuffled`);
    }
  }
});

test('merging random splits of float sums: within 1e-15 of one add, identical across split orders', () => {
  const rng = mulberry32(48);
  const n = 20_000;
  const G = 16;
  const values = scaledDoubles(rng, n);
  const col = f64Col(values, validity(rng, n, 0.05));
  const gids = randomGids(rng, n, G);
  const rows = identity(n);
  for (const name of ['sum', 'avg'] as const) {
    const k = kernelOf(name, 'float64');
    const once = finals(k, addOnce(k, G, col, gids, rows), G);
    let previous: (number | null)[] | null = null;
    for (const batches of [2, 9, 64, 500]) {
      for (const order of ['in', 'shuffled'] as const) {
        const got = finals(k, splitMerge(k, G, col, gids, rows, new Float64Array(n), rng, batches, order), G);
        relClose(got, once, 1e-15, `${name} ${batches} ${order}`);
        if (previous !== null) assertAll(got, previous, sameBits, `${name}: ${batches} batches ${order} vs the previous split`);
        previous = got;
      }
    }
  }
});

// ---------------------------------------------------------------------------------------------
// Sketches

test('approx_count_distinct: exact while small, same-string across dictionaries, -0 = 0, one NaN', () => {
  const k = kernelOf('approx_count_distinct', 'string');
  const rng = mulberry32(49);
  const words = Array.from({ length: 300 }, (_, i) => (i === 0 ? '' : `w${i}é`));
  const G = 5;
  const seen: Set<string>[] = Array.from({ length: G }, () => new Set());
  const dst = k.state(G);
  for (let b = 0; b < 12; b++) {
    // each batch: its own dictionary (a shuffled subset)
    const dict = words.filter(() => rng() < 0.5).sort(() => rng() - 0.5);
    const m = 400;
    const codes = Int32Array.from({ length: m }, () => Math.floor(rng() * dict.length));
    const valid = validity(rng, m, 0.1);
    const gids = randomGids(rng, m, G);
    for (let i = 0; i < m; i++) if (valid === null || valid[i] === 1) seen[gids[i]!]!.add(dict[codes[i]!]!);
    const st = addOnce(k, G, { type: 'string', codes, dict, valid }, gids, identity(m));
    k.merge(dst, identity(G), st, identity(G), G);
  }
  assert.deepEqual(finals(k, dst, G), seen.map((s) => s.size));
  assert.equal(k.final(k.state(1), 0), 0);

  const f = kernelOf('approx_count_distinct', 'float64');
  const raw = new Float64Array(6);
  const w = new Int32Array(raw.buffer);
  raw[0] = 0;
  raw[1] = -0;
  raw[2] = NaN;
  w[6] = 1; w[7] = 0x7ff80000; // NaN with a payload
  raw[4] = Infinity;
  raw[5] = -Infinity;
  assert.equal(f.final(addOnce(f, 1, f64Col(raw), new Int32Array(6), identity(6)), 0), 4);

  const l = kernelOf('approx_count_distinct', 'int64');
  // 2^53 and 2^53 + 1 are distinct int64s
  const c = addOnce(l, 1, { type: 'int64', words: Int32Array.from([0, 0x200000, 1, 0x200000, 0, 0x200000]), valid: null }, new Int32Array(3), identity(3));
  assert.equal(l.final(c, 0), 2);
  const bk = kernelOf('approx_count_distinct', 'bool');
  assert.equal(bk.final(addOnce(bk, 1, { type: 'bool', values: Uint8Array.from([1, 0, 1, 1]), valid: null }, new Int32Array(4), identity(4)), 0), 2);
  const ik = kernelOf('approx_count_distinct', 'int32');
  assert.equal(ik.final(addOnce(ik, 1, { type: 'int32', values: Int32Array.from([-1, 0, -1, 7]), valid: Uint8Array.from([1, 1, 1, 0]) }, new Int32Array(4), identity(4)), 0), 2);
});

test('approx_count_distinct: 200 K distinct int64 within 3 %, same estimate however split and merged', () => {
  const rng = mulberry32(50);
  const n = 300_000;
  const words = new Int32Array(2 * n);
  for (let i = 0; i < n; i++) {
    const v = i % 200_000; // 200 K distinct, 100 K repeats
    words[2 * i] = v * 7919;
    words[2 * i + 1] = v & 0xff;
  }
  const col: Int64Column = { type: 'int64', words, valid: null };
  const k = kernelOf('approx_count_distinct', 'int64');
  const gids = new Int32Array(n);
  const once = k.final(addOnce(k, 1, col, gids, identity(n)), 0)!;
  assert.ok(Math.abs(once - 200_000) <= 6000, `estimate ${once}`);
  const merged = k.final(splitMerge(k, 1, col, gids, identity(n), new Float64Array(n), rng, 9, 'shuffled'), 0);
  assert.equal(merged, once);
});

test('approx_quantile: exact for small groups (DuckDB quantile_disc rank), ~1 % for large ones, mergeable', () => {
  const rng = mulberry32(51);
  for (const q of [0, 0.1, 0.5, 0.7, 0.99, 1]) {
    const k = kernelOf('approx_quantile', 'float64', q);
    const G = 30;
    const n = 1500; // ~50 values per group: exact mode
    const values = Float64Array.from({ length: n }, () => Math.floor((rng() - 0.5) * 1e6) / 8);
    const valid = validity(rng, n, 0.1);
    for (let i = 0; i < n; i += 97) values[i] = NaN; // NaN is ignored
    const gids = randomGids(rng, n, G);
    const per: number[][] = Array.from({ length: G }, () => []);
    for (let i = 0; i < n; i++) if ((valid === null || valid[i] === 1) && !Number.isNaN(values[i]!)) per[gids[i]!]!.push(values[i]!);
    const want = per.map((xs) => (xs.length === 0 ? null : [...xs].sort((a, b) => a - b)[quantileDiscIndex(xs.length, q)]!));
    const col = f64Col(values, valid);
    assertAll(finals(k, addOnce(k, G, col, gids, identity(n)), G), want, sameBits, `q=${q} exact`);
    assertAll(finals(k, splitMerge(k, G, col, gids, identity(n), new Float64Array(n), rng, 6, 'shuffled'), G), want, sameBits, `q=${q} merged`);
  }
  // large: relative value error ≤ alpha (1 %), and identical when split
  const n = 50_000;
  const values = Float64Array.from({ length: n }, () => Math.exp((rng() - 0.5) * 20));
  const sorted = [...values].sort((a, b) => a - b);
  for (const q of [0.01, 0.5, 0.9, 0.999]) {
    const k = kernelOf('approx_quantile', 'float64', q);
    const got = k.final(addOnce(k, 1, f64Col(values), new Int32Array(n), identity(n)), 0)!;
    const exact = sorted[quantileDiscIndex(n, q)]!;
    assert.ok(Math.abs(got - exact) <= 0.0101 * exact, `q=${q}: ${got} vs ${exact}`);
    const merged = k.final(splitMerge(k, 1, f64Col(values), new Int32Array(n), identity(n), new Float64Array(n), rng, 11, 'shuffled'), 0);
    assert.equal(merged, got);
  }
  // integer arguments and empty groups
  const ki = kernelOf('approx_quantile', 'int32', 0.5);
  assert.equal(ki.final(addOnce(ki, 1, { type: 'int32', values: Int32Array.from([5, 1, 3]), valid: null }, new Int32Array(3), identity(3)), 0), 3);
  assert.equal(ki.final(ki.state(1), 0), null);
});

// ---------------------------------------------------------------------------------------------
// State storage

test('AggLayout: offsets, stride and initial row follow the kernels\' shapes; sketches take no doubles', () => {
  const kernels = [
    bindKernel('count', null, null), // count only
    bindKernel('sum', 'float64', null), // count + [0, 0]
    bindKernel('min', 'float64', null), // count + [NaN]
    bindKernel('approx_count_distinct', 'float64', null), // []
    bindKernel('var', 'float64', null), // count + [0, 0, 0, 0]
    bindKernel('first', 'float64', null), // [0, Infinity, 0, 0]
    bindKernel('approx_quantile', 'float64', 0.5), // []
    bindKernel('max', 'int64', null), // count + [-Infinity]
  ];
  // without argument names every counted aggregate has a count of its own; counts come first
  const layout = new AggLayout(shapesOf(kernels));
  assert.deepEqual(layout.countOffsets, [0, 1, 2, -1, 3, -1, -1, 4]);
  assert.deepEqual(layout.offsets, [5, 5, 7, 8, 8, 12, 16, 16]);
  assert.equal(layout.stride, 17);
  assert.equal(layout.shapes.length, kernels.length);
  const want = [0, 0, 0, 0, 0, 0, 0, NaN, 0, 0, 0, 0, 0, Infinity, 0, 0, -Infinity];
  // aggregates of one argument share one count: sum, min and max of column 2, count() apart
  const shared = new AggLayout(shapesOf([kernels[0]!, kernels[1]!, kernels[2]!, kernels[7]!], ['*', 'col:2', 'col:2', 'col:2']));
  assert.deepEqual(shared.countOffsets, [0, 1, 1, 1]);
  assert.equal(shared.counts.length, 2);
  assert.equal(shared.stride, 2 + 2 + 1 + 1);
  assert.equal(layout.inits.length, want.length);
  want.forEach((v, i) => assert.ok(Object.is(layout.inits[i], v), `init ${i}: ${layout.inits[i]} vs ${v}`));
  assert.equal(layout.zeroInit, false);
  assert.equal(new AggLayout(shapesOf([kernels[0]!, kernels[1]!, kernels[3]!])).zeroInit, true);
  // a layout of sketches only has no numeric row at all, and its states still work
  const sketches = planOf([{ name: 'approx_count_distinct', type: 'int32' }, { name: 'approx_quantile', type: 'int32', q: 1 }]);
  assert.equal(sketches.layout.stride, 0);
  const st = new AggState(sketches.layout, 0);
  assert.equal(st.data.length, 0);
  st.ensure(3);
  const col: Int32Column = { type: 'int32', values: Int32Array.from([4, 4, 9, -2]), valid: Uint8Array.from([1, 1, 1, 0]) };
  sketches.add(st, Int32Array.from([2, 2, 2, 0]), identity(4), 4, [col, col], NO_CTX);
  assert.deepEqual(planFinals(sketches, st, 3), [[0, 0, 2], [null, null, 9]]);
});

test('AggState: growth and reset keep each kernel\'s initial values', () => {
  for (const name of ['min', 'max', 'first', 'last', 'sum', 'var']) {
    const k = kernelOf(name, 'float64');
    const st = k.state(2);
    const col = f64Col(Float64Array.from([3, 4]));
    k.add(st, Int32Array.from([0, 1]), identity(2), 2, col, { eventTime: Float64Array.from([1, 2]), seq: 0 });
    st.ensure(1000);
    assert.ok(st.capacity >= 1000);
    assert.ok(st.data.length >= 1000 * st.layout.stride);
    const field = (g: number, j: number): number => st.data[g * st.layout.stride + st.layout.offsets[0]! + j]!;
    for (let j = 0; j < k.inits.length; j++) {
      for (const g of [2, 500, 999]) assert.ok(Object.is(field(g, j), k.inits[j]), `${name} field ${j} group ${g}`);
    }
    assert.equal(k.final(st, 999), null, name);
    assert.equal(k.final(st, 0), name === 'var' ? null : 3, name);
    st.reset(2);
    assert.equal(k.final(st, 0), null, `${name} after reset`);
    for (let j = 0; j < k.inits.length; j++) assert.ok(Object.is(field(0, j), k.inits[j]), `${name} field ${j} after reset`);
    // slice is an independent copy
    k.add(st, Int32Array.from([0]), identity(1), 1, col, { eventTime: Float64Array.from([1]), seq: 0 });
    const copy = st.slice(1);
    st.reset(1);
    if (name !== 'var') assert.equal(k.final(copy, 0), 3, `${name} slice`);
  }
});

test('AggState of a plan: ensure, resetGroup, slice and reset act on whole group rows and their sketches', () => {
  const plan = planOf([
    { name: 'count', type: null },
    { name: 'min', type: 'float64' },
    { name: 'approx_count_distinct', type: 'float64' },
    { name: 'first', type: 'float64' },
    { name: 'var', type: 'float64' },
    { name: 'approx_quantile', type: 'float64', q: 0.5 },
    { name: 'max', type: 'float64' },
  ]);
  const { layout } = plan;
  const EMPTY = [0, null, 0, null, null, null, null];
  const col = f64Col(Float64Array.from([3, 4, 5, 6, 7, 8]));
  const ctx = { eventTime: Float64Array.from([1, 2, 3, 4, 5, 6]), seq: 0 };
  const args = plan.kernels.map((kernel) => (kernel.fused === null || kernel.fused.input !== 'none' ? col : null));
  const groupFinals = (st: AggState, g: number): (number | null)[] => plan.kernels.map((kernel, k) => kernel.final(st, k, g));
  const row = (st: AggState, g: number): number[] => [...st.data.subarray(g * layout.stride, (g + 1) * layout.stride)];
  const isInitRow = (st: AggState, g: number): boolean => row(st, g).every((v, i) => Object.is(v, layout.inits[i]));

  const st = new AggState(layout, 3);
  plan.add(st, Int32Array.from([0, 1, 2, 0, 1, 2]), identity(6), 6, args, ctx);
  const before = [0, 1, 2].map((g) => groupFinals(st, g));
  assert.deepEqual(before, [[2, 3, 2, 3, 4.5, 3, 6], [2, 4, 2, 4, 4.5, 4, 7], [2, 5, 2, 5, 4.5, 5, 8]]);
  const rowsBefore = [0, 1, 2].map((g) => row(st, g));

  st.ensure(1000);
  assert.ok(st.capacity >= 1000);
  assert.deepEqual([0, 1, 2].map((g) => row(st, g)), rowsBefore, 'rows survive growth');
  assert.deepEqual([0, 1, 2].map((g) => groupFinals(st, g)), before, 'sketches survive growth');
  for (const g of [3, 500, 999]) {
    assert.ok(isInitRow(st, g), `group ${g} starts at the initial row`);
    assert.deepEqual(groupFinals(st, g), EMPTY, `group ${g}`);
  }

  st.resetGroup(1);
  assert.ok(isInitRow(st, 1));
  assert.equal(st.hll[2]![1], undefined);
  assert.equal(st.qs[5]![1], undefined);
  assert.deepEqual(groupFinals(st, 1), EMPTY);
  assert.deepEqual([0, 2].map((g) => groupFinals(st, g)), [before[0], before[2]], 'neighbours of a reset group are untouched');
  // a freed slot starts afresh
  plan.add(st, Int32Array.from([1]), Int32Array.from([5]), 1, args, ctx);
  assert.deepEqual(groupFinals(st, 1), [1, 8, 1, 8, null, 8, 8]);

  const copy = st.slice(3);
  assert.equal(copy.layout, layout);
  assert.equal(copy.data.length, 3 * layout.stride);
  const copied = [0, 1, 2].map((g) => groupFinals(copy, g));
  assert.deepEqual(copied, [0, 1, 2].map((g) => groupFinals(st, g)));
  st.reset(3);
  for (const g of [0, 1, 2]) {
    assert.ok(isInitRow(st, g), `group ${g} after reset`);
    assert.deepEqual(groupFinals(st, g), EMPTY, `group ${g} after reset`);
  }
  // the reused state fills again without touching the partial sliced off it
  plan.add(st, Int32Array.from([0, 0, 2]), identity(3), 3, args, ctx);
  assert.deepEqual([0, 1, 2].map((g) => groupFinals(copy, g)), copied, 'slice independent of the reused state');
  assert.deepEqual(groupFinals(st, 0), [2, 3, 2, 3, 0.5, 3, 4]);

  // a layout whose initial row is all zeros resets by filling
  const zero = planOf([{ name: 'count', type: null }, { name: 'sum', type: 'int64' }]);
  assert.ok(zero.layout.zeroInit);
  const z = new AggState(zero.layout, 2);
  const i64: Int64Column = { type: 'int64', words: Int32Array.from([5, 0, -1, -1, 7, 1]), valid: null };
  zero.add(z, Int32Array.from([0, 1, 1]), identity(3), 3, [null, i64], NO_CTX);
  assert.deepEqual(planFinals(zero, z, 2), [[1, 2], [5, 6 + TWO_32]]);
  z.reset(2);
  assert.deepEqual(planFinals(zero, z, 2), [[0, 0], [null, null]]);
  assert.ok(z.data.subarray(0, 2 * zero.layout.stride).every((v) => Object.is(v, 0)));
});

/** Run `code` in a worker (it posts one message when done); 'timeout' when it did not finish in time. */
function finishesWithin(ms: number, code: string): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const w = new Worker(code, { eval: true });
    const timer = setTimeout(() => {
      void w.terminate();
      resolve('timeout');
    }, ms);
    w.once('message', (m: unknown) => {
      clearTimeout(timer);
      void w.terminate();
      resolve(m);
    });
    w.once('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
  });
}

test('a state of capacity 0 can grow (ensure must not loop forever)', async () => {
  // deserializePartial of a zero-group partial gives capacity 0 (and `new AggState(layout, 0)`
  // asks for it); ensure() doubles the capacity, and 0 · 2 stays 0. Run it in a worker so a
  // hang is a failure, not a stuck suite.
  const url = (p: string): string => JSON.stringify(new URL(`../../native-free-kernels/${p}`, import.meta.url).href);
  const code = `
    const { parentPort } = require('node:worker_threads');
    Promise.all([import(${url('aggregates.js')}), import(${url('aggregate-state.js')}), import(${url('partial.js')})]).then(([a, s, p]) => {
      const layout = new s.AggLayout(a.shapesOf([a.AGGREGATES.get('min').bind('float64', null)]));
      const m = layout.offsets[0];
      const fresh = new s.AggState(layout, 0);
      fresh.ensure(5);
      const empty = { groups: 0, windowStart: new Float64Array(0), windowEnd: new Float64Array(0), keys: [],
        state: new s.AggState(layout, 1), rowsIn: 0, rowsSelected: 0, minEventTime: Infinity, maxEventTime: -Infinity };
      const back = p.deserializePartial(p.serializePartial(empty)).state;
      const cap0 = back.capacity;
      back.ensure(5);
      parentPort.postMessage([fresh.capacity >= 5, Number.isNaN(fresh.data[4 * layout.stride + m]), cap0,
        back.capacity >= 5, back.data.length >= 5 * layout.stride, Number.isNaN(back.data[4 * layout.stride + m])]);
    }, (e) => parentPort.postMessage(String(e)));`;
  assert.deepEqual(await finishesWithin(2000, code), [true, true, 0, true, true, true]);
});

// ---------------------------------------------------------------------------------------------
// Plans: many aggregates in one layout, one fused loop

function int32Col(rng: Rng, n: number, valid: Uint8Array | null): Int32Column {
  const limits = [-0x80000000, 0x7fffffff, -1, 0];
  return { type: 'int32', values: Int32Array.from({ length: n }, () => (rng() < 0.1 ? limits[Math.floor(rng() * 4)]! : (rng() * TWO_32) | 0)), valid };
}

function stringCol(rng: Rng, n: number, valid: Uint8Array | null): Column {
  const dict = Array.from({ length: 40 }, (_, i) => `s${i}·${'x'.repeat(i % 5)}`);
  return { type: 'string', codes: Int32Array.from({ length: n }, () => Math.floor(rng() * dict.length)), dict, valid };
}

/** The same column with its validity array dropped (every row counts as present). */
function withoutNulls(c: Column): Column {
  return { ...c, valid: null };
}

test('a plan of many aggregates over different columns, one fused loop: every final identical to the aggregate alone', () => {
  const rng = mulberry32(71);
  const n = 6000;
  const G = 45;
  const rows = expandedRows(rng, n);
  const gids = randomGids(rng, rows.length, G - 1); // group G - 1 stays empty
  const eventTime = Float64Array.from({ length: n }, () => Math.floor(rng() * 40) * 250 - 3000);
  const special = [NaN, Infinity, -Infinity, -0, 0];
  const cols: Record<string, Column> = {
    f: f64Col(Float64Array.from({ length: n }, () => (rng() < 0.05 ? special[Math.floor(rng() * special.length)]! : (rng() - 0.5) * 1e6)), validity(rng, n, 0.1)),
    g: f64Col(scaledDoubles(rng, n)),
    i64: int64Col(rng, n, validity(rng, n, 0.1)),
    i32: int32Col(rng, n, validity(rng, n, 0.05)),
    b: { type: 'bool', values: Uint8Array.from({ length: n }, () => (rng() < 0.5 ? 1 : 0)), valid: validity(rng, n, 0.3) },
    ts: { type: 'timestamp', values: Float64Array.from({ length: n }, () => Math.floor((rng() - 0.5) * 1e13)), valid: null },
    s: stringCol(rng, n, validity(rng, n, 0.2)),
  };
  const specs: [AggSpec, string | null][] = [
    [{ name: 'count', type: null }, null],
    [{ name: 'count', type: 'string' }, 's'],
    [{ name: 'sum', type: 'float64' }, 'f'],
    [{ name: 'approx_count_distinct', type: 'string' }, 's'],
    [{ name: 'sum', type: 'float64' }, 'g'],
    [{ name: 'avg', type: 'float64' }, 'g'],
    [{ name: 'sum', type: 'int64' }, 'i64'],
    [{ name: 'avg', type: 'int32' }, 'i32'],
    [{ name: 'min', type: 'int32' }, 'i32'],
    [{ name: 'approx_quantile', type: 'float64', q: 0.5 }, 'f'],
    [{ name: 'max', type: 'int64' }, 'i64'],
    [{ name: 'min', type: 'float64' }, 'f'],
    [{ name: 'max', type: 'float64' }, 'f'],
    [{ name: 'min', type: 'bool' }, 'b'],
    [{ name: 'max', type: 'timestamp' }, 'ts'],
    [{ name: 'first', type: 'int64' }, 'i64'],
    [{ name: 'first', type: 'float64' }, 'f'],
    [{ name: 'last', type: 'int32' }, 'i32'],
    [{ name: 'last', type: 'timestamp' }, 'ts'],
    [{ name: 'var', type: 'float64' }, 'g'],
    [{ name: 'stddev', type: 'int64' }, 'i64'],
    [{ name: 'approx_count_distinct', type: 'int64' }, 'i64'],
    [{ name: 'approx_quantile', type: 'int32', q: 0.9 }, 'i32'],
    [{ name: 'count', type: 'int64' }, 'i64'],
  ];
  const plan = planOf(specs.map(([s]) => s));
  const args = specs.map(([, c]) => (c === null ? null : cols[c]!));
  const alone = specs.map(([s]) => kernelOf(s.name, s.type, s.q ?? null));
  const label = (k: number): string => `${k}: ${specs[k]![0].name}(${specs[k]![1] ?? ''})`;
  // the layout really interleaves them: offsets ascend by each kernel's width
  plan.kernels.forEach((kernel, k) => {
    if (k > 0) assert.equal(plan.layout.offsets[k], plan.layout.offsets[k - 1]! + plan.kernels[k - 1]!.inits.length);
    assert.equal(kernel.inits.length, alone[k]!.inits.length);
  });

  const st = new AggState(plan.layout, G);
  plan.add(st, gids, rows, rows.length, args, { eventTime, seq: 0 });
  const together = planFinals(plan, st, G);
  alone.forEach((a, k) => {
    const want = finals(a, addOnce(a, G, args[k]!, gids, rows, { eventTime, seq: 0 }), G);
    assertAll(together[k]!, want, sameBits, `one add, ${label(k)}`);
    // the data is not degenerate: groups have values, the empty group has the empty final
    assert.ok(want.slice(0, G - 1).every((v) => v !== null), label(k));
    assert.equal(want[G - 1], a.final(a.state(1), 0), label(k));
  });

  // random splits through one reused scratch state, merged in random orders
  for (const batches of [3, 20]) {
    const split = randomSplit(rng, rows.length, batches, 'shuffled');
    const merged = planFinals(plan, splitMergePlan(plan, G, args, gids, rows, eventTime, split, true), G);
    alone.forEach((a, k) => {
      const want = finals(a, splitMergePlan(a.plan, G, [args[k]!], gids, rows, eventTime, split), G);
      assertAll(merged[k]!, want, sameBits, `${batches} batches, ${label(k)}`);
    });
  }
});

/** A float column whose values under its nulls would win a max: skipping them must show. */
function garbageUnderNulls(c: Float64Column, v: number): Float64Column {
  const values = c.values.map((x, i) => (c.valid !== null && c.valid[i] === 0 ? v : x));
  return { ...c, values };
}

test('every validity-mask variant of a plan\'s loop skips exactly the null arguments of its aggregates', () => {
  const rng = mulberry32(72);
  const n = 400;
  const G = 11;
  const rows = expandedRows(rng, n);
  const gids = randomGids(rng, rows.length, G);
  const eventTime = Float64Array.from({ length: n }, () => Math.floor(rng() * 8));
  // one column per aggregate, so that each aggregate's mask bit is its own
  const specs: [AggSpec, Column][] = [
    [{ name: 'count', type: 'string' }, stringCol(rng, n, validity(rng, n, 0.3))],
    [{ name: 'sum', type: 'float64' }, f64Col(scaledDoubles(rng, n), validity(rng, n, 0.3))],
    [{ name: 'approx_quantile', type: 'float64', q: 0.25 }, f64Col(scaledDoubles(rng, n), validity(rng, n, 0.3))],
    [{ name: 'sum', type: 'int64' }, int64Col(rng, n, validity(rng, n, 0.3))],
    [{ name: 'min', type: 'int32' }, int32Col(rng, n, validity(rng, n, 0.3))],
    [{ name: 'max', type: 'float64' }, garbageUnderNulls(f64Col(scaledDoubles(rng, n), validity(rng, n, 0.3)), 2 ** 50)],
    [{ name: 'first', type: 'int64' }, int64Col(rng, n, validity(rng, n, 0.3))],
    [{ name: 'approx_count_distinct', type: 'string' }, stringCol(rng, n, validity(rng, n, 0.3))],
    [{ name: 'last', type: 'float64' }, f64Col(scaledDoubles(rng, n), validity(rng, n, 0.3))],
    [{ name: 'var', type: 'float64' }, f64Col(scaledDoubles(rng, n), validity(rng, n, 0.3))],
  ];
  const ctx = { eventTime, seq: 0 };
  // reference: the aggregate alone, given only the rows whose value is present, no validity array
  const refs = specs.map(([s, col]) => {
    const a = kernelOf(s.name, s.type, s.q ?? null);
    const all = finals(a, addOnce(a, G, withoutNulls(col), gids, rows, ctx), G);
    const keep: number[] = [];
    for (let i = 0; i < rows.length; i++) if (col.valid![rows[i]!] === 1) keep.push(i);
    const kr = Int32Array.from(keep, (i) => rows[i]!);
    const kg = Int32Array.from(keep, (i) => gids[i]!);
    const present = finals(a, addOnce(a, G, withoutNulls(col), kg, kr, ctx), G);
    // the nulls make a difference for every aggregate, or the comparison below proves nothing
    assert.ok(all.some((v, g) => !sameBits(v, present[g]!)), s.name);
    return { all, present };
  });
  // one loop for every mask: its variants are generated on demand and cached
  const plan = planOf(specs.map(([s]) => s));
  for (let mask = 0; mask < 1 << specs.length; mask++) {
    const args = specs.map(([, col], k) => ((mask >> k) & 1 ? col : withoutNulls(col)));
    const st = new AggState(plan.layout, G);
    plan.add(st, gids, rows, rows.length, args, ctx);
    const got = planFinals(plan, st, G);
    specs.forEach(([s], k) => {
      const want = (mask >> k) & 1 ? refs[k]!.present : refs[k]!.all;
      assertAll(got[k]!, want, sameBits, `mask ${mask.toString(2)}: ${s.name}`);
    });
  }
});

test('a plan of more than 32 aggregates: each argument\'s validity is checked by its own aggregate only', () => {
  // The loop variants are keyed by a bit mask of "argument k has a validity array". With 33+
  // aggregates, bit k must not alias bit k − 32.
  const n = 64;
  const K = 34;
  const values = Float64Array.from({ length: n }, (_, i) => i);
  const valid = Uint8Array.from({ length: n }, (_, i) => (i % 4 === 0 ? 0 : 1));
  const withNulls = f64Col(values, valid);
  const noNulls = f64Col(values);
  const plan = planOf(Array.from({ length: K }, (_, k) => (k % 2 === 0 ? { name: 'count', type: 'float64' } : { name: 'sum', type: 'float64' })));
  const rows = identity(n);
  const gids = new Int32Array(n);
  const present = valid.reduce((a, v) => a + v, 0);
  const sumAll = (n * (n - 1)) / 2;
  const sumPresent = values.reduce((a, v, i) => a + (valid[i] === 1 ? v : 0), 0);
  const wrong: string[] = [];
  for (const nullArgs of [[0], [32], [1], [33], [0, 32], [1, 32], [31, 33], [], [2, 3, 30, 31, 32, 33]]) {
    const args = Array.from({ length: K }, (_, k) => (nullArgs.includes(k) ? withNulls : noNulls));
    const st = new AggState(plan.layout, 1);
    try {
      plan.add(st, gids, rows, n, args, NO_CTX);
    } catch (e) {
      wrong.push(`nulls in arguments [${nullArgs}]: add threw ${String(e)}`);
      continue;
    }
    plan.kernels.forEach((kernel, k) => {
      const has = nullArgs.includes(k);
      const want = k % 2 === 0 ? (has ? present : n) : has ? sumPresent : sumAll;
      const got = kernel.final(st, k, 0);
      if (got !== want) wrong.push(`nulls in arguments [${nullArgs}]: aggregate ${k} = ${got}, want ${want}`);
    });
  }
  assert.deepEqual(wrong, []);
});

test('int32 and int64 arguments widened in the same loop (min, max, first, last) keep their own scratch', () => {
  const rng = mulberry32(73);
  const n = 1000;
  const G = 20;
  const a = int32Col(rng, n, validity(rng, n, 0.1));
  const b = int64Col(rng, n, validity(rng, n, 0.1));
  const c: Int32Column = { type: 'int32', values: Int32Array.from({ length: n }, (_, i) => 1000 + i), valid: null };
  // distinct event times (a permutation of the rows), so first / last have one answer each
  const eventTime = Float64Array.from(identity(n));
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rng() * (i + 1));
    [eventTime[i], eventTime[j]] = [eventTime[j]!, eventTime[i]!];
  }
  const gids = randomGids(rng, n, G);
  const cols: Record<string, Int32Column | Int64Column> = { a, b, c };
  const specs: [AggSpec, string][] = [
    [{ name: 'min', type: 'int32' }, 'a'],
    [{ name: 'max', type: 'int64' }, 'b'],
    [{ name: 'first', type: 'int32' }, 'a'],
    [{ name: 'first', type: 'int64' }, 'b'],
    [{ name: 'last', type: 'int64' }, 'b'],
    [{ name: 'last', type: 'int32' }, 'c'],
    [{ name: 'max', type: 'int32' }, 'a'],
    [{ name: 'min', type: 'int64' }, 'b'],
    [{ name: 'min', type: 'int32' }, 'c'],
    [{ name: 'approx_quantile', type: 'int32', q: 1 }, 'a'], // widens in its own loop, after the fused one
    [{ name: 'max', type: 'int32' }, 'c'],
  ];
  // exact references (BigInt), rounded to a double once
  const ref = specs.map(([s, name]) => {
    const col = cols[name]!;
    const best = new Array<{ v: bigint; t: number } | null>(G).fill(null);
    for (let r = 0; r < n; r++) {
      if (col.valid !== null && col.valid[r] === 0) continue;
      const v = bigOf(col, r);
      const t = eventTime[r]!;
      const g = gids[r]!;
      const cur = best[g];
      const better = cur === null || (s.name === 'min' ? v < cur.v : s.name === 'first' ? t < cur.t : s.name === 'last' ? t > cur.t : v > cur.v);
      if (better) best[g] = { v, t };
    }
    return best.map((e) => (e === null ? null : Number(e.v)));
  });
  const plan = planOf(specs.map(([s]) => s));
  const args = specs.map(([, name]) => cols[name]!);
  const st = new AggState(plan.layout, G);
  plan.add(st, gids, identity(n), n, args, { eventTime, seq: 0 });
  const got = planFinals(plan, st, G);
  specs.forEach(([s, name], k) => assertAll(got[k]!, ref[k]!, sameBits, `${s.name}(${name}) beside the other widened arguments`));

  // doublesOf itself: one slot per argument, a float64 column is read in place
  const wa = doublesOf(a, 0);
  const wb = doublesOf(b, 1);
  assert.notEqual(wa.buffer, wb.buffer);
  for (let r = 0; r < n; r++) {
    assert.equal(wa[r], a.values[r]);
    assert.equal(wb[r], Number(bigOf(b, r)));
  }
  const f = f64Col(Float64Array.from([1.5, -2]));
  assert.equal(doublesOf(f, 0), f.values);
  assert.equal(doublesOf({ type: 'timestamp', values: f.values, valid: null }, 3), f.values);
  const bools = doublesOf({ type: 'bool', values: Uint8Array.from([1, 0, 1]), valid: null }, 2);
  assert.deepEqual([...bools.subarray(0, 3)], [1, 0, 1]);
});

test('add-loop and argument errors: foreign state, wrong argument type, string or missing argument', () => {
  const sumI64 = planOf([{ name: 'sum', type: 'int64' }]);
  const sumI32 = planOf([{ name: 'sum', type: 'int32' }]);
  const minF = planOf([{ name: 'min', type: 'float64' }]);
  const distinct = planOf([{ name: 'approx_count_distinct', type: 'int64' }]);
  const quantile = planOf([{ name: 'approx_quantile', type: 'float64', q: 0.5 }]);
  const one = Int32Array.from([0]);
  const i32: Int32Column = { type: 'int32', values: Int32Array.from([1]), valid: null };
  const i64: Int64Column = { type: 'int64', words: Int32Array.from([1, 0]), valid: null };
  const str: Column = { type: 'string', codes: Int32Array.from([0]), dict: ['x'], valid: null };
  // a state of another layout, even an identical-looking one, is refused before touching data
  const other = new AggState(planOf([{ name: 'sum', type: 'int64' }]).layout, 1);
  assert.throws(() => sumI64.add(other, one, one, 1, [i64], NO_CTX), /another layout/);
  assert.deepEqual([...other.data], [0, 0, 0, 0]);
  assert.throws(() => sumI64.add(new AggState(sumI64.layout, 1), one, one, 1, [i32], NO_CTX), /int64 argument expected/);
  assert.throws(() => sumI64.add(new AggState(sumI64.layout, 1), one, one, 1, [null], NO_CTX), /int64 argument expected/);
  assert.throws(() => sumI32.add(new AggState(sumI32.layout, 1), one, one, 1, [i64], NO_CTX), /int32 argument expected/);
  assert.throws(() => minF.add(new AggState(minF.layout, 1), one, one, 1, [str], NO_CTX), /not numeric/);
  assert.throws(() => minF.add(new AggState(minF.layout, 1), one, one, 1, [null], NO_CTX), /needs an argument/);
  assert.throws(() => minF.add(new AggState(minF.layout, 1), one, one, 1, [], NO_CTX), /needs an argument/);
  assert.throws(() => distinct.add(new AggState(distinct.layout, 1), one, one, 1, [null], NO_CTX), /needs an argument/);
  assert.throws(() => quantile.add(new AggState(quantile.layout, 1), one, one, 1, [null], NO_CTX), /needs an argument/);
  assert.throws(() => doublesOf(str, 0), /not numeric/);
  assert.throws(() => doublesOf(null, 0), /needs an argument/);
  for (const name of ['sum', 'min', 'first', 'var', 'approx_count_distinct']) assert.throws(() => bindKernel(name, null, null), name);
  assert.throws(() => bindKernel('min', 'string', null), /does not accept string/);
});
