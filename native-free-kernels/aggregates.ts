/**
 * The aggregates of DESIGN.md A2, as one table of small definitions (STYLE: arquero's
 * aggregate-functions table). Each definition binds, once per plan, to the type of its argument
 * and yields a kernel with
 *
 *   inits   the numeric state fields of one group and their initial values
 *   fused   the per-row update as a code fragment; the plan compiles the fragments of all its
 *           aggregates into ONE loop over the rows (fused-aggregate.ts)
 *   addRows an update loop of its own, for the sketch aggregates (one object per group)
 *   mergeCode  folding group srcRows[i] of another state into group dstGids[i] of this one, as
 *           a code fragment: mergeStates compiles the fragments of all its aggregates into ONE
 *           loop over the groups (fused-merge.ts)
 *   mergeRows  a merge loop of its own, for the sketch aggregates
 *   final   the output value of one group (null = SQL NULL)
 *
 * State lives in an AggState (aggregate-state.ts): aggregate k of group g starts at
 * data[g * stride + offsets[k]].
 *
 * Determinism (DESIGN.md A3: same rows whatever the batch sizes and worker count) shapes the
 * state: merging must not depend on how rows were split into partials.
 * - count, min, max, first, last and the sketches are order independent by construction
 *   (first / last break event-time ties by arrival: batch sequence, then row).
 * - sum / avg / var of doubles accumulate in double-double (TwoSum; Dekker's TwoProduct for
 *   squares), ~106 bits, and round once at the end, so the result is the correctly rounded
 *   value except when the exact one lies within ~n·2⁻¹⁰⁶ of a rounding boundary.
 * - sum / avg of int64 and int32 are exact: three word sums (low 16 bits, next 16 bits, the
 *   signed high word) that stay exact doubles, carried on merge, converted once per group.
 * - NaN follows DuckDB's order (NaN is the largest value): max is NaN when any value is,
 *   min only when all are.
 * - Aggregates of a column skip its nulls (SQL); first / last return the first / last
 *   non-null value by event time.
 */

import type { Column, ColumnType } from '../engine/schema.js';
import type { AggState, StateShape } from './aggregate-state.js';
import { sluiceError } from '../engine/errors.js';
import { doubleHi, doubleLo, fmix32, hashCombine, hashString } from './hash.js';
import { dd, ddAdd, ddDiv, ddSquare, twoSum } from './double-double.js';
import { mergeLoopFor } from './fused-merge.js';
import { HyperLogLog } from './hyperloglog.js';
import { QuantileSketch } from './quantile-sketch.js';

export type OutputType = 'BIGINT' | 'DOUBLE';

/** Per-call context of an add. */
export interface AddContext {
  /** event time (ms) of every row of the batch */
  readonly eventTime: Float64Array;
  /** sequence number of the batch (arrival order), for first/last ties */
  readonly seq: number;
}

/**
 * A per-row update as JavaScript statements, spliced into the generated fused loop.
 * The shared count of the argument is incremented by the loop itself, once per row, not by
 * the fragments.
 * Names in scope: `S` (state data), `b` (this group's first field of this aggregate),
 * `x` (the argument value: a double for input 'f64', an int32 for 'i32'), `lo` / `hi`
 * (the words of an int64 for input 'i64'), `r` (row), `ET` (event times), `seq`, and `T`
 * (a 2-slot Float64Array scratch for branch-free selects).
 * The fragments are constants of this file — never user text.
 */
export interface FusedAdd {
  readonly input: 'none' | 'f64' | 'i32' | 'i64';
  readonly code: string;
}

export interface AggregateKernel {
  /** own numeric fields and their initial values */
  readonly inits: readonly number[];
  readonly sketch: 'hll' | 'qs' | null;
  /** reads the (shared) non-null count of its argument: `S[c]` in fragments, layout.countOffsets */
  readonly counted: boolean;
  /** fused per-row update, or null when the kernel brings its own loop (`addRows`) */
  readonly fused: FusedAdd | null;
  readonly addRows: ((st: AggState, k: number, gids: Int32Array, rows: Int32Array, n: number, arg: Column | null, ctx: AddContext) => void) | null;
  /**
   * The merge of one group as JavaScript statements, spliced into the fused merge loop
   * (fused-merge.ts), or null when the kernel brings its own loop (`mergeRows`). The shared
   * counts are merged by the loop before the fragments run. Names in scope: `d` / `s` (the
   * destination / source state data), `db` / `sb` (this aggregate's first field in the
   * destination / source group) and `dc` / `sc` (their shared counts; meaningless when the
   * kernel is not counted).
   */
  readonly mergeCode: string | null;
  readonly mergeRows: ((dst: AggState, k: number, dstGids: Int32Array, src: AggState, srcRows: Int32Array, n: number) => void) | null;
  final(st: AggState, k: number, g: number): number | null;
}

export interface AggregateDef {
  readonly name: string;
  /** 0: `count()`; 1: one column or expression argument */
  readonly arity: 0 | 1;
  /** the numeric parameter after the argument (approx_quantile's q) */
  readonly param: null | { readonly name: string; check(v: number): string | null };
  readonly output: OutputType;
  accepts(t: ColumnType): boolean;
  bind(argType: ColumnType | null, param: number | null): AggregateKernel;
}

const NUMERIC: readonly ColumnType[] = ['int32', 'int64', 'float64'];
const ORDERED: readonly ColumnType[] = ['int32', 'int64', 'float64', 'timestamp', 'bool'];

function base(st: AggState, k: number, g: number): number {
  return g * st.layout.stride + st.layout.offsets[k]!;
}

/** The non-null count aggregate k reads, for group g. */
function countOf(st: AggState, k: number, g: number): number {
  return st.data[g * st.layout.stride + st.layout.countOffsets[k]!]!;
}

/**
 * The layout shapes of kernels. `argKeys[k]` names aggregate k's argument so that aggregates of
 * one argument share their count; without names every counted aggregate gets its own.
 */
export function shapesOf(kernels: readonly AggregateKernel[], argKeys?: readonly string[]): StateShape[] {
  return kernels.map((k, i) => ({ inits: k.inits, sketch: k.sketch, count: k.counted ? (argKeys?.[i] ?? true) : null }));
}

/**
 * Merge every aggregate's state: the shared counts once each, then each kernel's own fields.
 * Both states must have layouts built from the same shapes.
 */
export function mergeStates(
  kernels: readonly AggregateKernel[],
  dst: AggState,
  dstGids: Int32Array,
  src: AggState,
  srcRows: Int32Array,
  n: number,
): void {
  const dl = dst.layout, sl = src.layout;
  if (dl !== sl && dl.signature !== sl.signature) {
    // e.g. a checkpoint of `select` in another order: merging would mix up the aggregates
    throw sluiceError('INTERNAL', `aggregate states of different layouts cannot merge: ${sl.signature} into ${dl.signature}`);
  }
  // equal signatures: equal offsets and strides, so one layout's loop serves both states
  mergeLoopFor(kernels, dl)(dst.data, dstGids, src.data, srcRows, n);
  kernels.forEach((kernel, k) => kernel.mergeRows?.(dst, k, dstGids, src, srcRows, n));
}

/**
 * (d[h], d[h + 1]) += (s[g], s[g + 1]) in double-double: the operations of ddAdd
 * (double-double.ts) in its order, so that the result is the same to the bit.
 */
function ddMergeCode(h: string, g: string): string {
  return `{ const ah = d[${h}], bh = s[${g}], t = ah + bh, bb = t - ah;
        const e = ah - (t - bb) + (bh - bb) + d[${h} + 1] + s[${g} + 1];
        const u = t + e, uu = u - t;
        d[${h} + 1] = t - (u - uu) + (e - uu); d[${h}] = u; }`;
}

// ---------------------------------------------------------------------------------------------
// count() and count(col): nothing of their own — the value is the shared count (of every
// position for count(), of the non-null values for count(col)), which the loop updates.

const countKernel: AggregateKernel = {
  inits: [],
  sketch: null,
  counted: true,
  fused: null,
  addRows: null,
  // the shared count is merged by the loop
  mergeCode: '',
  mergeRows: null,
  final(st, k, g) {
    return countOf(st, k, g);
  },
};

// ---------------------------------------------------------------------------------------------
// sum / avg of doubles: double-double accumulation. Fields: hi, lo (+ the shared count).

const SUM_F64_ADD = `{ const a = S[b]; const s = a + x; const bb = s - a;
        S[b + 1] += a - (s - bb) + (x - bb); S[b] = s; }`;

// ±Infinity or NaN (an infinite input, or an overflowing total): IEEE addition is the answer,
// and the low word (NaN by then) must not leak into it
const SUM_F64_MERGE = `if (s[sc] !== 0) {
        if (Number.isFinite(d[db] + s[sb])) ${ddMergeCode('db', 'sb')}
        else { d[db] = d[db] + s[sb]; d[db + 1] = 0; } }`;

/** The double-double sum rounded once (an infinite or NaN hi is the answer: lo is then meaningless). */
function ddValue(hi: number, lo: number): number {
  if (!Number.isFinite(hi)) return hi;
  twoSum(hi, lo);
  return dd.hi;
}

function sumF64(avg: boolean): AggregateKernel {
  return {
    inits: [0, 0],
    sketch: null,
    counted: true,
    fused: { input: 'f64', code: SUM_F64_ADD },
    addRows: null,
    mergeCode: SUM_F64_MERGE,
    mergeRows: null,
    final(st, k, g) {
      const b = base(st, k, g);
      const n = countOf(st, k, g);
      if (n === 0) return null;
      const hi = st.data[b]!, lo = st.data[b + 1]!;
      if (!avg) return ddValue(hi, lo);
      if (!Number.isFinite(hi)) return hi / n;
      ddDiv(hi, lo, n);
      return dd.hi;
    },
  };
}

// ---------------------------------------------------------------------------------------------
// sum / avg of integers, exact. Fields: s0 (Σ low 16 bits), s1 (Σ next 16 bits),
// s2 (Σ signed high words) (+ the shared count). s0 and s1 grow by < 2^16 per row, so they stay
// exact doubles for 2^37 rows between carries; merges carry s0 → s1 → s2. s2 grows by up to
// 2^31 per row and stays exact while the running total is below 2^84 — far beyond any int64
// total (the result is a DOUBLE anyway); past that it rounds, and then depends on batching.



const SUM_I64_ADD = 'S[b] += lo & 0xffff; S[b + 1] += lo >>> 16; S[b + 2] += hi;';
// an int32's high word is its sign: 0 or -1
const SUM_I32_ADD = 'S[b] += x & 0xffff; S[b + 1] += (x >>> 16) & 0xffff; S[b + 2] += x >> 31;';

const SUM_INT_MERGE = `if (s[sc] !== 0) {
        let a0 = d[db] + s[sb];
        let a1 = d[db + 1] + s[sb + 1];
        const k0 = Math.floor(a0 / 65536);
        a0 -= k0 * 65536;
        a1 += k0;
        const k1 = Math.floor(a1 / 65536);
        a1 -= k1 * 65536;
        d[db] = a0;
        d[db + 1] = a1;
        d[db + 2] = d[db + 2] + s[sb + 2] + k1; }`;

/** The exact integer Σ (BigInt once per group, never per row). */
function intTotal(data: Float64Array, b: number): bigint {
  return (BigInt(data[b + 2]!) << 32n) + (BigInt(data[b + 1]!) << 16n) + BigInt(data[b]!);
}

/**
 * total / n correctly rounded to a double, in one rounding: the quotient scaled by 2^64 keeps
 * more than 54 significant bits, and a non-zero remainder is folded into its lowest bit
 * (sticky) so that Number() rounds to nearest-even exactly as the infinitely precise quotient
 * would; the division by 2^64 is then exact.
 */
function roundedQuotient(total: bigint, n: number): number {
  const neg = total < 0n;
  const num = (neg ? -total : total) << 64n;
  const d = BigInt(n);
  let q = num / d;
  if (q * d !== num) q |= 1n;
  const v = Number(q) / 18446744073709551616;
  return neg ? -v : v;
}

function sumInt(input: 'i32' | 'i64', avg: boolean): AggregateKernel {
  return {
    inits: [0, 0, 0],
    sketch: null,
    counted: true,
    fused: { input, code: input === 'i64' ? SUM_I64_ADD : SUM_I32_ADD },
    addRows: null,
    mergeCode: SUM_INT_MERGE,
    mergeRows: null,
    final(st, k, g) {
      const b = base(st, k, g);
      const n = countOf(st, k, g);
      if (n === 0) return null;
      const total = intTotal(st.data, b);
      return avg ? roundedQuotient(total, n) : Number(total);
    },
  };
}

// ---------------------------------------------------------------------------------------------
// min / max. Field: m (+ the shared count). DuckDB's order puts NaN above everything: max takes NaN and keeps
// it; min starts at NaN ("nothing yet"), a number replaces NaN, NaN replaces nothing.
//
// Branch-free select: with a few rows per group, "is it smaller?" is a coin flip that
// mispredicts every other row (it doubled the fused loop's time). The fragment writes the
// current and the candidate value into a 2-slot scratch `T` and stores the one the comparison
// indexes: exact, unlike an arithmetic blend c + m·(x − c). Math.min/max were slower still
// (they must order −0 below +0 and propagate NaN).

const MIN_ADD = '{ const c = S[b]; T[0] = c; T[1] = x; S[b] = T[(x < c) | (c !== c)]; }';
const MAX_ADD = '{ const c = S[b]; T[0] = c; T[1] = x; S[b] = T[(x > c) | (x !== x)]; }';

function extremum(isMax: boolean): AggregateKernel {
  return {
    inits: [isMax ? -Infinity : NaN],
    sketch: null,
    counted: true,
    fused: { input: 'f64', code: isMax ? MAX_ADD : MIN_ADD },
    addRows: null,
    mergeCode: `if (s[sc] !== 0) { const v = s[sb], c = d[db]; if (${isMax ? 'v > c || v !== v' : 'v < c || c !== c'}) d[db] = v; }`,
    mergeRows: null,
    final(st, k, g) {
      if (countOf(st, k, g) === 0) return null;
      // -0 and 0 are equal, and which one survives depends on arrival order: report 0
      const v = st.data[base(st, k, g)]!;
      return v === 0 ? 0 : v;
    },
  };
}

// ---------------------------------------------------------------------------------------------
// first / last by event time; ties go to the earlier (first) or later (last) arrival.
// Fields: value, t, seq, row. Empty while t is ±Infinity (event times are finite). Rows come
// in ascending order within a batch, so a strict compare keeps the first arrival among equal
// times for first(), and >= keeps the last one for last().

function firstLast(last: boolean): AggregateKernel {
  const cmp = last ? '>=' : '<';
  const later = last ? '>' : '<';
  return {
    inits: [0, last ? -Infinity : Infinity, 0, 0],
    sketch: null,
    counted: false,
    fused: { input: 'f64', code: `{ const t = ET[r]; if (t ${cmp} S[b + 1]) { S[b + 1] = t; S[b] = x; S[b + 2] = seq; S[b + 3] = r; } }` },
    addRows: null,
    // order key (t, seq, row): take src when it is earlier (first) / later (last)
    mergeCode: `{ const t = s[sb + 1];
        if (t !== Infinity && t !== -Infinity) {
          const c = d[db + 1];
          const take = t !== c ? t ${later} c : s[sb + 2] !== d[db + 2] ? s[sb + 2] ${later} d[db + 2] : s[sb + 3] ${later} d[db + 3];
          if (take) { d[db] = s[sb]; d[db + 1] = t; d[db + 2] = s[sb + 2]; d[db + 3] = s[sb + 3]; } } }`,
    mergeRows: null,
    final(st, k, g) {
      const b = base(st, k, g);
      const t = st.data[b + 1]!;
      return t === Infinity || t === -Infinity ? null : st.data[b]!;
    },
  };
}

// ---------------------------------------------------------------------------------------------
// var / stddev (sample, as DuckDB's var_samp / stddev_samp). Fields: Σx (hi, lo),
// Σx² (hi, lo) (+ the shared count n) with x² split exactly into p + e (Dekker), so Σx² − (Σx)²/n keeps ~106 bits and
// large means do not cancel the variance away. Each TwoSum is renormalised (FastTwoSum) so lo
// stays below one ulp of hi: an ever-growing lo would round away the bits the cancellation
// needs.

const VAR_ADD = `{
        let a = S[b]; let s = a + x; let bb = s - a; let lo = S[b + 1] + (a - (s - bb) + (x - bb));
        let t = s + lo; S[b + 1] = lo - (t - s); S[b] = t;
        const p = x * x; const c = 134217729 * x; const xh = c - (c - x); const xl = x - xh;
        const e = xh * xh - p + 2 * xh * xl + xl * xl;
        a = S[b + 2]; s = a + p; bb = s - a; lo = S[b + 3] + (a - (s - bb) + (p - bb) + e);
        t = s + lo; S[b + 3] = lo - (t - s); S[b + 2] = t; }`;

const VAR_MERGE = `if (s[sc] !== 0) { ${ddMergeCode('db', 'sb')} ${ddMergeCode('db + 2', 'sb + 2')} }`;

/**
 * Sample variance from the double-double sums, or null for fewer than 2 values. Every step
 * stays in double-double and rounds once at the end, so the result depends only on the
 * merged sums, not on how they were split into hi and lo by the merge order.
 */
function variance(st: AggState, k: number, g: number): number | null {
  const b = base(st, k, g);
  const d = st.data;
  const n = countOf(st, k, g);
  if (n < 2) return null;
  const sh = d[b]!, sl = d[b + 1]!, qh = d[b + 2]!, ql = d[b + 3]!;
  if (!Number.isFinite(sh) || !Number.isFinite(qh)) return NaN;
  ddSquare(sh, sl);
  ddDiv(dd.hi, dd.lo, n);
  ddAdd(qh, ql, -dd.hi, -dd.lo);
  ddDiv(dd.hi, dd.lo, n - 1);
  const v = dd.hi;
  return v < 0 ? 0 : v;
}

function varKernel(stddev: boolean): AggregateKernel {
  return {
    inits: [0, 0, 0, 0],
    sketch: null,
    counted: true,
    fused: { input: 'f64', code: VAR_ADD },
    addRows: null,
    mergeCode: VAR_MERGE,
    mergeRows: null,
    final(st, k, g) {
      const v = variance(st, k, g);
      return v === null || !stddev ? v : Math.sqrt(v);
    },
  };
}

// ---------------------------------------------------------------------------------------------
// approx_count_distinct: HyperLogLog per group, fed two independent 32-bit hashes per value.
// These hashes are part of checkpoints: changing them changes the counts of restored state.

const SEED_A = 0x3c6ef372 | 0;
const SEED_B = 0x5be0cd19 | 0;

let dictHashA = new Int32Array(0);
let dictHashB = new Int32Array(0);

function hllOf(st: AggState, k: number, g: number): HyperLogLog {
  const arr = st.hll[k]!;
  let h = arr[g];
  if (h === undefined) {
    h = HyperLogLog.create();
    arr[g] = h;
  }
  return h;
}

function addDistinct(st: AggState, k: number, gids: Int32Array, rows: Int32Array, n: number, arg: Column | null): void {
  if (arg === null) throw new Error('approx_count_distinct needs an argument');
  const valid = arg.valid;
  switch (arg.type) {
    case 'string': {
      // hash every dictionary entry once; rows only look their code up
      const dict = arg.dict;
      if (dictHashA.length < dict.length) {
        dictHashA = new Int32Array(dict.length * 2);
        dictHashB = new Int32Array(dict.length * 2);
      }
      for (let c = 0; c < dict.length; c++) {
        dictHashA[c] = hashString(dict[c]!, SEED_A);
        dictHashB[c] = hashString(dict[c]!, SEED_B);
      }
      const codes = arg.codes;
      for (let i = 0; i < n; i++) {
        const r = rows[i]!;
        if (valid !== null && valid[r] === 0) continue;
        const c = codes[r]!;
        hllOf(st, k, gids[i]!).add(dictHashA[c]!, dictHashB[c]!);
      }
      return;
    }
    case 'int64': {
      const w = arg.words;
      for (let i = 0; i < n; i++) {
        const r = rows[i]!;
        if (valid !== null && valid[r] === 0) continue;
        const lo = w[2 * r]!, hi = w[2 * r + 1]!;
        hllOf(st, k, gids[i]!).add(fmix32(hashCombine(hashCombine(SEED_A, lo), hi)), fmix32(hashCombine(hashCombine(SEED_B, hi), lo)));
      }
      return;
    }
    case 'float64':
    case 'timestamp': {
      const v = arg.values;
      for (let i = 0; i < n; i++) {
        const r = rows[i]!;
        if (valid !== null && valid[r] === 0) continue;
        const lo = doubleLo(v[r]!);
        const hi = doubleHi;
        hllOf(st, k, gids[i]!).add(fmix32(hashCombine(hashCombine(SEED_A, lo), hi)), fmix32(hashCombine(hashCombine(SEED_B, hi), lo)));
      }
      return;
    }
    case 'int32':
    case 'bool': {
      const v = arg.values;
      for (let i = 0; i < n; i++) {
        const r = rows[i]!;
        if (valid !== null && valid[r] === 0) continue;
        const x = v[r]!;
        hllOf(st, k, gids[i]!).add(fmix32(hashCombine(SEED_A, x)), fmix32(hashCombine(SEED_B, x)));
      }
      return;
    }
  }
}

const approxDistinct: AggregateKernel = {
  inits: [],
  sketch: 'hll',
  counted: false,
  fused: null,
  addRows: addDistinct,
  mergeCode: null,
  mergeRows(dst, k, dstGids, src, srcRows, n) {
    const s = src.hll[k]!;
    for (let i = 0; i < n; i++) {
      const h = s[srcRows[i]!];
      if (h !== undefined) hllOf(dst, k, dstGids[i]!).merge(h);
    }
  },
  final(st, k, g) {
    const h = st.hll[k]![g];
    return h === undefined ? 0 : h.estimate();
  },
};

// ---------------------------------------------------------------------------------------------
// approx_quantile(col, q): a deterministic log-bucket sketch per group (quantile-sketch.ts).

function qsOf(st: AggState, k: number, g: number): QuantileSketch {
  const arr = st.qs[k]!;
  let s = arr[g];
  if (s === undefined) {
    s = QuantileSketch.create();
    arr[g] = s;
  }
  return s;
}

function approxQuantile(q: number): AggregateKernel {
  return {
    inits: [],
    sketch: 'qs',
    counted: false,
    fused: null,
    addRows(st, k, gids, rows, n, arg) {
      const x = doublesOf(arg, 0);
      const valid = arg === null ? null : arg.valid;
      for (let i = 0; i < n; i++) {
        const r = rows[i]!;
        if (valid !== null && valid[r] === 0) continue;
        qsOf(st, k, gids[i]!).add(x[r]!);
      }
    },
    mergeCode: null,
    mergeRows(dst, k, dstGids, src, srcRows, n) {
      const s = src.qs[k]!;
      for (let i = 0; i < n; i++) {
        const sk = s[srcRows[i]!];
        if (sk !== undefined) qsOf(dst, k, dstGids[i]!).merge(sk);
      }
    },
    final(st, k, g) {
      const s = st.qs[k]![g];
      return s === undefined ? null : s.quantile(q);
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Argument access for loops that read doubles.

const widenScratch: Float64Array[] = [];

/**
 * The argument as doubles indexed by row: a view for float64 / timestamp, else widened once
 * per batch into scratch slot `slot` (one slot per argument of a loop, so two widened
 * arguments never share memory).
 */
export function doublesOf(arg: Column | null, slot: number): Float64Array {
  if (arg === null) throw new Error('aggregate needs an argument');
  if (arg.type === 'float64' || arg.type === 'timestamp') return arg.values;
  if (arg.type === 'string') throw new Error('string argument is not numeric');
  const n = arg.type === 'int64' ? arg.words.length >> 1 : arg.values.length;
  let out = widenScratch[slot];
  if (out === undefined || out.length < n) {
    out = new Float64Array(Math.max(n, 1024));
    widenScratch[slot] = out;
  }
  if (arg.type === 'int64') {
    const w = arg.words;
    for (let r = 0; r < n; r++) out[r] = w[2 * r + 1]! * 4294967296 + (w[2 * r]! >>> 0);
  } else {
    const v = arg.values;
    for (let r = 0; r < n; r++) out[r] = v[r]!;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// The table.

function simple(
  name: string,
  output: OutputType,
  types: readonly ColumnType[],
  bind: (t: ColumnType) => AggregateKernel,
): AggregateDef {
  return {
    name,
    arity: 1,
    param: null,
    output,
    accepts: (t) => types.includes(t),
    bind: (t) => {
      if (t === null || !types.includes(t)) throw new Error(`${name} does not accept ${t}`);
      return bind(t);
    },
  };
}

export const AGGREGATES: ReadonlyMap<string, AggregateDef> = new Map<string, AggregateDef>([
  ['count', {
    name: 'count',
    arity: 0,
    param: null,
    output: 'BIGINT',
    accepts: () => true,
    // count(col) is count() whose shared count skips the argument's nulls
    bind: () => countKernel,
  }],
  ['sum', simple('sum', 'DOUBLE', NUMERIC, (t) => (t === 'int64' ? sumInt('i64', false) : t === 'int32' ? sumInt('i32', false) : sumF64(false)))],
  ['avg', simple('avg', 'DOUBLE', NUMERIC, (t) => (t === 'int64' ? sumInt('i64', true) : t === 'int32' ? sumInt('i32', true) : sumF64(true)))],
  ['min', simple('min', 'DOUBLE', ORDERED, () => extremum(false))],
  ['max', simple('max', 'DOUBLE', ORDERED, () => extremum(true))],
  ['first', simple('first', 'DOUBLE', ORDERED, () => firstLast(false))],
  ['last', simple('last', 'DOUBLE', ORDERED, () => firstLast(true))],
  ['var', simple('var', 'DOUBLE', NUMERIC, () => varKernel(false))],
  ['stddev', simple('stddev', 'DOUBLE', NUMERIC, () => varKernel(true))],
  ['approx_count_distinct', simple('approx_count_distinct', 'BIGINT', ['bool', 'int32', 'int64', 'float64', 'string', 'timestamp'], () => approxDistinct)],
  ['approx_quantile', {
    name: 'approx_quantile',
    arity: 1,
    param: { name: 'q', check: (v) => (v >= 0 && v <= 1 ? null : 'q must be between 0 and 1') },
    output: 'DOUBLE',
    accepts: (t) => NUMERIC.includes(t),
    bind: (t, q) => {
      if (t === null || !NUMERIC.includes(t)) throw new Error(`approx_quantile does not accept ${t}`);
      if (q === null) throw new Error('approx_quantile needs q');
      return approxQuantile(q);
    },
  }],
]);
