/**
 * Columnar storage of partial aggregates for many groups: one Float64Array per state field
 * (`f[field][group]`), plus per-group sketch objects for the two sketch aggregates. A group's
 * state is a column slice, so `add` is a tight loop over group ids and `merge` folds one state
 * array into another group by group.
 */

import type { HyperLogLog } from './hyperloglog.js';
import type { QuantileSketch } from './quantile-sketch.js';

export class AggState {
  /** numeric fields, each `capacity` long */
  f: Float64Array[];
  /** approx_count_distinct: one sketch per group (created on first value) */
  hll: (HyperLogLog | undefined)[] | null;
  /** approx_quantile: one sketch per group (created on first value) */
  qs: (QuantileSketch | undefined)[] | null;
  capacity: number;
  /** initial value of each field for a new group */
  readonly inits: readonly number[];

  constructor(inits: readonly number[], sketch: 'hll' | 'qs' | null, capacity: number) {
    this.inits = inits;
    this.capacity = capacity;
    this.f = inits.map((v) => new Float64Array(capacity).fill(v));
    this.hll = sketch === 'hll' ? [] : null;
    this.qs = sketch === 'qs' ? [] : null;
  }

  /** Make room for groups [0, capacity); new groups start at the initial values. */
  ensure(capacity: number): void {
    if (capacity <= this.capacity) return;
    let cap = Math.max(1, this.capacity) * 2;
    while (cap < capacity) cap *= 2;
    for (let j = 0; j < this.f.length; j++) {
      const next = new Float64Array(cap);
      next.set(this.f[j]!);
      if (this.inits[j] !== 0) next.fill(this.inits[j]!, this.capacity);
      this.f[j] = next;
    }
    this.capacity = cap;
  }

  /** Reset groups [0, used) to the initial values (per-batch states are reused). */
  reset(used: number): void {
    for (let j = 0; j < this.f.length; j++) this.f[j]!.fill(this.inits[j]!, 0, used);
    if (this.hll !== null) this.hll.length = 0;
    if (this.qs !== null) this.qs.length = 0;
  }

  /** Copy groups [0, n) into a fresh, exactly sized state (a partial result). */
  slice(n: number): AggState {
    const out = new AggState(this.inits, this.hll !== null ? 'hll' : this.qs !== null ? 'qs' : null, Math.max(n, 1));
    for (let j = 0; j < this.f.length; j++) out.f[j]!.set(this.f[j]!.subarray(0, n));
    if (this.hll !== null) out.hll = this.hll.slice(0, n);
    if (this.qs !== null) out.qs = this.qs.slice(0, n);
    return out;
  }
}
