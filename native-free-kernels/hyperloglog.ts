/**
 * HyperLogLog distinct counter behind `approx_count_distinct(col)`.
 *
 * Determinism (DESIGN.md A3) is the first requirement: a window's result must not depend on
 * how its events were split into batches or in which order worker partials were merged. The
 * state of a sketch is therefore a pure function of the SET of hash pairs ever added to it or
 * to anything merged into it:
 *
 *   - sparse: the exact set of distinct (h1, h2) pairs, while it has at most `sparseLimit(p)`
 *     members (a linear-probing hash set, a few dozen bytes for a handful of values);
 *   - dense: 2^p byte registers, register j = max rank over the pairs whose index is j.
 *
 * A sketch is dense exactly when the union of its pairs exceeds the limit; set union and
 * register-wise max are commutative, associative and idempotent, so any split of the input
 * and any merge tree end in the same state. `serialize()` writes that state canonically
 * (sparse pairs sorted), so equal states give equal bytes, and `estimate()` reads only the
 * state: exact count while sparse, Ertl's improved raw estimator when dense.
 *
 * Hashing: the caller passes two 32-bit words per value. The register index is the top p bits
 * of h1 and the rank is clz32(h2) + 1 (1..33), i.e. q = 32 rank bits that are independent of
 * the index bits, so registers saturate only near 2^46 distinct values. h1 and h2 must be two
 * independent hashes of the value (hash.ts's helpers with HLL_SEED_H1 and HLL_SEED_H2);
 * deriving h2 from h1 alone would leave 32 bits of entropy and collisions would bias large
 * counts low.
 */
import { sluiceError } from '../engine/errors.js';
import { HASH_SEED } from './hash.js';

/**
 * Seeds for the two hash words (e.g. h1 = hashInt64(lo, hi, HLL_SEED_H1), h2 = hashInt64(lo,
 * hi, HLL_SEED_H2)). Every producer of pairs for sketches that may be merged must hash the same
 * way, in every worker and across restarts (checkpoints hold the pairs and registers).
 */
export const HLL_SEED_H1 = HASH_SEED;
export const HLL_SEED_H2 = 0x5bd1e995 | 0;

export const HLL_DEFAULT_PRECISION = 14;
export const HLL_MIN_PRECISION = 4;
export const HLL_MAX_PRECISION = 18;

/** Rank bits taken from h2; register values run 0..Q+1. */
const Q = 32;
const FORMAT_V1 = 1;
const KIND_SPARSE = 0;
const KIND_DENSE = 1;
const SPARSE_HEADER = 7; // format, p, kind, u32 count
const DENSE_HEADER = 3; // format, p, kind
const INITIAL_SPARSE_CAPACITY = 8;
/** Rough size of the object itself and its hidden class fields, for byteSize(). */
const OBJECT_OVERHEAD = 64;
/** 1 / (2 ln 2): the asymptotic HyperLogLog constant alpha_inf. */
const ALPHA_INF = 0.5 / Math.LN2;

/**
 * Largest number of distinct pairs kept sparse for precision p. The sparse table stores 8
 * bytes per slot at load factor <= 3/4; capping it at m/8 slots keeps a sparse sketch no
 * larger than the dense registers it would turn into.
 */
export function hllSparseLimit(p: number): number {
  const maxCapacity = Math.max(4, (1 << p) >>> 3);
  return (maxCapacity * 3) >>> 2;
}

/** Scratch for the register histogram; kernels run on one thread per isolate. */
const histogram = new Float64Array(Q + 2);

const littleEndian = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;
/** Word of a 64-bit lane that holds the high 32 bits, for sorting pairs as BigUint64. */
const HI_WORD = littleEndian ? 1 : 0;
const LO_WORD = littleEndian ? 0 : 1;

export class HyperLogLog {
  readonly p: number;
  /** Dense registers, or null while sparse. */
  private registers: Uint8Array | null = null;
  /** Sparse set: interleaved (h1, h2) slots; (0, 0) marks an empty slot. Null until first add. */
  private slots: Int32Array | null = null;
  /** Whether the pair (0, 0), which cannot live in a slot, is a member. */
  private hasZeroPair = false;
  /** Distinct pairs in the sparse set (including the zero pair). */
  private sparseCount = 0;
  private readonly limit: number;

  private constructor(p: number) {
    this.p = p;
    this.limit = hllSparseLimit(p);
  }

  static create(p: number = HLL_DEFAULT_PRECISION): HyperLogLog {
    if (!Number.isInteger(p) || p < HLL_MIN_PRECISION || p > HLL_MAX_PRECISION) {
      throw sluiceError('INTERNAL', `HyperLogLog precision must be an integer in [${HLL_MIN_PRECISION}, ${HLL_MAX_PRECISION}], got ${p}`);
    }
    return new HyperLogLog(p);
  }

  isSparse(): boolean {
    return this.registers === null;
  }

  add(h1: number, h2: number): void {
    const regs = this.registers;
    if (regs !== null) {
      const idx = h1 >>> (32 - this.p);
      const r = Math.clz32(h2) + 1;
      if (regs[idx]! < r) regs[idx] = r;
    } else {
      this.sparseInsert(h1 | 0, h2 | 0);
    }
  }

  /**
   * Adds n hash pairs: rows sel[0..n) when sel is given, else rows 0..n-1. Nulls must already
   * be excluded by the caller's selection (a null is not a distinct value).
   */
  addMany(h1: Int32Array, h2: Int32Array, sel: Int32Array | null, n: number): void {
    let i = 0;
    // Sparse phase: insert one by one until done or the set turns dense.
    while (i < n && this.registers === null) {
      const row = sel === null ? i : sel[i]!;
      this.sparseInsert(h1[row]!, h2[row]!);
      i++;
    }
    const regs = this.registers;
    if (regs === null || i >= n) return;
    const shift = 32 - this.p;
    if (sel === null) {
      for (; i < n; i++) {
        const idx = h1[i]! >>> shift;
        const r = Math.clz32(h2[i]!) + 1;
        if (regs[idx]! < r) regs[idx] = r;
      }
    } else {
      for (; i < n; i++) {
        const row = sel[i]!;
        const idx = h1[row]! >>> shift;
        const r = Math.clz32(h2[row]!) + 1;
        if (regs[idx]! < r) regs[idx] = r;
      }
    }
  }

  /** Folds other into this (other is unchanged). Both must have the same precision. */
  merge(other: HyperLogLog): void {
    if (other === this) return; // union with itself is itself
    if (other.p !== this.p) {
      throw sluiceError('INTERNAL', `cannot merge HyperLogLog sketches of precision ${this.p} and ${other.p}`);
    }
    const theirs = other.registers;
    if (theirs !== null) {
      let mine = this.registers;
      if (mine === null) {
        mine = theirs.slice();
        this.applySparseTo(mine);
        this.becomeDense(mine);
        return;
      }
      for (let j = 0; j < mine.length; j++) if (mine[j]! < theirs[j]!) mine[j] = theirs[j]!;
      return;
    }
    // other is sparse: add its pairs one by one (this may turn dense on the way).
    if (other.hasZeroPair) this.add(0, 0);
    const s = other.slots;
    if (s === null) return;
    for (let k = 0; k < s.length; k += 2) {
      const a = s[k]!;
      const b = s[k + 1]!;
      if ((a | b) !== 0) this.add(a, b);
    }
  }

  /** An independent copy (for window state that seeds several outputs from one partial). */
  clone(): HyperLogLog {
    const c = new HyperLogLog(this.p);
    c.registers = this.registers !== null ? this.registers.slice() : null;
    c.slots = this.slots !== null ? this.slots.slice() : null;
    c.hasZeroPair = this.hasZeroPair;
    c.sparseCount = this.sparseCount;
    return c;
  }

  /**
   * Estimated number of distinct values, rounded to an integer. Exact (up to 64-bit hash
   * collisions) while sparse; otherwise Ertl's improved raw estimator (arXiv:1702.01284,
   * section 4), which is unbiased over the whole range without empirical bias tables and has
   * relative standard error ~1.04/sqrt(2^p).
   */
  estimate(): number {
    const regs = this.registers;
    if (regs === null) return this.sparseCount;
    const c = histogram;
    c.fill(0);
    for (let j = 0; j < regs.length; j++) c[regs[j]!]!++;
    const m = regs.length;
    let z = m * tau(1 - c[Q + 1]! / m);
    for (let k = Q; k >= 1; k--) z = 0.5 * (z + c[k]!);
    z += m * sigma(c[0]! / m);
    return Math.round((ALPHA_INF * m * m) / z);
  }

  /** Approximate heap bytes held by this sketch (typed arrays plus a fixed object overhead). */
  byteSize(): number {
    return OBJECT_OVERHEAD + (this.registers !== null ? this.registers.byteLength : 0) +
      (this.slots !== null ? this.slots.byteLength : 0);
  }

  /**
   * Canonical bytes of the state: equal states give equal bytes.
   *   byte 0: format (1); byte 1: p; byte 2: kind (0 sparse, 1 dense)
   *   sparse: u32 LE count, then count pairs (u32 LE h1, u32 LE h2) ascending by (h1, h2) unsigned
   *   dense:  2^p register bytes
   */
  serialize(): Uint8Array {
    const regs = this.registers;
    if (regs !== null) {
      const out = new Uint8Array(DENSE_HEADER + regs.length);
      out[0] = FORMAT_V1;
      out[1] = this.p;
      out[2] = KIND_DENSE;
      out.set(regs, DENSE_HEADER);
      return out;
    }
    const n = this.sparseCount;
    const out = new Uint8Array(SPARSE_HEADER + 8 * n);
    const view = new DataView(out.buffer);
    out[0] = FORMAT_V1;
    out[1] = this.p;
    out[2] = KIND_SPARSE;
    view.setUint32(3, n, true);
    if (n === 0) return out;
    // Sort pairs as unsigned 64-bit keys (h1 high, h2 low) without a per-element BigInt.
    const keys = new BigUint64Array(n);
    const words = new Uint32Array(keys.buffer);
    let w = 0;
    if (this.hasZeroPair) w++; // (0, 0) is already zero in the fresh array
    const s = this.slots;
    if (s !== null) {
      for (let k = 0; k < s.length; k += 2) {
        const a = s[k]!;
        const b = s[k + 1]!;
        if ((a | b) === 0) continue;
        words[2 * w + HI_WORD] = a;
        words[2 * w + LO_WORD] = b;
        w++;
      }
    }
    keys.sort();
    let off = SPARSE_HEADER;
    for (let k = 0; k < n; k++) {
      view.setUint32(off, words[2 * k + HI_WORD]!, true);
      view.setUint32(off + 4, words[2 * k + LO_WORD]!, true);
      off += 8;
    }
    return out;
  }

  /** Rebuilds a sketch from serialize() output; rejects anything that is not a canonical state. */
  static deserialize(bytes: Uint8Array): HyperLogLog {
    if (bytes.length < DENSE_HEADER) throw corrupt(`${bytes.length} bytes is shorter than the header`);
    if (bytes[0] !== FORMAT_V1) throw corrupt(`unknown format byte ${bytes[0]}`);
    const p = bytes[1]!;
    if (p < HLL_MIN_PRECISION || p > HLL_MAX_PRECISION) throw corrupt(`precision ${p} out of range`);
    const sketch = new HyperLogLog(p);
    const kind = bytes[2]!;
    if (kind === KIND_DENSE) {
      const m = 1 << p;
      if (bytes.length !== DENSE_HEADER + m) throw corrupt(`dense sketch of precision ${p} needs ${DENSE_HEADER + m} bytes, got ${bytes.length}`);
      const regs = bytes.slice(DENSE_HEADER);
      for (let j = 0; j < m; j++) if (regs[j]! > Q + 1) throw corrupt(`register ${j} holds ${regs[j]}, above ${Q + 1}`);
      sketch.registers = regs;
      return sketch;
    }
    if (kind !== KIND_SPARSE) throw corrupt(`unknown kind byte ${kind}`);
    if (bytes.length < SPARSE_HEADER) throw corrupt('sparse header truncated');
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const n = view.getUint32(3, true);
    if (n > sketch.limit) throw corrupt(`sparse sketch with ${n} pairs exceeds the limit ${sketch.limit} of precision ${p}`);
    if (bytes.length !== SPARSE_HEADER + 8 * n) throw corrupt(`sparse sketch of ${n} pairs needs ${SPARSE_HEADER + 8 * n} bytes, got ${bytes.length}`);
    let prevA = -1;
    let prevB = -1;
    let off = SPARSE_HEADER;
    for (let k = 0; k < n; k++) {
      const a = view.getUint32(off, true);
      const b = view.getUint32(off + 4, true);
      if (a < prevA || (a === prevA && b <= prevB)) throw corrupt(`sparse pairs not strictly ascending at pair ${k}`);
      prevA = a;
      prevB = b;
      sketch.sparseInsert(a | 0, b | 0);
      off += 8;
    }
    return sketch;
  }

  private sparseInsert(a: number, b: number): void {
    if ((a | b) === 0) {
      if (this.hasZeroPair) return;
      this.hasZeroPair = true;
      this.sparseCount++;
    } else {
      let s = this.slots;
      if (s === null) s = this.slots = new Int32Array(2 * INITIAL_SPARSE_CAPACITY);
      const mask = (s.length >>> 1) - 1;
      let slot = slotOf(a, b) & mask;
      for (;;) {
        const k = slot << 1;
        const x = s[k]!;
        const y = s[k + 1]!;
        if ((x | y) === 0) {
          s[k] = a;
          s[k + 1] = b;
          this.sparseCount++;
          break;
        }
        if (x === a && y === b) return;
        slot = (slot + 1) & mask;
      }
    }
    if (this.sparseCount > this.limit) {
      const regs = new Uint8Array(1 << this.p);
      this.applySparseTo(regs);
      this.becomeDense(regs);
    } else if (this.slots !== null && this.sparseCount * 4 > (this.slots.length >>> 1) * 3) {
      this.growSparse();
    }
  }

  private growSparse(): void {
    const old = this.slots!;
    const s = new Int32Array(old.length * 2);
    const mask = (s.length >>> 1) - 1;
    for (let k = 0; k < old.length; k += 2) {
      const a = old[k]!;
      const b = old[k + 1]!;
      if ((a | b) === 0) continue;
      let slot = slotOf(a, b) & mask;
      while ((s[slot << 1]! | s[(slot << 1) + 1]!) !== 0) slot = (slot + 1) & mask;
      s[slot << 1] = a;
      s[(slot << 1) + 1] = b;
    }
    this.slots = s;
  }

  private applySparseTo(regs: Uint8Array): void {
    const shift = 32 - this.p;
    if (this.hasZeroPair && regs[0]! < Q + 1) regs[0] = Q + 1;
    const s = this.slots;
    if (s === null) return;
    for (let k = 0; k < s.length; k += 2) {
      const a = s[k]!;
      const b = s[k + 1]!;
      if ((a | b) === 0) continue;
      const idx = a >>> shift;
      const r = Math.clz32(b) + 1;
      if (regs[idx]! < r) regs[idx] = r;
    }
  }

  private becomeDense(regs: Uint8Array): void {
    this.registers = regs;
    this.slots = null;
    this.hasZeroPair = false;
    this.sparseCount = 0;
  }
}

/** Slot hash: h1's low bits are not the register index bits, and h2 breaks ties in h1. */
function slotOf(a: number, b: number): number {
  return a ^ Math.imul(b, 0x9e3779b1) ^ (b >>> 16);
}

/** Ertl's sigma(x) = x + sum_{k>=1} x^(2^k) 2^(k-1), for the share of empty registers. */
function sigma(x: number): number {
  if (x === 1) return Infinity;
  let y = 1;
  let z = x;
  let prev: number;
  do {
    x *= x;
    prev = z;
    z += x * y;
    y += y;
  } while (z !== prev);
  return z;
}

/** Ertl's tau(x), for the share of saturated registers (value Q + 1). */
function tau(x: number): number {
  if (x === 0 || x === 1) return 0;
  let y = 1;
  let z = 1 - x;
  let prev: number;
  do {
    x = Math.sqrt(x);
    prev = z;
    y *= 0.5;
    const d = 1 - x;
    z -= d * d * y;
  } while (z !== prev);
  return z / 3;
}

function corrupt(detail: string): Error {
  return sluiceError('INTERNAL', `corrupt HyperLogLog state: ${detail}`);
}
