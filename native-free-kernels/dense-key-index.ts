/**
 * A direct-indexed front for a long-lived GroupTable whose key is one integer column.
 *
 * The state thread merges every partial into its window's group table. A window lives for many
 * partials, so nearly every key a partial brings is already in the table. When the keys span a
 * dense range (auction ids, bidder ids, small enums stored as integers), this index keeps
 * `map[key − base] = group id + 1` beside the table and answers those keys with one load from
 * a small array instead of a hash and a probe into the table's slots. Keys it does not know yet
 * (map entry 0) go to the table's own insert, which assigns or finds their group, and the index
 * records the answer.
 *
 * The index is a cache of the table: an entry, once set, is the group the table holds for
 * that key, and groups are never removed from a window's table. A partial the index cannot
 * take (a null key, a value outside int32, a range too sparse for the bound below) returns
 * false and the caller uses the table alone; the index stays valid either way, since it never
 * claims a key it has not seen the table answer.
 *
 * Bound: the map covers at most max(MIN_SPAN, SPAN_PER_GROUP × groups) keys, so it costs at
 * most 16 bytes per group beyond a 256 KiB floor; sparser keys stay on the hash table.
 *
 * Measured: partials of 16 K bids (10 K auction ids, ~7.2 K groups each) merged into one window,
 * medians of 3: 29.5 → 21.2 ns per group (the table's insert was ~13 of the 29.5, the fused
 * merge loop another ~13); `bench kernels --quick`, partials merged: 60.2 → 72.6 M rows/s.
 */

import type { GroupTable, KeyInput } from './hash-group-by.js';

/** the map always may span this many keys (256 KiB of Int32) */
const MIN_SPAN = 1 << 16;
/** beyond MIN_SPAN, this many map entries per group of the table */
const SPAN_PER_GROUP = 4;

export class DenseKeyIndex {
  private readonly wide: boolean;
  private base = 0;
  /** group id + 1 of key base + i; 0: not seen */
  private map = new Int32Array(0);
  private missRows = new Int32Array(256);
  private missPos = new Int32Array(256);
  private missGids = new Int32Array(256);

  /** `wide`: the key column is int64 (word pairs); else int32 values. */
  constructor(wide: boolean) {
    this.wide = wide;
  }

  /** Bytes held (for memory figures). */
  byteSize(): number {
    return this.map.byteLength + this.missRows.byteLength + this.missPos.byteLength + this.missGids.byteLength;
  }

  /**
   * The group of each row `sel[i]` (i < n) of `input` in `table`, inserting new keys into the
   * table, written to out[i]. Returns false, having changed nothing, when the index cannot take
   * these keys; the caller then inserts them into the table itself.
   */
  insert(table: GroupTable, input: KeyInput, sel: Int32Array, n: number, out: Int32Array): boolean {
    if (n === 0) return true;
    if (input.valid !== null) return false;
    const v = input.values as Int32Array;
    const wide = this.wide;
    // the keys' range; int64 keys must fit in int32 (high word = sign of the low word)
    let lo = 2147483647;
    let hi = -2147483648;
    for (let i = 0; i < n; i++) {
      const r = sel[i]!;
      let x: number;
      if (wide) {
        x = v[2 * r]!;
        if (v[2 * r + 1] !== x >> 31) return false;
      } else {
        x = v[r]!;
      }
      if (x < lo) lo = x;
      if (x > hi) hi = x;
    }
    if (!this.cover(lo, hi, table.size + n)) return false;

    const map = this.map;
    const base = this.base;
    if (this.missRows.length < n) {
      const len = Math.max(n, 2 * this.missRows.length);
      this.missRows = new Int32Array(len);
      this.missPos = new Int32Array(len);
      this.missGids = new Int32Array(len);
    }
    const missRows = this.missRows;
    const missPos = this.missPos;
    let m = 0;
    if (wide) {
      for (let i = 0; i < n; i++) {
        const r = sel[i]!;
        const g = map[v[2 * r]! - base]!;
        if (g !== 0) out[i] = g - 1;
        else {
          missRows[m] = r;
          missPos[m++] = i;
        }
      }
    } else {
      for (let i = 0; i < n; i++) {
        const r = sel[i]!;
        const g = map[v[r]! - base]!;
        if (g !== 0) out[i] = g - 1;
        else {
          missRows[m] = r;
          missPos[m++] = i;
        }
      }
    }
    if (m === 0) return true;
    const gids = this.missGids;
    table.insert([input], missRows, m, gids);
    for (let k = 0; k < m; k++) {
      const g = gids[k]!;
      const r = missRows[k]!;
      out[missPos[k]!] = g;
      map[(wide ? v[2 * r]! : v[r]!) - base] = g + 1;
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
