/**
 * Open window state of one pipeline in one stream partition: partial aggregates from any
 * number of batches and workers merge here, and closed windows come out as columnar results.
 *
 * Tumbling and hopping windows: one bucket per window start, each a hash table over the group
 * keys plus aggregate states; closing a window finalises and drops its whole bucket.
 * Session windows: per key, a list of sessions ordered by start; a partial session that
 * overlaps existing ones absorbs them (union of intervals, merge of states), so the outcome
 * does not depend on the order partials arrive in.
 */

import type { Column } from './schema.js';
import type { PipelinePlan } from './plan.js';
import { GroupTable, keyInputOf, keyKindOf, type KeyInput, type KeySpec } from '../native-free-kernels/hash-group-by.js';
import { AggState } from '../native-free-kernels/aggregate-state.js';
import type { Partial } from '../native-free-kernels/partial.js';
import { mergeStates, type AggregateKernel } from '../native-free-kernels/aggregates.js';
import { gatherColumn } from '../native-free-kernels/gather.js';

/** Closed windows, columnar: one entry per (window, group). */
export interface WindowResult {
  readonly rows: number;
  readonly windowStart: Float64Array;
  readonly windowEnd: Float64Array;
  /** groupBy columns */
  readonly keys: readonly Column[];
  /** one per aggregate: the final values; valid[i] = 0 is SQL NULL */
  readonly values: readonly { readonly values: Float64Array; readonly valid: Uint8Array }[];
}

interface Bucket {
  readonly start: number;
  readonly end: number;
  readonly table: GroupTable;
  readonly state: AggState;
}

export class WindowState {
  readonly plan: PipelinePlan;
  private readonly keySpecs: KeySpec[];
  private readonly buckets = new Map<number, Bucket>();
  private readonly sessions: SessionStore | null;
  private scratchGids = new Int32Array(1024);

  constructor(plan: PipelinePlan) {
    this.plan = plan;
    this.keySpecs = plan.keys.map((k) => ({ kind: keyKindOf(k.type), perPosition: false }));
    this.sessions = plan.window.kind === 'session' ? new SessionStore(plan, this.keySpecs) : null;
  }

  /** Number of open (window, group) entries. */
  get openGroups(): number {
    if (this.sessions !== null) return this.sessions.open;
    let n = 0;
    for (const b of this.buckets.values()) n += b.table.size;
    return n;
  }

  get openWindows(): number {
    return this.sessions !== null ? this.sessions.open : this.buckets.size;
  }

  merge(p: Partial): void {
    if (p.groups === 0) return;
    if (this.sessions !== null) {
      this.sessions.merge(p);
      return;
    }
    // Split the partial's entries by window: counting sort over the distinct starts.
    const G = p.groups;
    const starts: number[] = [];
    const bucketOf = new Int32Array(G);
    const index = new Map<number, number>();
    for (let g = 0; g < G; g++) {
      const s = p.windowStart[g]!;
      let b = index.get(s);
      if (b === undefined) {
        b = starts.length;
        starts.push(s);
        index.set(s, b);
      }
      bucketOf[g] = b;
    }
    const offsets = new Int32Array(starts.length + 1);
    for (let g = 0; g < G; g++) offsets[bucketOf[g]! + 1]!++;
    for (let b = 0; b < starts.length; b++) offsets[b + 1]! += offsets[b]!;
    const order = new Int32Array(G);
    const fill = offsets.slice(0, starts.length);
    for (let g = 0; g < G; g++) order[fill[bucketOf[g]!]!++] = g;

    for (let b = 0; b < starts.length; b++) {
      const start = starts[b]!;
      let bucket = this.buckets.get(start);
      if (bucket === undefined) {
        bucket = {
          start,
          end: p.windowEnd[order[offsets[b]!]!]!,
          table: new GroupTable(this.keySpecs, 256),
          state: new AggState(this.plan.layout, 256),
        };
        this.buckets.set(start, bucket);
      }
      const sel = order.subarray(offsets[b]!, offsets[b + 1]!);
      mergeInto(bucket.table, bucket.state, this.plan, p, sel, this.gidsFor(sel.length));
    }
  }

  /** Finalise and forget every window whose end + lateness ≤ watermark. */
  closeUpTo(watermark: number): WindowResult | null {
    const lateness = this.plan.lateness;
    if (this.sessions !== null) return this.sessions.closeUpTo(watermark - lateness);
    const closing: Bucket[] = [];
    for (const b of this.buckets.values()) if (b.end + lateness <= watermark) closing.push(b);
    if (closing.length === 0) return null;
    closing.sort((a, b) => a.start - b.start);
    for (const b of closing) this.buckets.delete(b.start);
    return this.finalise(closing);
  }

  /** End of input: finalise every open window. */
  closeAll(): WindowResult | null {
    return this.closeUpTo(Infinity);
  }

  private finalise(closing: Bucket[]): WindowResult {
    let rows = 0;
    for (const b of closing) rows += b.table.size;
    const windowStart = new Float64Array(rows);
    const windowEnd = new Float64Array(rows);
    const parts: Column[][] = this.plan.keys.map(() => []);
    const values = this.plan.aggregates.map(() => ({ values: new Float64Array(rows), valid: new Uint8Array(rows) }));
    let o = 0;
    for (const b of closing) {
      const n = b.table.size;
      windowStart.fill(b.start, o, o + n);
      windowEnd.fill(b.end, o, o + n);
      this.plan.keys.forEach((k, j) => parts[j]!.push(b.table.keyColumn(j, k.type)));
      this.plan.aggregates.forEach((a, k) => finaliseInto(a.kernel, k, b.state, n, values[k]!, o));
      o += n;
    }
    return { rows, windowStart, windowEnd, keys: parts.map(concatColumns), values };
  }

  private gidsFor(n: number): Int32Array {
    if (this.scratchGids.length < n) this.scratchGids = new Int32Array(Math.max(n, this.scratchGids.length * 2));
    return this.scratchGids;
  }
}

/** Merge partial entries `sel` into (table, state): look their keys up, then fold states. */
function mergeInto(table: GroupTable, state: AggState, plan: PipelinePlan, p: Partial, sel: Int32Array, gids: Int32Array): void {
  const inputs: KeyInput[] = p.keys.map((c) => keyInputOf(table, c, new Int32Array(c.type === 'string' ? c.dict.length : 0)));
  table.insert(inputs, sel, sel.length, gids);
  state.ensure(table.size);
  mergeStates(plan.kernels, state, gids, p.state, sel, sel.length);
}

function finaliseInto(
  kernel: AggregateKernel,
  k: number,
  st: AggState,
  n: number,
  out: { values: Float64Array; valid: Uint8Array },
  offset: number,
): void {
  for (let g = 0; g < n; g++) {
    const v = kernel.final(st, k, g);
    if (v !== null) {
      out.values[offset + g] = v;
      out.valid[offset + g] = 1;
    }
  }
}

/** Concatenate columns of one type (string dictionaries are merged). */
export function concatColumns(cols: readonly Column[]): Column {
  if (cols.length === 1) return cols[0]!;
  const type = cols[0]?.type ?? 'int32';
  let n = 0;
  for (const c of cols) n += columnLength(c);
  const anyNull = cols.some((c) => c.valid !== null);
  const valid = anyNull ? new Uint8Array(n).fill(1) : null;
  let o = 0;
  if (valid !== null) {
    for (const c of cols) {
      if (c.valid !== null) valid.set(c.valid, o);
      o += columnLength(c);
    }
    o = 0;
  }
  switch (type) {
    case 'string': {
      const dict: string[] = [];
      const ids = new Map<string, number>();
      const codes = new Int32Array(n);
      for (const c of cols) {
        if (c.type !== 'string') throw new Error('concat of mixed types');
        const map = c.dict.map((s) => {
          let id = ids.get(s);
          if (id === undefined) { id = dict.length; dict.push(s); ids.set(s, id); }
          return id;
        });
        for (let i = 0; i < c.codes.length; i++) codes[o + i] = map[c.codes[i]!]!;
        o += c.codes.length;
      }
      return { type: 'string', codes, dict, valid };
    }
    case 'int64': {
      const words = new Int32Array(2 * n);
      for (const c of cols) {
        if (c.type !== 'int64') throw new Error('concat of mixed types');
        words.set(c.words, 2 * o);
        o += c.words.length >> 1;
      }
      return { type: 'int64', words, valid };
    }
    case 'int32': {
      const values = new Int32Array(n);
      for (const c of cols) {
        if (c.type !== 'int32') throw new Error('concat of mixed types');
        values.set(c.values, o);
        o += c.values.length;
      }
      return { type: 'int32', values, valid };
    }
    case 'bool': {
      const values = new Uint8Array(n);
      for (const c of cols) {
        if (c.type !== 'bool') throw new Error('concat of mixed types');
        values.set(c.values, o);
        o += c.values.length;
      }
      return { type: 'bool', values, valid };
    }
    case 'float64':
    case 'timestamp': {
      const values = new Float64Array(n);
      for (const c of cols) {
        if (c.type !== 'float64' && c.type !== 'timestamp') throw new Error('concat of mixed types');
        values.set(c.values, o);
        o += c.values.length;
      }
      return type === 'float64' ? { type, values, valid } : { type, values, valid };
    }
  }
}

export function columnLength(c: Column): number {
  switch (c.type) {
    case 'int64': return c.words.length >> 1;
    case 'string': return c.codes.length;
    default: return c.values.length;
  }
}

// ---------------------------------------------------------------------------------------------
// Sessions

class SessionStore {
  private readonly plan: PipelinePlan;
  /** keys → key id */
  private readonly table: GroupTable;
  /** per key id: session slots ordered by start */
  private readonly byKey: number[][] = [];
  /** per slot */
  private start = new Float64Array(256);
  private end = new Float64Array(256);
  private keyOf = new Int32Array(256);
  private readonly state: AggState;
  private readonly free: number[] = [];
  private slots = 0;
  open = 0;

  constructor(plan: PipelinePlan, keySpecs: KeySpec[]) {
    this.plan = plan;
    this.table = new GroupTable(keySpecs, 256);
    this.state = new AggState(plan.layout, 256);
  }

  merge(p: Partial): void {
    const G = p.groups;
    const keyIds = new Int32Array(G);
    const inputs: KeyInput[] = p.keys.map((c) => keyInputOf(this.table, c, new Int32Array(c.type === 'string' ? c.dict.length : 0)));
    this.table.insert(inputs, null, G, keyIds);
    const one = new Int32Array(1);
    const src = new Int32Array(1);
    for (let g = 0; g < G; g++) {
      const k = keyIds[g]!;
      const list = (this.byKey[k] ??= []);
      const s = p.windowStart[g]!;
      const e = p.windowEnd[g]!;
      // overlapping sessions: start < e && s < end (half-open intervals; touching ones stay apart)
      let target = -1;
      let lo = s;
      let hi = e;
      for (let i = 0; i < list.length; ) {
        const slot = list[i]!;
        if (this.start[slot]! < e && s < this.end[slot]!) {
          if (target === -1) {
            target = slot;
            i++;
          } else {
            // absorb another overlapping session into the target
            one[0] = target;
            src[0] = slot;
            mergeStates(this.plan.kernels, this.state, one, this.state, src, 1);
            lo = Math.min(lo, this.start[slot]!);
            hi = Math.max(hi, this.end[slot]!);
            this.release(slot);
            list.splice(i, 1);
          }
        } else {
          i++;
        }
      }
      if (target === -1) {
        target = this.allocate(k);
        list.push(target);
        this.start[target] = s;
        this.end[target] = e;
      }
      this.start[target] = Math.min(this.start[target]!, lo);
      this.end[target] = Math.max(this.end[target]!, hi);
      one[0] = target;
      src[0] = g;
      mergeStates(this.plan.kernels, this.state, one, p.state, src, 1);
      list.sort((a, b) => this.start[a]! - this.start[b]!);
    }
  }

  closeUpTo(limit: number): WindowResult | null {
    // Sessions close when end ≤ watermark − lateness. O(open sessions) per call.
    const closing: number[] = [];
    for (const list of this.byKey) {
      if (list === undefined) continue;
      for (const slot of list) if (this.end[slot]! <= limit) closing.push(slot);
    }
    if (closing.length === 0) return null;
    closing.sort((a, b) => this.start[a]! - this.start[b]! || this.keyOf[a]! - this.keyOf[b]!);
    const n = closing.length;
    const idx = Int32Array.from(closing);
    const keyIdx = new Int32Array(n);
    const windowStart = new Float64Array(n);
    const windowEnd = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      const slot = idx[i]!;
      keyIdx[i] = this.keyOf[slot]!;
      windowStart[i] = this.start[slot]!;
      windowEnd[i] = this.end[slot]!;
    }
    const keys = this.plan.keys.map((k, j) => gatherColumn(this.table.keyColumn(j, k.type), keyIdx));
    const values = this.plan.aggregates.map((a, k) => {
      const out = { values: new Float64Array(n), valid: new Uint8Array(n) };
      for (let i = 0; i < n; i++) {
        const v = a.kernel.final(this.state, k, idx[i]!);
        if (v !== null) {
          out.values[i] = v;
          out.valid[i] = 1;
        }
      }
      return out;
    });
    for (const slot of closing) {
      const list = this.byKey[this.keyOf[slot]!]!;
      list.splice(list.indexOf(slot), 1);
      this.release(slot);
    }
    return { rows: n, windowStart, windowEnd, keys, values };
  }

  private allocate(key: number): number {
    let slot = this.free.pop();
    if (slot === undefined) {
      slot = this.slots++;
      if (slot >= this.start.length) {
        const cap = this.start.length * 2;
        const grow = <T extends Float64Array | Int32Array>(a: T, make: (n: number) => T): T => {
          const b = make(cap);
          b.set(a);
          return b;
        };
        this.start = grow(this.start, (n) => new Float64Array(n));
        this.end = grow(this.end, (n) => new Float64Array(n));
        this.keyOf = grow(this.keyOf, (n) => new Int32Array(n));
      }
      this.state.ensure(this.slots);
    }
    this.keyOf[slot] = key;
    this.open++;
    return slot;
  }

  /** Return a slot to the free list with its state reset to the initial values. */
  private release(slot: number): void {
    this.state.resetGroup(slot);
    this.free.push(slot);
    this.open--;
  }
}
