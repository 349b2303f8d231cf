/**
 * Deterministic, exactly mergeable quantile sketch behind `approx_quantile(col, q)`.
 *
 * Randomised sketches (KLL with random compaction, t-digest's merge-order-dependent
 * centroids) give different answers for different batch splits and merge trees, which
 * DESIGN.md A3 forbids. This sketch is a DDSketch-style log-bucket histogram instead: every
 * value maps to an integer bucket by a fixed rule and counts add, so the state is a function
 * of the multiset of values only.
 *
 * State, as a function of the multiset S of non-NaN values added (directly or via merge):
 *   - |S| <= QUANTILE_EXACT_LIMIT: the values themselves (exact mode; answers are exact).
 *     Most (window, group) sketches hold a handful of values, so this is also the cheap form.
 *   - otherwise: exact counts of 0, -Infinity and +Infinity, exact min and max, and two
 *     bucket stores (v > 0 and |v| for v < 0) with bucket i holding the values in
 *     (gamma^(i-1), gamma^i], gamma = (1 + alpha) / (1 - alpha), i = ceil(log_gamma |v|).
 *
 * Rank rule: quantile(q) targets the value of 0-based rank quantileDiscIndex(n, q) in sorted
 * order, which is what DuckDB's `quantile_disc(x, q)` returns (checked with @duckdb/node-api
 * 1.5 for n = 1..300 and 21 values of q, given as DOUBLE and as DECIMAL literal; the test
 * re-checks n = 1..40). It equals ceil(q * n) - 1 clamped to [0, n - 1] (the "inverted CDF",
 * Hyndman-Fan type 1), NOT floor(q * (n - 1)): for n = 2, q = 0.7 it picks the larger value.
 *
 * Guarantee. Let v be the exact value of that rank and x the answer:
 *   - exact mode: x === v;
 *   - bucket mode: x === v when v is 0 or +-Infinity, or the rank is 0 or n - 1 (min and
 *     max are kept exactly);
 *     otherwise |x - v| <= alpha * |v| (up to ~1e-15 relative floating-point rounding in the
 *     log/exp), for normal doubles (|v| >= 2^-1022), provided v's bucket was not collapsed
 *     (below). This is a RELATIVE VALUE error bound, not a rank error bound: DDSketch's
 *     guarantee, chosen because it is deterministic.
 *
 * Bounded memory and collapsing. Each store keeps at most maxBuckets (default 4096) buckets,
 * which covers values within a factor gamma^4096 ~ 3.7e35 of the largest magnitude of that
 * sign. Beyond that, the buckets of the smallest magnitudes fold into the lowest kept bucket
 * (DDSketch's "collapsing lowest"). Order independence survives collapsing because the fold
 * point is a function of the state only: every bucket below hi - maxBuckets + 1, where hi is
 * the highest bucket index ever seen for that sign, is folded into that bucket. Folding is
 * monotone and idempotent (folding at f then at f' >= f equals folding at f'), so any order of
 * adds and merges ends in "all counts below hiGlobal - maxBuckets + 1 folded into it", the same
 * state as adding everything to one sketch. Collapsing only costs accuracy: a rank that lands
 * in the folded bucket gets that bucket's representative, so the alpha bound above holds only
 * for |v| > gamma^(hi - maxBuckets) (values within ~3.7e35 of the sign's largest magnitude).
 * What would break determinism, and is avoided: fold points derived from history, such as the
 * allocated array length or the min seen when the store first filled up.
 *
 * NaN is ignored (SQL aggregates skip it like a null). +-Infinity is counted exactly and
 * returned exactly when the rank lands on it; -0 is treated as 0.
 */
import { sluiceError } from '../engine/errors.js';

export const QUANTILE_DEFAULT_ALPHA = 0.01;
export const QUANTILE_DEFAULT_MAX_BUCKETS = 4096;
/** Up to this many values the sketch stores them exactly; one more switches to buckets. */
export const QUANTILE_EXACT_LIMIT = 128;
const MIN_BUCKETS = 2;
const MAX_BUCKETS = 1 << 20;

const FORMAT_V1 = 1;
const KIND_EXACT = 0;
const KIND_BUCKETS = 1;
const INITIAL_EXACT_CAPACITY = 4;
const INITIAL_STORE_LENGTH = 16;
/** Rough size of an object and its fields, for byteSize(). */
const OBJECT_OVERHEAD = 64;

/**
 * 0-based rank that DuckDB's quantile_disc(x, q) returns for n values, with DuckDB's own double
 * arithmetic (Interpolator<true>::Index): max(1, n - floor(n - n*q)) - 1.
 */
export function quantileDiscIndex(n: number, q: number): number {
  return Math.max(1, n - Math.floor(n - n * q)) - 1;
}

/** Parameters shared by every sketch with the same alpha and bucket bound. */
interface Mapping {
  readonly alpha: number;
  readonly maxBuckets: number;
  readonly lnGamma: number;
  readonly invLnGamma: number;
  /** ln(1 - alpha): the representative of bucket i is (1 - alpha) * gamma^i. */
  readonly lnOneMinusAlpha: number;
}

const mappings = new Map<string, Mapping>();

function mappingFor(alpha: number, maxBuckets: number): Mapping {
  if (!(alpha > 0 && alpha < 1)) throw sluiceError('INTERNAL', `quantile sketch alpha must be in (0, 1), got ${alpha}`);
  if (!Number.isInteger(maxBuckets) || maxBuckets < MIN_BUCKETS || maxBuckets > MAX_BUCKETS) {
    throw sluiceError('INTERNAL', `quantile sketch maxBuckets must be an integer in [${MIN_BUCKETS}, ${MAX_BUCKETS}], got ${maxBuckets}`);
  }
  const key = `${alpha}/${maxBuckets}`;
  let m = mappings.get(key);
  if (m === undefined) {
    const lnGamma = Math.log((1 + alpha) / (1 - alpha));
    m = Object.freeze({ alpha, maxBuckets, lnGamma, invLnGamma: 1 / lnGamma, lnOneMinusAlpha: Math.log(1 - alpha) });
    mappings.set(key, m);
  }
  return m;
}

/**
 * Counts per bucket index for one sign, as a dense Float64Array window [offset, offset+length)
 * that holds the non-empty range [lo, hi]. Float64 counts are exact up to 2^53 events.
 */
class BucketStore {
  counts: Float64Array | null = null;
  offset = 0;
  lo = 0;
  hi = -1;

  constructor(private readonly maxBuckets: number) {}

  isEmpty(): boolean {
    return this.counts === null;
  }

  add(idx: number, c: number): void {
    let counts = this.counts;
    if (counts === null) {
      const len = Math.min(this.maxBuckets, INITIAL_STORE_LENGTH);
      counts = this.counts = new Float64Array(len);
      this.offset = idx - (len >>> 1);
      this.lo = this.hi = idx;
      counts[idx - this.offset] = c;
      return;
    }
    if (idx > this.hi) {
      const floor = idx - this.maxBuckets + 1;
      let folded = 0;
      if (this.lo < floor) {
        // Collapse: fold everything below the new floor into the floor bucket.
        const top = Math.min(this.hi, floor - 1);
        for (let i = this.lo; i <= top; i++) {
          folded += counts[i - this.offset]!;
          counts[i - this.offset] = 0;
        }
        this.lo = floor;
        if (this.hi < floor) this.hi = floor;
      }
      counts = this.ensure(this.lo, idx);
      this.hi = idx;
      if (folded !== 0) counts[this.lo - this.offset]! += folded;
    } else if (idx < this.lo) {
      const floor = this.hi - this.maxBuckets + 1;
      if (idx < floor) idx = floor;
      if (idx < this.lo) {
        counts = this.ensure(idx, this.hi);
        this.lo = idx;
      }
    }
    counts[idx - this.offset]! += c;
  }

  /** Makes [newLo, newHi] (at most maxBuckets wide) addressable, keeping current counts. */
  private ensure(newLo: number, newHi: number): Float64Array {
    const old = this.counts!;
    const len = old.length;
    if (newLo >= this.offset && newHi < this.offset + len) return old;
    const need = newHi - newLo + 1;
    const newLen = need > len ? Math.min(this.maxBuckets, Math.max(2 * len, need)) : len;
    // Leave the free room on the side the range is growing towards.
    const newOffset = newHi >= this.offset + len ? newLo : newHi - newLen + 1;
    const next = new Float64Array(newLen);
    const from = Math.max(this.offset, newOffset);
    const to = Math.min(this.offset + len, newOffset + newLen);
    if (to > from) next.set(old.subarray(from - this.offset, to - this.offset), from - newOffset);
    this.counts = next;
    this.offset = newOffset;
    return next;
  }

  mergeFrom(other: BucketStore): void {
    const oc = other.counts;
    if (oc === null) return;
    // Highest first: any collapse happens once, then the range only grows downwards.
    for (let i = other.hi; i >= other.lo; i--) {
      const c = oc[i - other.offset]!;
      if (c !== 0) this.add(i, c);
    }
  }

  byteSize(): number {
    return OBJECT_OVERHEAD + (this.counts !== null ? this.counts.byteLength : 0);
  }
}

export class QuantileSketch {
  private readonly map: Mapping;
  /** Non-NaN values added, including zeros and infinities. */
  private n = 0;
  /** Exact mode: the values (unsorted unless `sorted`), or null before the first value. */
  private values: Float64Array | null = null;
  private sorted = true;
  /** Bucket mode (stores non-null): exact special counts and extremes. */
  private pos: BucketStore | null = null;
  private neg: BucketStore | null = null;
  private zeros = 0;
  private posInf = 0;
  private negInf = 0;
  private min = Infinity;
  private max = -Infinity;

  private constructor(map: Mapping) {
    this.map = map;
  }

  static create(alpha: number = QUANTILE_DEFAULT_ALPHA, maxBuckets: number = QUANTILE_DEFAULT_MAX_BUCKETS): QuantileSketch {
    return new QuantileSketch(mappingFor(alpha, maxBuckets));
  }

  get alpha(): number {
    return this.map.alpha;
  }

  get maxBuckets(): number {
    return this.map.maxBuckets;
  }

  /** Number of non-NaN values added. */
  count(): number {
    return this.n;
  }

  isExact(): boolean {
    return this.pos === null;
  }

  add(v: number): void {
    if (v !== v) return;
    if (v === 0) v = 0; // -0 -> 0, so equal multisets serialize to equal bytes
    if (this.pos === null) {
      if (this.n < QUANTILE_EXACT_LIMIT) {
        this.addExact(v);
        return;
      }
      this.toBuckets();
    }
    this.addBucket(v);
  }

  /**
   * Adds n values: rows sel[0..n) when sel is given, else rows 0..n-1; rows whose valid byte is
   * 0 are nulls and skipped, NaN is skipped.
   */
  addMany(values: Float64Array, valid: Uint8Array | null, sel: Int32Array | null, n: number): void {
    let i = 0;
    // Exact phase: few values, one at a time, until done or switched to buckets.
    while (i < n && this.pos === null) {
      const row = sel === null ? i : sel[i]!;
      if (valid === null || valid[row] !== 0) this.add(values[row]!);
      i++;
    }
    if (i >= n) return;
    if (sel === null) {
      if (valid === null) for (; i < n; i++) this.addBucketChecked(values[i]!);
      else for (; i < n; i++) { if (valid[i] !== 0) this.addBucketChecked(values[i]!); }
    } else {
      if (valid === null) for (; i < n; i++) this.addBucketChecked(values[sel[i]!]!);
      else for (; i < n; i++) { const row = sel[i]!; if (valid[row] !== 0) this.addBucketChecked(values[row]!); }
    }
  }

  /** Folds other into this (other is unchanged). Alpha and maxBuckets must match. */
  merge(other: QuantileSketch): void {
    if (other === this) {
      this.merge(this.clone());
      return;
    }
    if (other.map !== this.map) {
      throw sluiceError('INTERNAL', `cannot merge quantile sketches with alpha/maxBuckets ${this.map.alpha}/${this.map.maxBuckets} and ${other.map.alpha}/${other.map.maxBuckets}`);
    }
    if (other.pos === null) {
      const vs = other.values;
      for (let i = 0; i < other.n; i++) this.add(vs![i]!);
      return;
    }
    if (this.pos === null) this.toBuckets();
    this.n += other.n;
    this.zeros += other.zeros;
    this.posInf += other.posInf;
    this.negInf += other.negInf;
    if (other.min < this.min) this.min = other.min;
    if (other.max > this.max) this.max = other.max;
    this.pos!.mergeFrom(other.pos);
    this.neg!.mergeFrom(other.neg!);
  }

  clone(): QuantileSketch {
    const c = new QuantileSketch(this.map);
    c.merge(this);
    return c;
  }

  /**
   * The value of rank quantileDiscIndex(count(), q) (DuckDB quantile_disc), within the
   * guarantee in the file comment; null when no value was added.
   */
  quantile(q: number): number | null {
    if (!(q >= 0 && q <= 1)) throw sluiceError('INTERNAL', `quantile must be in [0, 1], got ${q}`);
    const n = this.n;
    if (n === 0) return null;
    let k = quantileDiscIndex(n, q);
    if (this.pos === null) {
      const vs = this.values!;
      if (!this.sorted) {
        vs.subarray(0, n).sort();
        this.sorted = true;
      }
      return vs[k]!;
    }
    if (k === 0) return this.min;
    if (k === n - 1) return this.max;
    if (k < this.negInf) return -Infinity;
    k -= this.negInf;
    const neg = this.neg!;
    if (neg.counts !== null) {
      const c = neg.counts;
      for (let i = neg.hi; i >= neg.lo; i--) {
        const cnt = c[i - neg.offset]!;
        if (k < cnt) return this.clamp(-this.representative(i));
        k -= cnt;
      }
    }
    if (k < this.zeros) return 0;
    k -= this.zeros;
    const pos = this.pos;
    if (pos.counts !== null) {
      const c = pos.counts;
      for (let i = pos.lo; i <= pos.hi; i++) {
        const cnt = c[i - pos.offset]!;
        if (k < cnt) return this.clamp(this.representative(i));
        k -= cnt;
      }
    }
    return Infinity;
  }

  /** Approximate heap bytes held by this sketch (typed arrays plus fixed object overheads). */
  byteSize(): number {
    let size = OBJECT_OVERHEAD;
    if (this.values !== null) size += this.values.byteLength;
    if (this.pos !== null) size += this.pos.byteSize() + this.neg!.byteSize();
    return size;
  }

  /**
   * Canonical bytes of the state: equal states give equal bytes.
   *   u8 format (1), u8 kind (0 exact, 1 buckets), f64 alpha, varint maxBuckets, varint n, then
   *   exact:   n x f64 values ascending
   *   buckets: f64 min, f64 max, varint zeros, varint negInf, varint posInf, store(neg), store(pos)
   *   store:   varint span (0 = empty), zigzag-varint lo, span x varint count
   * Integers are unsigned LEB128 varints (counts up to 2^53); f64 are little-endian.
   */
  serialize(): Uint8Array {
    const w = new Writer(this.serializedBound());
    w.u8(FORMAT_V1);
    w.u8(this.pos === null ? KIND_EXACT : KIND_BUCKETS);
    w.f64(this.map.alpha);
    w.varint(this.map.maxBuckets);
    w.varint(this.n);
    if (this.pos === null) {
      if (this.n > 0) {
        const vs = this.values!;
        if (!this.sorted) {
          vs.subarray(0, this.n).sort();
          this.sorted = true;
        }
        for (let i = 0; i < this.n; i++) w.f64(vs[i]!);
      }
      return w.finish();
    }
    w.f64(this.min);
    w.f64(this.max);
    w.varint(this.zeros);
    w.varint(this.negInf);
    w.varint(this.posInf);
    writeStore(w, this.neg!);
    writeStore(w, this.pos);
    return w.finish();
  }

  /** Rebuilds a sketch from serialize() output; rejects anything that is not a canonical state. */
  static deserialize(bytes: Uint8Array): QuantileSketch {
    const r = new Reader(bytes);
    const format = r.u8();
    if (format !== FORMAT_V1) throw corrupt(`unknown format byte ${format}`);
    const kind = r.u8();
    const alpha = r.f64();
    const maxBuckets = r.varint();
    if (!(alpha > 0 && alpha < 1)) throw corrupt(`alpha ${alpha} out of range`);
    if (maxBuckets < MIN_BUCKETS || maxBuckets > MAX_BUCKETS) throw corrupt(`maxBuckets ${maxBuckets} out of range`);
    const s = new QuantileSketch(mappingFor(alpha, maxBuckets));
    const n = r.varint();
    if (kind === KIND_EXACT) {
      if (n > QUANTILE_EXACT_LIMIT) throw corrupt(`exact sketch with ${n} values exceeds ${QUANTILE_EXACT_LIMIT}`);
      let prev = -Infinity;
      for (let i = 0; i < n; i++) {
        const v = r.f64();
        if (v !== v || v < prev || Object.is(v, -0)) throw corrupt(`exact values not ascending, NaN or -0 at value ${i}`);
        prev = v;
        s.addExact(v);
      }
      r.end();
      return s;
    }
    if (kind !== KIND_BUCKETS) throw corrupt(`unknown kind byte ${kind}`);
    if (n <= QUANTILE_EXACT_LIMIT) throw corrupt(`bucket sketch with only ${n} values`);
    s.toBuckets();
    s.n = n;
    s.min = r.f64();
    s.max = r.f64();
    if (!(s.min <= s.max)) throw corrupt(`min ${s.min} > max ${s.max}`);
    s.zeros = r.varint();
    s.negInf = r.varint();
    s.posInf = r.varint();
    const total = s.zeros + s.negInf + s.posInf + readStore(r, s.neg!, maxBuckets) + readStore(r, s.pos!, maxBuckets);
    if (total !== n) throw corrupt(`bucket counts add up to ${total}, header says ${n}`);
    r.end();
    return s;
  }

  private addExact(v: number): void {
    let vs = this.values;
    if (vs === null) {
      vs = this.values = new Float64Array(INITIAL_EXACT_CAPACITY);
    } else if (this.n === vs.length) {
      const grown = new Float64Array(Math.min(QUANTILE_EXACT_LIMIT, vs.length * 2));
      grown.set(vs);
      vs = this.values = grown;
    }
    if (this.n > 0 && v < vs[this.n - 1]!) this.sorted = false;
    vs[this.n++] = v;
  }

  private toBuckets(): void {
    const vs = this.values;
    const count = this.n;
    this.values = null;
    this.sorted = true;
    this.pos = new BucketStore(this.map.maxBuckets);
    this.neg = new BucketStore(this.map.maxBuckets);
    this.n = 0;
    for (let i = 0; i < count; i++) this.addBucket(vs![i]!);
  }

  private addBucketChecked(v: number): void {
    if (v !== v) return;
    this.addBucket(v);
  }

  /** v is not NaN; -0 and 0 both land in `zeros`. */
  private addBucket(v: number): void {
    this.n++;
    if (v < this.min) this.min = v === 0 ? 0 : v;
    if (v > this.max) this.max = v === 0 ? 0 : v;
    if (v > 0) {
      if (v === Infinity) this.posInf++;
      else this.pos!.add(Math.ceil(Math.log(v) * this.map.invLnGamma), 1);
    } else if (v < 0) {
      if (v === -Infinity) this.negInf++;
      else this.neg!.add(Math.ceil(Math.log(-v) * this.map.invLnGamma), 1);
    } else {
      this.zeros++;
    }
  }

  /** (1 - alpha) * gamma^i: within alpha of every value in (gamma^(i-1), gamma^i]. */
  private representative(i: number): number {
    return Math.exp(i * this.map.lnGamma + this.map.lnOneMinusAlpha);
  }

  /** The true value lies in [min, max], so clamping only reduces the error. */
  private clamp(x: number): number {
    return x < this.min ? this.min : x > this.max ? this.max : x;
  }

  private serializedBound(): number {
    let size = 2 + 8 + 10 + 10;
    if (this.pos === null) return size + 8 * this.n;
    size += 16 + 30;
    for (const st of [this.neg!, this.pos]) size += 20 + (st.counts === null ? 0 : 8 * (st.hi - st.lo + 1));
    return size;
  }
}

function writeStore(w: Writer, st: BucketStore): void {
  if (st.counts === null) {
    w.varint(0);
    return;
  }
  w.varint(st.hi - st.lo + 1);
  w.varint(st.lo >= 0 ? 2 * st.lo : -2 * st.lo - 1);
  for (let i = st.lo; i <= st.hi; i++) w.varint(st.counts[i - st.offset]!);
}

/** Reads a store into the empty `st` and returns the sum of its counts. */
function readStore(r: Reader, st: BucketStore, maxBuckets: number): number {
  const span = r.varint();
  if (span === 0) return 0;
  if (span > maxBuckets) throw corrupt(`store spans ${span} buckets, more than maxBuckets ${maxBuckets}`);
  const z = r.varint();
  const lo = z % 2 === 0 ? z / 2 : -(z + 1) / 2;
  let sum = 0;
  for (let k = 0; k < span; k++) {
    const c = r.varint();
    if ((k === 0 || k === span - 1) && c === 0) throw corrupt('store range has an empty end bucket');
    // Ascending within span <= maxBuckets: never collapses.
    sum += c;
    if (c !== 0) st.add(lo + k, c);
  }
  return sum;
}

class Writer {
  private readonly buf: Uint8Array;
  private readonly view: DataView;
  private pos = 0;

  constructor(capacity: number) {
    this.buf = new Uint8Array(capacity);
    this.view = new DataView(this.buf.buffer);
  }

  u8(x: number): void {
    this.buf[this.pos++] = x;
  }

  f64(x: number): void {
    this.view.setFloat64(this.pos, x, true);
    this.pos += 8;
  }

  /** Unsigned LEB128 of a non-negative integer <= 2^53 (arithmetic, not 32-bit shifts). */
  varint(x: number): void {
    while (x >= 128) {
      this.buf[this.pos++] = (x % 128) | 128;
      x = Math.floor(x / 128);
    }
    this.buf[this.pos++] = x;
  }

  finish(): Uint8Array {
    return this.buf.slice(0, this.pos);
  }
}

class Reader {
  private readonly view: DataView;
  private pos = 0;

  constructor(private readonly buf: Uint8Array) {
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }

  private need(k: number): void {
    if (this.pos + k > this.buf.length) throw corrupt(`truncated at byte ${this.pos}`);
  }

  u8(): number {
    this.need(1);
    return this.buf[this.pos++]!;
  }

  f64(): number {
    this.need(8);
    const x = this.view.getFloat64(this.pos, true);
    this.pos += 8;
    return x;
  }

  varint(): number {
    let result = 0;
    let mul = 1;
    for (let i = 0; i < 8; i++) {
      const b = this.u8();
      result += (b & 127) * mul;
      if (b < 128) {
        if (result > Number.MAX_SAFE_INTEGER) break;
        return result;
      }
      mul *= 128;
    }
    throw corrupt(`varint too long or above 2^53 at byte ${this.pos}`);
  }

  end(): void {
    if (this.pos !== this.buf.length) throw corrupt(`${this.buf.length - this.pos} trailing bytes`);
  }
}

function corrupt(detail: string): Error {
  return sluiceError('INTERNAL', `corrupt quantile sketch state: ${detail}`);
}
