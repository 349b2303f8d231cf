/**
 * The aggregates of DESIGN.md A2, as one table of small definitions (STYLE: arquero's
 * aggregate-functions table). Each definition binds, once per plan, to the type of its argument
 * and yields a kernel with
 *
 *   fields / init   the numeric state of one group (Float64 columns in an AggState)
 *   add             fold rows into groups: tight loop over (group id, row id) pairs
 *   merge           fold group srcRows[i] of another state into group dstGids[i] of this one
 *   final           the output value of one group (null = SQL NULL)
 *
 * Determinism (DESIGN.md A3: same rows whatever the batch sizes and worker count) shapes the
 * state: merging must not depend on how rows were split into partials.
 * - count, min, max, first, last and the sketches are order independent by construction
 *   (first / last break event-time ties by arrival: batch sequence, then row).
 * - sum / avg / var of doubles accumulate in double-double (TwoSum; Dekker's TwoProduct for
 *   squares), ~106 bits, so the rounded result is the correctly rounded sum except when the
 *   exact sum lies within ~n·2⁻¹⁰⁶ of a rounding boundary.
 * - sum / avg of int64 and int32 are exact: three word sums (low 16 bits, next 16 bits, the
 *   signed high word) that stay below 2^53, converted to a double once per group at the end.
 * - NaN follows DuckDB's order (NaN is the largest value): max is NaN when any value is,
 *   min only when all are.
 */

import type { Column, ColumnType } from '../engine/schema.js';
import { AggState } from './aggregate-state.js';
import { doubleHi, doubleLo, fmix32, hashCombine, hashString } from './hash.js';
import { dd, ddAdd, ddDiv, ddSquare } from './double-double.js';
import { HyperLogLog } from './hyperloglog.js';
import { QuantileSketch } from './quantile-sketch.js';

export type OutputType = 'BIGINT' | 'DOUBLE';

/** Per-call context of `add`. */
export interface AddContext {
  /** event time (ms) of every row of the batch */
  readonly eventTime: Float64Array;
  /** sequence number of the batch (arrival order), for first/last ties */
  readonly seq: number;
}

export interface AggregateKernel {
  readonly inits: readonly number[];
  readonly sketch: 'hll' | 'qs' | null;
  /** `rows[i]` is the row of position i, `gids[i]` its group; arg null for count() */
  add(st: AggState, gids: Int32Array, rows: Int32Array, n: number, arg: Column | null, ctx: AddContext): void;
  /** fold src group srcRows[i] into dst group dstGids[i], for i < n */
  merge(dst: AggState, dstGids: Int32Array, src: AggState, srcRows: Int32Array, n: number): void;
  final(st: AggState, g: number): number | null;
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

// ---------------------------------------------------------------------------------------------
// Argument access. Numeric kernels read a Float64Array; other column types are widened to
// doubles once per batch (one pass) so every add loop stays monomorphic.

let widenScratch = new Float64Array(0);

/** The argument as doubles indexed by row (a view for float64/timestamp, else a widened copy). */
function doublesOf(arg: Column | null): Float64Array {
  if (arg === null) throw new Error('aggregate needs an argument');
  switch (arg.type) {
    case 'float64':
    case 'timestamp':
      return arg.values;
    default: {
      const n = arg.type === 'int64' ? arg.words.length >> 1 : arg.type === 'string' ? arg.codes.length : arg.values.length;
      if (widenScratch.length < n) widenScratch = new Float64Array(Math.max(n, widenScratch.length * 2));
      const out = widenScratch;
      if (arg.type === 'int64') {
        const w = arg.words;
        for (let r = 0; r < n; r++) out[r] = w[2 * r + 1]! * 4294967296 + (w[2 * r]! >>> 0);
      } else if (arg.type === 'string') {
        throw new Error('string argument is not numeric');
      } else {
        const v = arg.values;
        for (let r = 0; r < n; r++) out[r] = v[r]!;
      }
      return out;
    }
  }
}

function validOf(arg: Column | null): Uint8Array | null {
  return arg === null ? null : arg.valid;
}

// ---------------------------------------------------------------------------------------------
// count() and count(col)

const countStar: AggregateKernel = {
  inits: [0],
  sketch: null,
  add(st, gids, _rows, n) {
    const c = st.f[0]!;
    for (let i = 0; i < n; i++) c[gids[i]!]!++;
  },
  merge(dst, dstGids, src, srcRows, n) {
    const d = dst.f[0]!;
    const s = src.f[0]!;
    for (let i = 0; i < n; i++) d[dstGids[i]!]! += s[srcRows[i]!]!;
  },
  final(st, g) {
    return st.f[0]![g]!;
  },
};

const countCol: AggregateKernel = {
  ...countStar,
  add(st, gids, rows, n, arg) {
    const valid = validOf(arg);
    if (valid === null) return countStar.add(st, gids, rows, n, null, NO_CONTEXT);
    const c = st.f[0]!;
    for (let i = 0; i < n; i++) c[gids[i]!]! += valid[rows[i]!]!;
  },
};

const NO_CONTEXT: AddContext = { eventTime: new Float64Array(0), seq: 0 };

// ---------------------------------------------------------------------------------------------
// sum / avg of doubles: double-double accumulation. Fields: hi, lo, n.

function addSumF64(st: AggState, gids: Int32Array, rows: Int32Array, n: number, arg: Column | null): void {
  const x = doublesOf(arg);
  const valid = validOf(arg);
  const hi = st.f[0]!;
  const lo = st.f[1]!;
  const cnt = st.f[2]!;
  if (valid === null) {
    for (let i = 0; i < n; i++) {
      const g = gids[i]!;
      const v = x[rows[i]!]!;
      // inline TwoSum(hi[g], v): s + err is exactly hi[g] + v
      const a = hi[g]!;
      const s = a + v;
      const bb = s - a;
      lo[g]! += a - (s - bb) + (v - bb);
      hi[g] = s;
      cnt[g]!++;
    }
  } else {
    for (let i = 0; i < n; i++) {
      const r = rows[i]!;
      if (valid[r] === 0) continue;
      const g = gids[i]!;
      const v = x[r]!;
      const a = hi[g]!;
      const s = a + v;
      const bb = s - a;
      lo[g]! += a - (s - bb) + (v - bb);
      hi[g] = s;
      cnt[g]!++;
    }
  }
}

function mergeSumF64(dst: AggState, dstGids: Int32Array, src: AggState, srcRows: Int32Array, n: number): void {
  const dh = dst.f[0]!, dl = dst.f[1]!, dn = dst.f[2]!;
  const sh = src.f[0]!, sl = src.f[1]!, sn = src.f[2]!;
  for (let i = 0; i < n; i++) {
    const j = srcRows[i]!;
    if (sn[j] === 0) continue;
    const g = dstGids[i]!;
    const a = dh[g]!;
    const v = sh[j]!;
    const s = a + v;
    const bb = s - a;
    dl[g]! += a - (s - bb) + (v - bb) + sl[j]!;
    dh[g] = s;
    dn[g]! += sn[j]!;
  }
}

/** hi + lo, except that an infinite or NaN hi is the answer (lo is then meaningless). */
function ddValue(hi: number, lo: number): number {
  return Number.isFinite(hi) ? hi + lo : hi;
}

const sumF64: AggregateKernel = {
  inits: [0, 0, 0],
  sketch: null,
  add: addSumF64,
  merge: mergeSumF64,
  final(st, g) {
    return st.f[2]![g] === 0 ? null : ddValue(st.f[0]![g]!, st.f[1]![g]!);
  },
};

const avgF64: AggregateKernel = {
  ...sumF64,
  final(st, g) {
    const n = st.f[2]![g]!;
    if (n === 0) return null;
    const hi = st.f[0]![g]!;
    if (!Number.isFinite(hi)) return hi / n;
    ddDiv(hi, st.f[1]![g]!, n);
    return dd.hi;
  },
};

// ---------------------------------------------------------------------------------------------
// sum / avg of integers, exact. Fields: s0 (Σ low 16 bits), s1 (Σ next 16 bits),
// s2 (Σ signed high words), n. Each stays an exact double for 2^37 rows per group.

function addSumInt(st: AggState, gids: Int32Array, rows: Int32Array, n: number, arg: Column | null): void {
  const s0 = st.f[0]!, s1 = st.f[1]!, s2 = st.f[2]!, cnt = st.f[3]!;
  if (arg === null) throw new Error('sum needs an argument');
  const valid = arg.valid;
  if (arg.type === 'int64') {
    const w = arg.words;
    for (let i = 0; i < n; i++) {
      const r = rows[i]!;
      if (valid !== null && valid[r] === 0) continue;
      const g = gids[i]!;
      const lo = w[2 * r]!;
      s0[g]! += lo & 0xffff;
      s1[g]! += lo >>> 16;
      s2[g]! += w[2 * r + 1]!;
      cnt[g]!++;
    }
  } else if (arg.type === 'int32') {
    const v = arg.values;
    for (let i = 0; i < n; i++) {
      const r = rows[i]!;
      if (valid !== null && valid[r] === 0) continue;
      const g = gids[i]!;
      const x = v[r]!;
      s0[g]! += x & 0xffff;
      s1[g]! += x >>> 16 & 0xffff;
      s2[g]! += x >> 31; // sign extension: the high word of an int32 is 0 or -1
      cnt[g]!++;
    }
  } else {
    throw new Error(`integer sum over ${arg.type}`);
  }
}

function mergeSumInt(dst: AggState, dstGids: Int32Array, src: AggState, srcRows: Int32Array, n: number): void {
  const d0 = dst.f[0]!, d1 = dst.f[1]!, d2 = dst.f[2]!, dn = dst.f[3]!;
  const c0 = src.f[0]!, c1 = src.f[1]!, c2 = src.f[2]!, cn = src.f[3]!;
  for (let i = 0; i < n; i++) {
    const j = srcRows[i]!;
    if (cn[j] === 0) continue;
    const g = dstGids[i]!;
    // carry so the partial sums never outgrow 2^53 however many partials merge
    let a0 = d0[g]! + c0[j]!;
    let a1 = d1[g]! + c1[j]!;
    const k0 = Math.floor(a0 / 65536);
    a0 -= k0 * 65536;
    a1 += k0;
    const k1 = Math.floor(a1 / 65536);
    a1 -= k1 * 65536;
    d0[g] = a0;
    d1[g] = a1;
    d2[g] = d2[g]! + c2[j]! + k1;
    dn[g]! += cn[j]!;
  }
}

/** The exact integer Σ as a correctly rounded double (BigInt once per group, never per row). */
function intSum(st: AggState, g: number): number {
  const total = (BigInt(st.f[2]![g]!) << 32n) + (BigInt(st.f[1]![g]!) << 16n) + BigInt(st.f[0]![g]!);
  return Number(total);
}

const sumInt: AggregateKernel = {
  inits: [0, 0, 0, 0],
  sketch: null,
  add: addSumInt,
  merge: mergeSumInt,
  final(st, g) {
    return st.f[3]![g] === 0 ? null : intSum(st, g);
  },
};

const avgInt: AggregateKernel = {
  ...sumInt,
  final(st, g) {
    const n = st.f[3]![g]!;
    if (n === 0) return null;
    // exact quotient rounded once: scale the BigInt sum so the division keeps 64 bits
    const total = (BigInt(st.f[2]![g]!) << 32n) + (BigInt(st.f[1]![g]!) << 16n) + BigInt(st.f[0]![g]!);
    const q = total / BigInt(n);
    const r = total - q * BigInt(n);
    return Number(q) + Number(r) / n;
  },
};

// ---------------------------------------------------------------------------------------------
// min / max. Fields: m, n. NaN: max takes it, min only if nothing else (DuckDB's order).

function addMin(st: AggState, gids: Int32Array, rows: Int32Array, n: number, arg: Column | null): void {
  const x = doublesOf(arg);
  const valid = validOf(arg);
  const m = st.f[0]!;
  const cnt = st.f[1]!;
  if (valid === null) {
    for (let i = 0; i < n; i++) {
      const g = gids[i]!;
      const v = x[rows[i]!]!;
      const cur = m[g]!;
      // cur starts as NaN ("nothing yet"): a number replaces NaN, NaN replaces nothing
      if (v < cur || cur !== cur) m[g] = v;
      cnt[g]!++;
    }
  } else {
    for (let i = 0; i < n; i++) {
      const r = rows[i]!;
      if (valid[r] === 0) continue;
      const g = gids[i]!;
      const v = x[r]!;
      const cur = m[g]!;
      if (v < cur || cur !== cur) m[g] = v;
      cnt[g]!++;
    }
  }
}

function addMax(st: AggState, gids: Int32Array, rows: Int32Array, n: number, arg: Column | null): void {
  const x = doublesOf(arg);
  const valid = validOf(arg);
  const m = st.f[0]!;
  const cnt = st.f[1]!;
  if (valid === null) {
    for (let i = 0; i < n; i++) {
      const g = gids[i]!;
      const v = x[rows[i]!]!;
      // starts at -Infinity; NaN is sticky (v > NaN is false, and v !== v only for NaN)
      if (v > m[g]! || v !== v) m[g] = v;
      cnt[g]!++;
    }
  } else {
    for (let i = 0; i < n; i++) {
      const r = rows[i]!;
      if (valid[r] === 0) continue;
      const g = gids[i]!;
      const v = x[r]!;
      if (v > m[g]! || v !== v) m[g] = v;
      cnt[g]!++;
    }
  }
}

const minKernel: AggregateKernel = {
  inits: [NaN, 0],
  sketch: null,
  add: addMin,
  merge(dst, dstGids, src, srcRows, n) {
    const dm = dst.f[0]!, dn = dst.f[1]!, sm = src.f[0]!, sn = src.f[1]!;
    for (let i = 0; i < n; i++) {
      const j = srcRows[i]!;
      if (sn[j] === 0) continue;
      const g = dstGids[i]!;
      const v = sm[j]!;
      const cur = dm[g]!;
      if (v < cur || cur !== cur) dm[g] = v;
      dn[g]! += sn[j]!;
    }
  },
  final(st, g) {
    return st.f[1]![g] === 0 ? null : st.f[0]![g]!;
  },
};

const maxKernel: AggregateKernel = {
  inits: [-Infinity, 0],
  sketch: null,
  add: addMax,
  merge(dst, dstGids, src, srcRows, n) {
    const dm = dst.f[0]!, dn = dst.f[1]!, sm = src.f[0]!, sn = src.f[1]!;
    for (let i = 0; i < n; i++) {
      const j = srcRows[i]!;
      if (sn[j] === 0) continue;
      const g = dstGids[i]!;
      const v = sm[j]!;
      if (v > dm[g]! || v !== v) dm[g] = v;
      dn[g]! += sn[j]!;
    }
  },
  final(st, g) {
    return st.f[1]![g] === 0 ? null : st.f[0]![g]!;
  },
};

// ---------------------------------------------------------------------------------------------
// first / last by event time; ties go to the earlier (first) or later (last) arrival.
// Fields: value, t, seq, row. Empty while t is ±Infinity (event times are finite).

function firstLast(last: boolean): AggregateKernel {
  return {
    inits: [0, last ? -Infinity : Infinity, 0, 0],
    sketch: null,
    add(st, gids, rows, n, arg, ctx) {
      const x = doublesOf(arg);
      const valid = validOf(arg);
      const et = ctx.eventTime;
      const val = st.f[0]!, ft = st.f[1]!, fs = st.f[2]!, fr = st.f[3]!;
      const seq = ctx.seq;
      // Positions come in ascending row order within a batch, so a strict compare keeps the
      // first arrival among equal times for first(), and >= keeps the last one for last().
      for (let i = 0; i < n; i++) {
        const r = rows[i]!;
        if (valid !== null && valid[r] === 0) continue;
        const g = gids[i]!;
        const t = et[r]!;
        if (last ? t >= ft[g]! : t < ft[g]!) {
          ft[g] = t;
          val[g] = x[r]!;
          fs[g] = seq;
          fr[g] = r;
        }
      }
    },
    merge(dst, dstGids, src, srcRows, n) {
      const dv = dst.f[0]!, dt = dst.f[1]!, ds = dst.f[2]!, dr = dst.f[3]!;
      const sv = src.f[0]!, st_ = src.f[1]!, ss = src.f[2]!, sr = src.f[3]!;
      for (let i = 0; i < n; i++) {
        const j = srcRows[i]!;
        const t = st_[j]!;
        if (t === Infinity || t === -Infinity) continue;
        const g = dstGids[i]!;
        const cur = dt[g]!;
        // order key (t, seq, row): take src when it is earlier (first) / later (last)
        let take: boolean;
        if (t !== cur) take = last ? t > cur : t < cur;
        else if (ss[j] !== ds[g]) take = last ? ss[j]! > ds[g]! : ss[j]! < ds[g]!;
        else take = last ? sr[j]! > dr[g]! : sr[j]! < dr[g]!;
        if (take) {
          dv[g] = sv[j]!;
          dt[g] = t;
          ds[g] = ss[j]!;
          dr[g] = sr[j]!;
        }
      }
    },
    final(st, g) {
      const t = st.f[1]![g]!;
      return t === Infinity || t === -Infinity ? null : st.f[0]![g]!;
    },
  };
}

// ---------------------------------------------------------------------------------------------
// var / stddev (sample, as DuckDB's var_samp / stddev_samp). Fields: n, Σx (hi, lo),
// Σx² (hi, lo) with x² split exactly into p + e (Dekker), so the difference Σx² − (Σx)²/n keeps
// ~106 bits and large means do not cancel the variance away.

const SPLIT = 134217729; // 2^27 + 1

function addVar(st: AggState, gids: Int32Array, rows: Int32Array, n: number, arg: Column | null): void {
  const x = doublesOf(arg);
  const valid = validOf(arg);
  const cnt = st.f[0]!, sh = st.f[1]!, sl = st.f[2]!, qh = st.f[3]!, ql = st.f[4]!;
  for (let i = 0; i < n; i++) {
    const r = rows[i]!;
    if (valid !== null && valid[r] === 0) continue;
    const g = gids[i]!;
    const v = x[r]!;
    cnt[g]!++;
    let a = sh[g]!;
    let s = a + v;
    let bb = s - a;
    let lo = sl[g]! + (a - (s - bb) + (v - bb));
    // renormalise (FastTwoSum) so lo stays below one ulp of hi: an ever-growing lo would
    // round away the very bits the cancellation in Σx² − (Σx)²/n needs
    let t = s + lo;
    sl[g] = lo - (t - s);
    sh[g] = t;
    // TwoProduct(v, v) = p + e exactly
    const p = v * v;
    const c = SPLIT * v;
    const vh = c - (c - v);
    const vl = v - vh;
    const e = vh * vh - p + 2 * vh * vl + vl * vl;
    a = qh[g]!;
    s = a + p;
    bb = s - a;
    lo = ql[g]! + (a - (s - bb) + (p - bb) + e);
    t = s + lo;
    ql[g] = lo - (t - s);
    qh[g] = t;
  }
}

function mergeVar(dst: AggState, dstGids: Int32Array, src: AggState, srcRows: Int32Array, n: number): void {
  const dn = dst.f[0]!, dsh = dst.f[1]!, dsl = dst.f[2]!, dqh = dst.f[3]!, dql = dst.f[4]!;
  const cn = src.f[0]!, csh = src.f[1]!, csl = src.f[2]!, cqh = src.f[3]!, cql = src.f[4]!;
  for (let i = 0; i < n; i++) {
    const j = srcRows[i]!;
    if (cn[j] === 0) continue;
    const g = dstGids[i]!;
    dn[g]! += cn[j]!;
    ddAdd(dsh[g]!, dsl[g]!, csh[j]!, csl[j]!);
    dsh[g] = dd.hi;
    dsl[g] = dd.lo;
    ddAdd(dqh[g]!, dql[g]!, cqh[j]!, cql[j]!);
    dqh[g] = dd.hi;
    dql[g] = dd.lo;
  }
}

/**
 * Sample variance from the double-double sums, or null for fewer than 2 values. Every step
 * stays in double-double and rounds once at the end, so the result depends only on the
 * (exactly merged) sums, not on how they were split into hi and lo by the merge order.
 */
function variance(st: AggState, g: number): number | null {
  const n = st.f[0]![g]!;
  if (n < 2) return null;
  const sh = st.f[1]![g]!, sl = st.f[2]![g]!, qh = st.f[3]![g]!, ql = st.f[4]![g]!;
  if (!Number.isFinite(sh) || !Number.isFinite(qh)) return NaN;
  // M2 = Σx² − (Σx)²/n
  ddSquare(sh, sl);
  ddDiv(dd.hi, dd.lo, n);
  ddAdd(qh, ql, -dd.hi, -dd.lo);
  ddDiv(dd.hi, dd.lo, n - 1);
  const v = dd.hi;
  return v < 0 ? 0 : v;
}

const varKernel: AggregateKernel = {
  inits: [0, 0, 0, 0, 0],
  sketch: null,
  add: addVar,
  merge: mergeVar,
  final: variance,
};

const stddevKernel: AggregateKernel = {
  ...varKernel,
  final(st, g) {
    const v = variance(st, g);
    return v === null ? null : Math.sqrt(v);
  },
};

// ---------------------------------------------------------------------------------------------
// approx_count_distinct: HyperLogLog per group, fed two independent 32-bit hashes per value.

const SEED_A = 0x3c6ef372 | 0;
const SEED_B = 0x5be0cd19 | 0;

let dictHashA = new Int32Array(0);
let dictHashB = new Int32Array(0);

function hllOf(st: AggState, g: number): HyperLogLog {
  const arr = st.hll!;
  let h = arr[g];
  if (h === undefined) {
    h = HyperLogLog.create();
    arr[g] = h;
  }
  return h;
}

const approxDistinct: AggregateKernel = {
  inits: [],
  sketch: 'hll',
  add(st, gids, rows, n, arg) {
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
        for (let d = 0; d < dict.length; d++) {
          dictHashA[d] = hashString(dict[d]!, SEED_A);
          dictHashB[d] = hashString(dict[d]!, SEED_B);
        }
        const codes = arg.codes;
        for (let i = 0; i < n; i++) {
          const r = rows[i]!;
          if (valid !== null && valid[r] === 0) continue;
          const c = codes[r]!;
          hllOf(st, gids[i]!).add(dictHashA[c]!, dictHashB[c]!);
        }
        return;
      }
      case 'int64': {
        const w = arg.words;
        for (let i = 0; i < n; i++) {
          const r = rows[i]!;
          if (valid !== null && valid[r] === 0) continue;
          const lo = w[2 * r]!, hi = w[2 * r + 1]!;
          hllOf(st, gids[i]!).add(fmix32(hashCombine(hashCombine(SEED_A, lo), hi)), fmix32(hashCombine(hashCombine(SEED_B, hi), lo)));
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
          hllOf(st, gids[i]!).add(fmix32(hashCombine(hashCombine(SEED_A, lo), hi)), fmix32(hashCombine(hashCombine(SEED_B, hi), lo)));
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
          hllOf(st, gids[i]!).add(fmix32(hashCombine(SEED_A, x)), fmix32(hashCombine(SEED_B, x)));
        }
        return;
      }
    }
  },
  merge(dst, dstGids, src, srcRows, n) {
    const s = src.hll!;
    for (let i = 0; i < n; i++) {
      const h = s[srcRows[i]!];
      if (h !== undefined) hllOf(dst, dstGids[i]!).merge(h);
    }
  },
  final(st, g) {
    const h = st.hll![g];
    return h === undefined ? 0 : Math.round(h.estimate());
  },
};

// ---------------------------------------------------------------------------------------------
// approx_quantile(col, q): a deterministic log-bucket sketch per group (see quantile-sketch.ts).

function qsOf(st: AggState, g: number): QuantileSketch {
  const arr = st.qs!;
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
    add(st, gids, rows, n, arg) {
      const x = doublesOf(arg);
      const valid = validOf(arg);
      for (let i = 0; i < n; i++) {
        const r = rows[i]!;
        if (valid !== null && valid[r] === 0) continue;
        qsOf(st, gids[i]!).add(x[r]!);
      }
    },
    merge(dst, dstGids, src, srcRows, n) {
      const s = src.qs!;
      for (let i = 0; i < n; i++) {
        const sk = s[srcRows[i]!];
        if (sk !== undefined) qsOf(dst, dstGids[i]!).merge(sk);
      }
    },
    final(st, g) {
      const s = st.qs![g];
      return s === undefined ? null : s.quantile(q);
    },
  };
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

const isInt = (t: ColumnType): boolean => t === 'int32' || t === 'int64';

export const AGGREGATES: ReadonlyMap<string, AggregateDef> = new Map<string, AggregateDef>([
  ['count', {
    name: 'count',
    arity: 0,
    param: null,
    output: 'BIGINT',
    accepts: () => true,
    bind: (t) => (t === null ? countStar : countCol),
  }],
  ['sum', simple('sum', 'DOUBLE', NUMERIC, (t) => (isInt(t) ? sumInt : sumF64))],
  ['avg', simple('avg', 'DOUBLE', NUMERIC, (t) => (isInt(t) ? avgInt : avgF64))],
  ['min', simple('min', 'DOUBLE', ORDERED, () => minKernel)],
  ['max', simple('max', 'DOUBLE', ORDERED, () => maxKernel)],
  ['first', simple('first', 'DOUBLE', ORDERED, () => firstLast(false))],
  ['last', simple('last', 'DOUBLE', ORDERED, () => firstLast(true))],
  ['var', simple('var', 'DOUBLE', NUMERIC, () => varKernel)],
  ['stddev', simple('stddev', 'DOUBLE', NUMERIC, () => stddevKernel)],
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

/** A fresh state for a kernel with room for `capacity` groups. */
export function newState(kernel: AggregateKernel, capacity: number): AggState {
  return new AggState(kernel.inits, kernel.sketch, capacity);
}
