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
import { sluiceError } from './errors.js';
import type { PipelinePlan } from './plan.js';
import { GroupTable, keyInputOf, keyKindOf, type KeyInput, type KeySpec } from '../native-free-kernels/hash-group-by.js';
import { AggState } from '../native-free-kernels/aggregate-state.js';
import { deserializePartial, serializePartial, type Partial } from '../native-free-kernels/partial.js';
import { mergeStates, type AggregateKernel } from '../native-free-kernels/aggregates.js';
import { concatColumns } from '../native-free-kernels/concat.js';
import { DenseKeyIndex } from '../native-free-kernels/dense-key-index.js';

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

/**
 * One section of a checkpoint: the serialized state of one open window, or of every open
 * session. A section that did not change since it was last stored is not serialized again; the
 * checkpoint references the stored part instead (incremental checkpoints).
 */
export interface StatePart {
  /** a new part's id when `bytes` is set, else the id of the stored part that holds this state */
  readonly id: number;
  /** the serialized partial, or null when the part is already stored */
  readonly bytes: Uint8Array | null;
}

/** A part read back from a checkpoint: `id` is null for formats that had no parts (SLC1). */
export interface RestoredPart {
  readonly id: number | null;
  readonly bytes: Uint8Array;
}

export interface PartsSnapshot {
  readonly parts: StatePart[];
  /**
   * Call once the new parts are durably stored (the commit holding them succeeded): from then on
   * a section that stays unchanged references its part instead of being written again.
   */
  stored(): void;
}

/** What a checkpoint section remembers about its stored copy. */
interface Stored {
  /** bumped by every change of the section's state */
  version: number;
  /** the part holding the state as of `storedVersion`; 0 when none does */
  storedId: number;
  storedVersion: number;
}

interface Bucket extends Stored {
  readonly start: number;
  readonly end: number;
  readonly table: GroupTable;
  /** the table's direct-indexed front when the key is one integer column */
  readonly index: DenseKeyIndex | null;
  readonly state: AggState;
}

/** above this many distinct window starts in one partial, merge looks them up in a Map */
const MAX_SCANNED_STARTS = 32;

export class WindowState {
  readonly plan: PipelinePlan;
  private readonly keySpecs: KeySpec[];
  /** the key when it is one integer column (each window's table then gets a DenseKeyIndex) */
  private readonly denseKey: 'i32' | 'i64' | null;
  private readonly buckets = new Map<number, Bucket>();
  private readonly sessions: SessionStore | null;
  private scratchGids = new Int32Array(1024);
  /** merge's scratch: the distinct window starts of a partial, each entry's window, the split */
  private readonly starts: number[] = [];
  private scratchBucketOf = new Int32Array(1024);
  private scratchOffsets = new Int32Array(64);
  private scratchOrder = new Int32Array(1024);
  /** 0, 1, 2, ... (the selection of a partial that lies in one window) */
  private identity: Int32Array<ArrayBuffer> = new Int32Array(0);
  /**
   * Every window with end + lateness ≤ this was emitted (tumbling / hopping). A partial entry
   * for such a window means a late event reached the state: the workers route those to
   * `__late`, so it can only be a bug — refuse it loudly instead of emitting a window twice.
   */
  private closedUpTo = -Infinity;
  /**
   * Groups of the window closed last: a new window's table and state start that large instead of
   * doubling up from 256 (with Nexmark's q5, 600 K groups a window, the doublings were a quarter
   * of the state thread's time).
   */
  private sizeHint = 0;

  constructor(plan: PipelinePlan) {
    this.plan = plan;
    this.keySpecs = plan.keys.map((k) => ({ kind: keyKindOf(k.type), perPosition: false }));
    const only = this.keySpecs.length === 1 ? this.keySpecs[0]!.kind : null;
    this.denseKey = only === 'i32' || only === 'i64' ? only : null;
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
    // Split the partial's entries by window: counting sort over the distinct starts. A partial
    // spans a few windows and lists a window's entries mostly together, so the previous entry's
    // start is usually the next one's; a miss scans the few starts seen (a Map keyed by doubles
    // boxed a heap number per lookup: with its garbage, 3.6 of the state thread's 16.0 busy
    // seconds in a profiled run). Scratch arrays are reused across partials.
    const G = p.groups;
    const ws = p.windowStart;
    const starts = this.starts;
    starts.length = 0;
    let index: Map<number, number> | null = null;
    const bucketOf = (this.scratchBucketOf = grown(this.scratchBucketOf, G));
    let last = NaN;
    let lastB = -1;
    for (let g = 0; g < G; g++) {
      const s = ws[g]!;
      if (s !== last) {
        lastB = index !== null ? (index.get(s) ?? -1) : starts.indexOf(s);
        if (lastB < 0) {
          lastB = starts.length;
          starts.push(s);
          if (index !== null) index.set(s, lastB);
          else if (starts.length > MAX_SCANNED_STARTS) index = new Map(starts.map((x, i) => [x, i]));
        }
        last = s;
      }
      bucketOf[g] = lastB;
    }
    const W = starts.length;
    if (W === 1) {
      // the common case (a batch inside one window): every entry in order, no split to build
      const all = (this.identity = identityOf(this.identity, G)).subarray(0, G);
      this.mergeWindow(p, starts[0]!, all);
      return;
    }
    const offsets = (this.scratchOffsets = grown(this.scratchOffsets, 2 * W + 1));
    offsets.fill(0, 0, W + 1);
    for (let g = 0; g < G; g++) offsets[bucketOf[g]! + 1]!++;
    for (let b = 0; b < W; b++) offsets[b + 1]! += offsets[b]!;
    // fill cursors in offsets[W + 1 ..]
    for (let b = 0; b < W; b++) offsets[W + 1 + b] = offsets[b]!;
    const order = (this.scratchOrder = grown(this.scratchOrder, G));
    for (let g = 0; g < G; g++) order[offsets[W + 1 + bucketOf[g]!]!++] = g;

    for (let b = 0; b < W; b++) this.mergeWindow(p, starts[b]!, order.subarray(offsets[b]!, offsets[b + 1]!));
  }

  /** Merge the partial's entries `sel` (at least one), all of window `start`, into its bucket. */
  private mergeWindow(p: Partial, start: number, sel: Int32Array): void {
    let bucket = this.buckets.get(start);
    if (bucket === undefined) {
      const end = p.windowEnd[sel[0]!]!;
      if (end + this.plan.lateness <= this.closedUpTo) {
        throw sluiceError('INTERNAL', `pipeline '${this.plan.name}': a partial holds window [${start}, ${end}), which was already emitted (watermark ${this.closedUpTo}); late events must not reach the window state`);
      }
      // room for the groups, not the slots: with a DenseKeyIndex the slots may never be used
      const table = new GroupTable(this.keySpecs, 256);
      table.reserve(this.sizeHint);
      bucket = {
        start,
        end,
        table,
        index: this.denseKey === null ? null : new DenseKeyIndex(this.denseKey === 'i64'),
        state: new AggState(this.plan.layout, Math.max(256, this.sizeHint)),
        version: 0,
        storedId: 0,
        storedVersion: 0,
      };
      this.buckets.set(start, bucket);
    }
    bucket.version++;
    mergeInto(bucket.table, bucket.index, bucket.state, this.plan, p, sel, (this.scratchGids = grown(this.scratchGids, sel.length)));
  }

  /** Finalise and forget every window whose end + lateness ≤ watermark. */
  closeUpTo(watermark: number): WindowResult | null {
    const lateness = this.plan.lateness;
    if (this.sessions !== null) return this.sessions.closeUpTo(watermark - lateness);
    const closing: Bucket[] = [];
    for (const b of this.buckets.values()) if (b.end + lateness <= watermark) closing.push(b);
    // at +Infinity (flush) the frontier is the last closed window, not infinity: windows after
    // it may still open later
    if (Number.isFinite(watermark)) this.closedUpTo = Math.max(this.closedUpTo, watermark);
    else for (const b of closing) this.closedUpTo = Math.max(this.closedUpTo, b.end + lateness);
    if (closing.length === 0) return null;
    closing.sort((a, b) => a.start - b.start);
    for (const b of closing) this.buckets.delete(b.start);
    this.sizeHint = closing[closing.length - 1]!.table.size;
    return this.finalise(closing);
  }

  /** End of input: finalise every open window. */
  closeAll(): WindowResult | null {
    return this.closeUpTo(Infinity);
  }

  /** The largest window end (or session end) among open windows, −Infinity when none. */
  maxOpenEnd(): number {
    if (this.sessions !== null) return this.sessions.maxEnd();
    let m = -Infinity;
    for (const b of this.buckets.values()) if (b.end > m) m = b.end;
    return m;
  }

  /** The smallest window start among open windows, +Infinity when none. */
  minOpenStart(): number {
    if (this.sessions !== null) return this.sessions.minStart();
    let m = Infinity;
    for (const b of this.buckets.values()) if (b.start < m) m = b.start;
    return m;
  }

  /**
   * The open state as checkpoint parts, one per window (or one for every open session): merging
   * the parts' partials into a fresh WindowState of the same plan restores it exactly. A window
   * unchanged since its part was stored is referenced by id, not serialized again; `newId`
   * numbers the parts that are serialized.
   */
  snapshot(newId: () => number): PartsSnapshot {
    const parts: StatePart[] = [];
    const written: { section: Stored; id: number; version: number }[] = [];
    const add = (section: Stored, serialize: () => Uint8Array): void => {
      if (section.storedId !== 0 && section.storedVersion === section.version) {
        parts.push({ id: section.storedId, bytes: null });
        return;
      }
      const id = newId();
      parts.push({ id, bytes: serialize() });
      written.push({ section, id, version: section.version });
    };
    if (this.sessions !== null) {
      const sessions = this.sessions;
      if (sessions.open > 0) add(sessions, () => serializePartial(sessions.asPartial()!));
    } else {
      for (const b of this.buckets.values()) add(b, () => this.bucketPartial(b));
    }
    return {
      parts,
      stored: () => {
        for (const w of written) {
          w.section.storedId = w.id;
          w.section.storedVersion = w.version;
        }
      },
    };
  }

  /**
   * Merge a checkpoint's parts into a fresh state (restore after a restart). A window restored
   * from exactly one part with an id references that part until it changes.
   */
  restore(parts: readonly RestoredPart[]): void {
    for (const part of parts) {
      const p = deserializePartial(part.bytes);
      this.merge(p);
      if (p.groups === 0) continue;
      const section: Stored = this.sessions ?? this.buckets.get(p.windowStart[0]!)!;
      // into a fresh state, a section built from one part has version 1 and equals that part;
      // one that received a second part equals neither
      section.storedId = section.version === 1 ? (part.id ?? 0) : 0;
      section.storedVersion = section.version;
    }
  }

  private bucketPartial(b: Bucket): Uint8Array {
    const n = b.table.size;
    return serializePartial({
      groups: n,
      windowStart: new Float64Array(n).fill(b.start),
      windowEnd: new Float64Array(n).fill(b.end),
      keys: this.plan.keys.map((k, j) => b.table.keyColumn(j, k.type)),
      state: b.state,
      rowsIn: 0,
      rowsSelected: 0,
      minEventTime: Infinity,
      maxEventTime: -Infinity,
    });
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
}

/** `a` when it holds n, else a larger array (contents not kept). */
function grown(a: Int32Array<ArrayBuffer>, n: number): Int32Array<ArrayBuffer> {
  return a.length >= n ? a : new Int32Array(Math.max(n, 2 * a.length));
}

/** `a` if it already holds 0 .. n − 1, else a longer array that does. */
function identityOf(a: Int32Array<ArrayBuffer>, n: number): Int32Array<ArrayBuffer> {
  if (a.length >= n) return a;
  const out = new Int32Array(Math.max(n, 2 * a.length));
  for (let i = 0; i < out.length; i++) out[i] = i;
  return out;
}

/** Merge partial entries `sel` into (table, state): look their keys up, then fold states. */
function mergeInto(table: GroupTable, index: DenseKeyIndex | null, state: AggState, plan: PipelinePlan, p: Partial, sel: Int32Array, gids: Int32Array): void {
  const inputs: KeyInput[] = p.keys.map((c) => keyInputOf(table, c, new Int32Array(c.type === 'string' ? c.dict.length : 0)));
  if (index === null || !index.insert(table, inputs[0]!, sel, sel.length, gids)) table.insert(inputs, sel, sel.length, gids);
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

// ---------------------------------------------------------------------------------------------
// Sessions

class SessionStore implements Stored {
  private readonly plan: PipelinePlan;
  private readonly keySpecs: KeySpec[];
  /** keys → key id (rebuilt when most of its keys have no open session left) */
  private table: GroupTable;
  /** per key id: session slots ordered by start */
  private byKey: number[][] = [];
  /** keys with at least one open session */
  private liveKeys = 0;
  /** every session with end ≤ this was emitted (see WindowState.closedUpTo) */
  private closedUpTo = -Infinity;
  /** per slot */
  private start = new Float64Array(256);
  private end = new Float64Array(256);
  private keyOf = new Int32Array(256);
  private readonly state: AggState;
  private readonly free: number[] = [];
  private slots = 0;
  open = 0;
  version = 0;
  storedId = 0;
  storedVersion = 0;

  constructor(plan: PipelinePlan, keySpecs: KeySpec[]) {
    this.plan = plan;
    this.keySpecs = keySpecs;
    this.table = new GroupTable(keySpecs, 256);
    this.state = new AggState(plan.layout, 256);
  }

  merge(p: Partial): void {
    this.version++;
    const G = p.groups;
    const keyIds = new Int32Array(G);
    const inputs: KeyInput[] = p.keys.map((c) => keyInputOf(this.table, c, new Int32Array(c.type === 'string' ? c.dict.length : 0)));
    this.table.insert(inputs, null, G, keyIds);
    const one = new Int32Array(1);
    const src = new Int32Array(1);
    for (let g = 0; g < G; g++) {
      const k = keyIds[g]!;
      const list = (this.byKey[k] ??= []);
      if (list.length === 0) this.liveKeys++;
      const s = p.windowStart[g]!;
      const e = p.windowEnd[g]!;
      if (s < this.closedUpTo) {
        // workers send an event to __late when t < watermark − lateness (= this frontier):
        // anything earlier could reach an emitted session
        throw sluiceError('INTERNAL', `pipeline '${this.plan.name}': a partial session starts at ${s}, before the emitted frontier ${this.closedUpTo}; late events must not reach the window state`);
      }
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

  maxEnd(): number {
    let m = -Infinity;
    for (const list of this.byKey) if (list !== undefined) for (const slot of list) if (this.end[slot]! > m) m = this.end[slot]!;
    return m;
  }

  minStart(): number {
    let m = Infinity;
    for (const list of this.byKey) if (list !== undefined) for (const slot of list) if (this.start[slot]! < m) m = this.start[slot]!;
    return m;
  }

  /** Every open session as one partial (for checkpoints), or null when there is none. */
  asPartial(): Partial | null {
    const slots: number[] = [];
    for (const list of this.byKey) if (list !== undefined) slots.push(...list);
    if (slots.length === 0) return null;
    const n = slots.length;
    const idx = Int32Array.from(slots);
    const keyIdx = new Int32Array(n);
    const windowStart = new Float64Array(n);
    const windowEnd = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      keyIdx[i] = this.keyOf[idx[i]!]!;
      windowStart[i] = this.start[idx[i]!]!;
      windowEnd[i] = this.end[idx[i]!]!;
    }
    // the state rows of the open slots, in slot order, as a compact state
    const layout = this.state.layout;
    const state = new AggState(layout, n);
    state.ensure(n);
    const dst = Int32Array.from({ length: n }, (_, i) => i);
    mergeStates(this.plan.kernels, state, dst, this.state, idx, n);
    return {
      groups: n,
      windowStart,
      windowEnd,
      keys: this.plan.keys.map((k, j) => this.table.keyColumn(j, k.type, keyIdx)),
      state,
      rowsIn: 0,
      rowsSelected: 0,
      minEventTime: Infinity,
      maxEventTime: -Infinity,
    };
  }

  closeUpTo(limit: number): WindowResult | null {
    // Sessions close when end ≤ watermark − lateness. O(open sessions) per call.
    const closing: number[] = [];
    for (const list of this.byKey) {
      if (list === undefined) continue;
      for (const slot of list) if (this.end[slot]! <= limit) closing.push(slot);
    }
    if (Number.isFinite(limit)) this.closedUpTo = Math.max(this.closedUpTo, limit);
    else for (const slot of closing) this.closedUpTo = Math.max(this.closedUpTo, this.end[slot]!);
    if (closing.length === 0) return null;
    this.version++;
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
    const keys = this.plan.keys.map((k, j) => this.table.keyColumn(j, k.type, keyIdx));
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
      if (list.length === 0) this.liveKeys--;
      this.release(slot);
    }
    if (this.table.size - this.liveKeys > Math.max(4096, this.liveKeys)) this.rebuildKeys();
    return { rows: n, windowStart, windowEnd, keys, values };
  }

  /**
   * Drop keys without an open session: a stream of ever-new keys (users, devices) would
   * otherwise grow the key table, and every scan of it, without bound.
   */
  private rebuildKeys(): void {
    const live: number[] = [];
    this.byKey.forEach((list, k) => {
      if (list !== undefined && list.length > 0) live.push(k);
    });
    const ids = Int32Array.from(live);
    const table = new GroupTable(this.keySpecs, Math.max(256, 2 * live.length));
    const cols = this.plan.keys.map((k, j) => this.table.keyColumn(j, k.type, ids));
    const inputs = cols.map((c) => keyInputOf(table, c, new Int32Array(c.type === 'string' ? c.dict.length : 0)));
    const newIds = new Int32Array(live.length);
    table.insert(inputs, null, live.length, newIds);
    const byKey: number[][] = [];
    live.forEach((old, i) => {
      const list = this.byKey[old]!;
      byKey[newIds[i]!] = list;
      for (const slot of list) this.keyOf[slot] = newIds[i]!;
    });
    this.table = table;
    this.byKey = byKey;
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
