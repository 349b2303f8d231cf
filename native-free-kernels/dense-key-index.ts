/**
 * A direct-indexed front for a long-lived GroupTable whose key is one integer column.
 *
 * The state thread merges every partial into its window's group table. When the keys span a
 * dense range (auction ids, bidder ids, small enums stored as integers), this index keeps
 * `map[key − base] = group id + 1` beside the table:
 * - a key the map holds (a window lives for many partials, so most keys of a partial are
 *   already in it) costs one load from a small array instead of a hash and a probe;
 * - while every group of the table went through the map (`known === table.size`), a key the
 *   map lacks is new: it gets the next id and is appended to the table without a lookup
 *   (GroupTable.appendNew, which leaves the table's slots to be rebuilt if the table is ever
 *   probed again). Windows that mostly see new keys — Nexmark's auctions, each bid on within
 *   seconds of its creation — skip the probe into a slot table that outgrew the caches;
 * - otherwise (a null key, groups the table got without the index) the misses go to the
 *   table's own insert, which finds or adds them, and the map records the answers.
 * Ids are always the table's, in the order the table alone would give them.
 *
 * A partial the index cannot take (a value outside int32, a range too sparse for the bound
 * below) returns false and the caller uses the table alone; the map stays right either way, as
 * it never holds a key the table has not answered for, and groups never leave a window's table.
 *
 * Bound: the map spans at most max(MIN_SPAN, SPAN_PER_GROUP × (groups + partial entries)) keys:
 * up to 8 Int32 entries (32 bytes) per group when partials repeat the window's keys, plus a
 * 256 KiB floor per open window; sparser keys stay on the hash table.
 *
 * Measured: partials of 16 K bids (10 K auction ids, ~7.2 K groups each) merged into one window,
 * medians of 3: 29.5 → 21.2 ns per group (the table's insert was ~13 of the 29.5, the fused
 * merge loop another ~13); `bench kernels --quick`, partials merged: 60.2 → 72.6 M rows/s.
 */

import type { GroupTable, KeyInput } from './hash-group-by.js';

/** the map always may span this many keys (256 KiB of Int32) */
const MIN_SPAN = 1 << 16;
/** beyond MIN_SPAN, this many map entries per group of the table and partial */
const SPAN_PER_GROUP = 4;

/** scratch of insert, shared by every index of the thread (insert runs to completion) */
let missRows = new Int32Array(1024);
let missPos = new Int32Array(1024);
let missGids = new Int32Array(1024);

export class DenseKeyIndex {
  /** words per key in the column: 2 for int64 (the low word holds the value), 1 for int32 */
  private readonly step: 1 | 2;
  private base = 0;
  /** group id + 1 of key base + i; 0: not seen */
  private map = new Int32Array(0);
  /** keys the map holds; equal to the table's size while every group went through the map */
  private known = 0;

  /** `wide`: the key column is int64 (word pairs); else int32 values. */
  constructor(wide: boolean) {
    this.step = wide ? 2 : 1;
  }

  /** Bytes held by the map (for memory figures). */
  byteSize(): number {
    return this.map.byteLength;
  }

  /**
   * The group of each row `sel[i]` (i < n) of `input` in `table`, inserting new keys into the
   * table, written to out[i]. Returns false, having changed nothing, when the index cannot take
   * these keys; the caller then inserts them into the table itself.
   */
  insert(table: GroupTable, input: KeyInput, sel: Int32Array, n: number, out: Int32Array): boolean {
    if (n === 0) return true;
    const v = input.values as Int32Array;
    const valid = input.valid;
    const step = this.step;
    // the non-null keys' range; int64 keys must fit in int32 (high word = sign of the low word)
    let lo = 2147483647;
    let hi = -2147483648;
    let nulls = 0;
    for (let i = 0; i < n; i++) {
      const r = sel[i]!;
      if (valid !== null && valid[r] === 0) {
        nulls++;
        continue;
      }
      const x = v[step * r]!;
      if (step === 2 && v[2 * r + 1] !== x >> 31) return false;
      if (x < lo) lo = x;
      if (x > hi) hi = x;
    }
    if (nulls < n && !this.cover(lo, hi, table.size + n)) return false;

    if (missRows.length < n) {
      const len = Math.max(n, 2 * missRows.length);
      missRows = new Int32Array(len);
      missPos = new Int32Array(len);
      missGids = new Int32Array(len);
    }
    const map = this.map;
    const base = this.base;
    const rows = missRows;
    const pos = missPos;
    let m = 0;
    for (let i = 0; i < n; i++) {
      const r = sel[i]!;
      const g = valid !== null && valid[r] === 0 ? 0 : map[v[step * r]! - base]!;
      if (g !== 0) out[i] = g - 1;
      else {
        rows[m] = r;
        pos[m++] = i;
      }
    }
    if (m === 0) return true;

    if (nulls === 0 && this.known === table.size) {
      // every group of the table is in the map: a miss is a new key. Number them here (a key
      // twice among the misses gets one group) and append them without a hash lookup.
      const first = table.size;
      let fresh = 0;
      for (let k = 0; k < m; k++) {
        const r = rows[k]!;
        const at = v[step * r]! - base;
        let g = map[at]!;
        if (g === 0) {
          g = first + fresh + 1;
          map[at] = g;
          rows[fresh++] = r;
        }
        out[pos[k]!] = g - 1;
      }
      // none of these rows is null (nulls === 0), whatever validity array the column carries
      table.appendNew([{ values: input.values, valid: null, map: null }], rows, fresh, missGids);
      this.known += fresh;
      return true;
    }
    // groups the map has not seen may be in the table (inserted without the index): ask it
    const gids = missGids;
    table.insert([input], rows, m, gids);
    for (let k = 0; k < m; k++) {
      const g = gids[k]!;
      const r = rows[k]!;
      out[pos[k]!] = g;
      if (valid !== null && valid[r] === 0) continue;
      const at = v[step * r]! - base;
      if (map[at] === 0) {
        map[at] = g + 1;
        this.known++;
      }
    }
    return true;
  }

  /** Make the map cover lo..hi, unless that would pass the bound for `groups` groups. */
  private cover(lo: number, hi: number, groups: number): boolean {
    const old = this.map;
    const oldHi = this.base + old.length - 1;
    if (old.length > 0 && lo >= this.base && hi <= oldHi) return true;
    const from = old.length > 0 ? Math.min(lo, this.base) : lo;
    const to = old.length > 0 ? Math.max(hi, oldHi) : hi;
    const limit = Math.max(MIN_SPAN, SPAN_PER_GROUP * groups);
    const span = to - from + 1;
    if (span > limit) return false;
    // room to grow on the side that moved (ids that keep rising re-base once per doubling)
    const slack = old.length > 0 ? Math.min(Math.floor((limit - span) / 2), span) : 0;
    const newFrom = old.length > 0 && lo < this.base ? Math.max(from - slack, -2147483648) : from;
    const newTo = old.length > 0 && hi > oldHi ? Math.min(to + slack, 2147483647) : to;
    const map = new Int32Array(newTo - newFrom + 1);
    if (old.length > 0) map.set(old, this.base - newFrom);
    this.map = map;
    this.base = newFrom;
    return true;
  }
}
