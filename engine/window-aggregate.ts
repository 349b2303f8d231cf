/**
 * The per-batch operator of a windowed aggregation pipeline — what a worker runs on each batch:
 *
 *   filter kernel → selection vector
 *   window assignment → window number per selected position (hopping expands positions)
 *   group-by on (window, keys) → group id per position: direct indexing when the batch's key
 *     ranges are small (direct-group-by.ts), else the hash table (hash-group-by.ts)
 *   fused aggregate loop → partial state per group
 *
 * and returns a Partial (one entry per (window, group) of the batch). All scratch memory (the
 * selection vector, window offsets, group ids, the group tables and the state) belongs to the
 * aggregator and is reused from batch to batch; only the small Partial is allocated.
 */

import type { Batch, Column, TimestampColumn } from './schema.js';
import { sluiceError } from './errors.js';
import type { PipelinePlan } from './plan.js';
import { GroupTable, keyInputOf, keyKindOf, type KeyInput, type KeySpec } from '../native-free-kernels/hash-group-by.js';
import { DirectGroupBy, type DirectComponent } from '../native-free-kernels/direct-group-by.js';
import { assignTumbling, tumblingStarts, type OffsetRange } from '../native-free-kernels/tumbling-window.js';
import { assignHopping, hoppingCapacity, hoppingStarts } from '../native-free-kernels/hopping-window.js';
import { assignSessions } from '../native-free-kernels/session-window.js';
import type { AddContext } from '../native-free-kernels/aggregates.js';
import { AggState } from '../native-free-kernels/aggregate-state.js';
import type { Partial } from '../native-free-kernels/partial.js';
import { compactDictionary, gatherColumn } from '../native-free-kernels/gather.js';

/**
 * The watermark in force before each row of a batch, for late-event checks: wm[r] =
 * max(event time of every earlier row of the stream, earlier batches included) − maxOutOfOrder.
 * Defined row by row, so which events are late does not depend on how the stream was cut into
 * batches. `wmMax` is the largest wm of the batch (a quick "nothing can be late" test).
 */
export interface LateInput {
  readonly wm: Float64Array;
  readonly wmMax: number;
}

/** The result of grouping positions: group count, and how to read a group's keys back. */
interface Grouping {
  size: number;
  /** the window component (offset, or start for wide batches) of every group */
  window(): Int32Array | Float64Array | null;
  /** the key columns of every group (or of the listed groups) */
  keys(groups?: Int32Array): Column[];
}

export class WindowAggregator {
  readonly plan: PipelinePlan;
  private sel = new Int32Array(0);
  private identity = new Int32Array(0);
  private rows = new Int32Array(0);
  private offsets = new Int32Array(0);
  private starts = new Float64Array(0);
  private gids = new Int32Array(0);
  private keyGids = new Int32Array(0);
  /** the partial's window bounds and the direct grouping's per-group scratch, lent like the state */
  private bounds = new Float64Array(0);
  private groupWindow = new Int32Array(0);
  private groupRep = new Int32Array(0);
  private readonly direct = new DirectGroupBy();
  private readonly offsetRange: OffsetRange = { lo: 0, hi: 0 };
  /** hash tables by layout: keys only (sessions), (i32 window offset, keys), (f64 window start, keys) */
  private readonly tables = new Map<string, GroupTable>();
  private readonly state: AggState;
  private used = 0;
  private readonly mapScratch: Int32Array[];
  /** per-batch string dedupe for direct grouping: dictionary code → dense id */
  private readonly dedupe = new Map<string, number>();
  private kept = new Int32Array(0);
  /** rows of the last run left out as late, with the window end (or event time for sessions) */
  lateRows = new Int32Array(64);
  lateInfo = new Float64Array(64);
  lateCount = 0;
  /** rows of the last run() that passed the filter (on time or late) */
  passed = 0;

  constructor(plan: PipelinePlan) {
    this.plan = plan;
    this.state = new AggState(plan.layout, 1024);
    this.mapScratch = plan.keys.map(() => new Int32Array(16));
  }

  /**
   * Aggregate one batch. `seq` orders batches of the stream (first/last ties). With `late`,
   * rows whose window the watermark has already closed are left out of the partial and listed
   * in `lateRows` / `lateInfo` / `lateCount` (lent like the state, until the next run).
   *
   * The returned partial's `state` and window bounds are this aggregator's scratch, valid only
   * until the next call: serialize it (serializePartial, which a worker does anyway to transfer
   * it) or merge it first. Copying 10 K groups' state per batch cost more than the aggregation.
   */
  run(batch: Batch, seq: number, late?: LateInput): Partial {
    const plan = this.plan;
    const n = batch.length;
    const tcol = batch.columns[plan.eventTime] as TimestampColumn;
    const ts = tcol.values;
    // decoders reject these when told the event-time column; never read a null as time 0
    if (tcol.valid !== null && tcol.valid.subarray(0, n).includes(0)) {
      throw sluiceError('BATCH_BAD_TIMESTAMP', `null in the event-time column '${plan.schema.fields[plan.eventTime]!.name}'`);
    }

    // 1. filter → rows (selection vector), m rows
    let rows: Int32Array;
    let m: number;
    if (plan.filter !== null) {
      if (this.sel.length < n) this.sel = new Int32Array(grow(n));
      m = plan.filter(batch, null, n, this.sel);
      rows = this.sel;
    } else {
      if (this.identity.length < n) {
        this.identity = new Int32Array(grow(n));
        for (let i = 0; i < this.identity.length; i++) this.identity[i] = i;
      }
      m = n;
      rows = this.identity;
    }
    this.passed = m;
    // event-time bounds over every row (filtered-out events still advance event time)
    let minT = Infinity;
    let maxT = -Infinity;
    for (let i = 0; i < n; i++) {
      const t = ts[i]!;
      if (t < minT) minT = t;
      if (t > maxT) maxT = t;
    }

    // 2 + 3. windows and groups
    let G: number;
    let windowStart: Float64Array;
    let windowEnd: Float64Array;
    let keys: Column[];
    let gids: Int32Array;
    let positions: number;
    const w = plan.window;
    this.lateCount = 0;
    const lateCheck = late !== undefined && minT + plan.lateness < late.wmMax;
    if (w.kind === 'session') {
      if (lateCheck) {
        // late iff t < watermark − lateness: every session that could still absorb the event
        // is open, and no emitted session can be reached (docs/pipelines.md, "Late events")
        const wm = late.wm;
        const L = plan.lateness;
        const kept = this.keptRows(rows, m);
        let k = 0;
        for (let i = 0; i < m; i++) {
          const r = rows[i]!;
          const t = ts[r]!;
          if (t < wm[r]! - L) this.recordLate(r, t);
          else kept[k++] = r;
        }
        rows = kept;
        m = k;
      }
      if (this.keyGids.length < m) this.keyGids = new Int32Array(grow(m));
      if (this.gids.length < m) this.gids = new Int32Array(grow(m));
      const grouping = this.group(batch, rows, m, null, this.keyGids);
      const s = assignSessions(ts, rows, m, this.keyGids, grouping.size, w.gap, this.gids);
      G = s.count;
      windowStart = s.start.slice();
      windowEnd = s.end.slice();
      keys = grouping.keys(s.keyGroup);
      gids = this.gids;
      positions = m;
    } else {
      const slide = w.kind === 'tumbling' ? w.size : w.slide;
      const selected = rows;
      let base: number | null;
      if (w.kind === 'tumbling') {
        if (this.offsets.length < m) this.offsets = new Int32Array(grow(m));
        base = assignTumbling(ts, selected, m, w.size, this.offsets, this.offsetRange);
        positions = m;
      } else {
        const cap = hoppingCapacity(m, w.size, w.slide);
        if (this.offsets.length < cap) this.offsets = new Int32Array(grow(cap));
        if (this.rows.length < cap) this.rows = new Int32Array(grow(cap));
        const e = assignHopping(ts, selected, m, w.size, w.slide, this.rows, this.offsets);
        base = e === null ? null : e.base;
        positions = e === null ? 0 : e.n;
        rows = this.rows;
      }
      let window: Int32Array | Float64Array = this.offsets;
      if (base === null) {
        // Windows of this batch span more numbers than an int32 offset holds: key on the
        // window start itself (two words) instead. Rare (tiny windows, wide batches).
        if (w.kind === 'tumbling') {
          if (this.starts.length < m) this.starts = new Float64Array(grow(m));
          tumblingStarts(ts, selected, m, w.size, this.starts);
        } else {
          const cap = hoppingCapacity(m, w.size, w.slide);
          if (this.starts.length < cap) this.starts = new Float64Array(grow(cap));
          positions = hoppingStarts(ts, selected, m, w.size, w.slide, this.rows, this.starts);
          rows = this.rows;
        }
        window = this.starts;
      }
      if (lateCheck) {
        // late iff the window's end + lateness ≤ the watermark before the row
        const wm = late.wm;
        const L = plan.lateness;
        const size = w.size;
        if (rows === this.identity || rows === this.sel) rows = this.keptRows(rows, positions);
        let k = 0;
        let lastLate = -1;
        for (let i = 0; i < positions; i++) {
          const r = rows[i]!;
          const end = (base !== null ? (base + window[i]!) * slide : window[i]!) + size;
          if (end + L <= wm[r]!) {
            if (r !== lastLate) this.recordLate(r, end);
            lastLate = r;
          } else {
            rows[k] = r;
            window[k] = window[i]!;
            k++;
          }
        }
        positions = k;
      }
      if (this.gids.length < positions) this.gids = new Int32Array(grow(positions));
      gids = this.gids;
      const grouping = this.group(batch, rows, positions, window, gids, w.kind === 'tumbling' && base !== null ? this.offsetRange : undefined);
      G = grouping.size;
      const win = grouping.window()!;
      // scratch, not fresh arrays: a worker allocating ~24 bytes per group per batch ran a
      // full GC several times a second for the external memory alone (--trace-gc)
      if (this.bounds.length < 2 * G) this.bounds = new Float64Array(grow(2 * G));
      windowStart = this.bounds.subarray(0, G);
      windowEnd = this.bounds.subarray(G, 2 * G);
      if (base !== null) for (let g = 0; g < G; g++) windowStart[g] = (base + win[g]!) * slide;
      else windowStart.set(win.subarray(0, G));
      for (let g = 0; g < G; g++) windowEnd[g] = windowStart[g]! + w.size;
      keys = grouping.keys();
    }

    // 4. aggregates: one fused loop over the positions, into this aggregator's scratch state
    const ctx: AddContext = { eventTime: ts, seq };
    const st = this.state;
    st.reset(this.used);
    st.ensure(G);
    const args = plan.aggregates.map((a) => (a.arg === null ? null : a.arg.kind === 'column' ? batch.columns[a.arg.index]! : a.arg.kernel(batch)));
    plan.add(st, gids, rows, positions, args, ctx);
    this.used = G;

    // The state is lent, not copied: serialize or merge the partial before the next run().
    return { groups: G, windowStart, windowEnd, keys, state: st, rowsIn: n, rowsSelected: m, minEventTime: minT, maxEventTime: maxT };
  }

  /** A writable copy of the selection (the identity and filter buffers are not ours to compact). */
  private keptRows(rows: Int32Array, n: number): Int32Array {
    if (this.kept.length < n) this.kept = new Int32Array(grow(n));
    this.kept.set(rows.subarray(0, n));
    return this.kept;
  }

  private recordLate(row: number, info: number): void {
    if (this.lateCount === this.lateRows.length) {
      const rows = new Int32Array(this.lateRows.length * 2);
      rows.set(this.lateRows);
      this.lateRows = rows;
      const info = new Float64Array(this.lateInfo.length * 2);
      info.set(this.lateInfo);
      this.lateInfo = info;
    }
    this.lateRows[this.lateCount] = row;
    this.lateInfo[this.lateCount++] = info;
  }

  /**
   * Group n positions (row `rows[i]`) by (window component, key columns): direct indexing
   * when the batch's value ranges allow, else the hash table.
   */
  private group(
    batch: Batch,
    rows: Int32Array,
    n: number,
    window: Int32Array | Float64Array | null,
    out: Int32Array,
    windowRange?: OffsetRange,
  ): Grouping {
    const plan = this.plan;
    const cols = plan.keys.map((k) => batch.columns[k.index]!);

    if (!(window instanceof Float64Array)) {
      const comps: DirectComponent[] = [];
      if (window !== null) {
        comps.push(windowRange === undefined
          ? { kind: 'i32', perPosition: true, values: window, valid: null, map: null }
          : { kind: 'i32', perPosition: true, values: window, valid: null, map: null, range: windowRange });
      }
      cols.forEach((c, j) => comps.push(this.directComponent(c, j)));
      // a map of up to 4 entries per position (at least 1 K, at most 1 M) beats hashing;
      // beyond that, clearing the map would cost more than the rows save
      if (this.direct.tryInsert(comps, rows, n, out, Math.min(1 << 20, Math.max(1024, 4 * n)))) {
        const size = this.direct.size;
        const first = this.direct.firstPos;
        return {
          size,
          window: () => {
            if (window === null) return null;
            if (this.groupWindow.length < size) this.groupWindow = new Int32Array(grow(size));
            const w = this.groupWindow;
            for (let g = 0; g < size; g++) w[g] = window[first[g]!]!;
            return w;
          },
          keys: (groups) => {
            const ids = groups ?? identityOf(size);
            if (this.groupRep.length < ids.length) this.groupRep = new Int32Array(grow(ids.length));
            const rep = this.groupRep.subarray(0, ids.length);
            for (let i = 0; i < ids.length; i++) rep[i] = rows[first[ids[i]!]!]!;
            return cols.map((c) => compactDictionary(gatherColumn(c, rep)));
          },
        };
      }
    }

    const table = this.tableFor(window);
    table.clear();
    const inputs: KeyInput[] = [];
    if (window !== null) inputs.push({ values: window, valid: null, map: null });
    cols.forEach((c, j) => {
      if (c.type === 'string' && this.mapScratch[j]!.length < c.dict.length) this.mapScratch[j] = new Int32Array(grow(c.dict.length));
      inputs.push(keyInputOf(table, c, this.mapScratch[j]));
    });
    table.insert(inputs, rows, n, out);
    const first = window === null ? 0 : 1;
    return {
      size: table.size,
      window: () => {
        if (window === null) return null;
        const col = table.keyColumn(0, window instanceof Float64Array ? 'float64' : 'int32');
        return col.type === 'float64' || col.type === 'int32' ? col.values : null;
      },
      keys: (groups) => plan.keys.map((k, j) => {
        const col = table.keyColumn(j + first, k.type);
        return groups === undefined ? col : gatherColumn(col, groups);
      }),
    };
  }

  /** A key column as a direct-grouping component; strings are deduplicated per batch. */
  private directComponent(c: Column, j: number): DirectComponent {
    switch (c.type) {
      case 'string': {
        if (this.mapScratch[j]!.length < c.dict.length) this.mapScratch[j] = new Int32Array(grow(c.dict.length));
        const map = this.mapScratch[j]!;
        const ids = this.dedupe;
        ids.clear();
        for (let d = 0; d < c.dict.length; d++) {
          const s = c.dict[d]!;
          let id = ids.get(s);
          if (id === undefined) { id = ids.size; ids.set(s, id); }
          map[d] = id;
        }
        return { kind: 'str', perPosition: false, values: c.codes, valid: c.valid, map };
      }
      case 'int64': return { kind: 'i64', perPosition: false, values: c.words, valid: c.valid, map: null };
      default: return { kind: keyKindOf(c.type), perPosition: false, values: c.values, valid: c.valid, map: null };
    }
  }

  private tableFor(window: Int32Array | Float64Array | null): GroupTable {
    const layout = window === null ? 'keys' : window instanceof Float64Array ? 'f64' : 'i32';
    let t = this.tables.get(layout);
    if (t === undefined) {
      const keySpecs: KeySpec[] = this.plan.keys.map((k) => ({ kind: keyKindOf(k.type), perPosition: false }));
      t = new GroupTable(window === null ? keySpecs : [{ kind: layout === 'f64' ? 'f64' : 'i32', perPosition: true }, ...keySpecs]);
      this.tables.set(layout, t);
    }
    return t;
  }
}

let identityCache = new Int32Array(0);

function identityOf(n: number): Int32Array {
  if (identityCache.length < n) {
    identityCache = new Int32Array(grow(n));
    for (let i = 0; i < identityCache.length; i++) identityCache[i] = i;
  }
  return identityCache.subarray(0, n);
}

function grow(n: number): number {
  let c = 1024;
  while (c < n) c *= 2;
  return c;
}
