/**
 * The per-batch operator of a windowed aggregation pipeline — what a worker runs on each batch:
 *
 *   filter kernel → selection vector
 *   window assignment → window number per selected position (hopping expands positions)
 *   hash group-by on (window, keys) → group id per position
 *   aggregate add loops → partial state per group
 *
 * and returns a Partial (one entry per (window, group) of the batch). All scratch memory (the
 * selection vector, window offsets, group ids, the group table and the states) belongs to the
 * aggregator and is reused from batch to batch; only the small Partial is allocated.
 */

import type { Batch, Column, TimestampColumn } from './schema.js';
import type { PipelinePlan } from './plan.js';
import { GroupTable, keyInputOf, keyKindOf, type KeyInput, type KeySpec } from '../native-free-kernels/hash-group-by.js';
import { assignTumbling, tumblingStarts } from '../native-free-kernels/tumbling-window.js';
import { assignHopping, hoppingCapacity, hoppingStarts } from '../native-free-kernels/hopping-window.js';
import { assignSessions } from '../native-free-kernels/session-window.js';
import { newState, type AddContext } from '../native-free-kernels/aggregates.js';
import type { AggState } from '../native-free-kernels/aggregate-state.js';
import type { Partial } from '../native-free-kernels/partial.js';
import { gatherColumn } from '../native-free-kernels/gather.js';

export class WindowAggregator {
  readonly plan: PipelinePlan;
  private sel = new Int32Array(0);
  private identity = new Int32Array(0);
  private rows = new Int32Array(0);
  private offsets = new Int32Array(0);
  private starts = new Float64Array(0);
  private gids = new Int32Array(0);
  private keyGids = new Int32Array(0);
  /** (window offset, keys...) for tumbling/hopping, keys only for sessions */
  private readonly table: GroupTable;
  /** (window start f64, keys...) — only for batches whose windows span > 2^30 numbers */
  private wideTable: GroupTable | null = null;
  private readonly states: AggState[];
  private used = 0;
  private readonly mapScratch: Int32Array[];

  constructor(plan: PipelinePlan) {
    this.plan = plan;
    const keySpecs: KeySpec[] = plan.keys.map((k) => ({ kind: keyKindOf(k.type), perPosition: false }));
    this.table = new GroupTable(plan.window.kind === 'session' ? keySpecs : [{ kind: 'i32', perPosition: true }, ...keySpecs]);
    this.states = plan.aggregates.map((a) => newState(a.kernel, 1024));
    this.mapScratch = plan.keys.map(() => new Int32Array(16));
  }

  /** Aggregate one batch. `seq` orders batches of the stream (first/last ties). */
  run(batch: Batch, seq: number): Partial {
    const plan = this.plan;
    const n = batch.length;
    const ts = (batch.columns[plan.eventTime] as TimestampColumn).values;

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
    let minT = Infinity;
    let maxT = -Infinity;
    for (let i = 0; i < n; i++) {
      const t = ts[i]!;
      if (t < minT) minT = t;
      if (t > maxT) maxT = t;
    }

    // 2 + 3. windows and groups
    const table = this.table;
    table.clear();
    let G: number;
    let windowStart: Float64Array;
    let windowEnd: Float64Array;
    let keys: Column[];
    let gids: Int32Array;
    let positions: number;
    const w = plan.window;
    if (w.kind === 'session') {
      if (this.keyGids.length < m) this.keyGids = new Int32Array(grow(m));
      if (this.gids.length < m) this.gids = new Int32Array(grow(m));
      table.insert(this.keyInputs(table, batch), rows, m, this.keyGids);
      const s = assignSessions(ts, rows, m, this.keyGids, table.size, w.gap, this.gids);
      G = s.count;
      windowStart = s.start.slice();
      windowEnd = s.end.slice();
      keys = plan.keys.map((k, j) => gatherColumn(table.keyColumn(j, k.type), s.keyGroup));
      gids = this.gids;
      positions = m;
    } else {
      const slide = w.kind === 'tumbling' ? w.size : w.slide;
      // the filter's selection; `rows` becomes the expanded positions for hopping windows
      const selected = rows;
      let base: number | null;
      if (w.kind === 'tumbling') {
        if (this.offsets.length < m) this.offsets = new Int32Array(grow(m));
        base = assignTumbling(ts, rows, m, w.size, this.offsets);
        positions = m;
      } else {
        const cap = hoppingCapacity(m, w.size, w.slide);
        if (this.offsets.length < cap) this.offsets = new Int32Array(grow(cap));
        if (this.rows.length < cap) this.rows = new Int32Array(grow(cap));
        const e = assignHopping(ts, rows, m, w.size, w.slide, this.rows, this.offsets);
        base = e === null ? null : e.base;
        positions = e === null ? 0 : e.n;
        rows = this.rows;
      }
      if (this.gids.length < positions) this.gids = new Int32Array(grow(positions));
      gids = this.gids;
      if (base !== null) {
        const inputs: KeyInput[] = [{ values: this.offsets, valid: null, map: null }, ...this.keyInputs(table, batch)];
        table.insert(inputs, w.kind === 'tumbling' ? rows : this.rows, positions, gids);
        G = table.size;
        windowStart = new Float64Array(G);
        const offs = table.keyColumn(0, 'int32');
        if (offs.type !== 'int32') throw new Error('unreachable');
        for (let g = 0; g < G; g++) windowStart[g] = (base + offs.values[g]!) * slide;
        keys = plan.keys.map((k, j) => table.keyColumn(j + 1, k.type));
      } else {
        // Windows of this batch span more numbers than an int32 offset holds: key on the
        // window start itself (two words) instead. Rare (tiny windows, wide batches).
        const wide = this.wideTableFor();
        wide.clear();
        if (w.kind === 'tumbling') {
          if (this.starts.length < m) this.starts = new Float64Array(grow(m));
          tumblingStarts(ts, selected, m, w.size, this.starts);
        } else {
          const cap = hoppingCapacity(m, w.size, w.slide);
          if (this.starts.length < cap) this.starts = new Float64Array(grow(cap));
          positions = hoppingStarts(ts, selected, m, w.size, w.slide, this.rows, this.starts);
          rows = this.rows;
          if (this.gids.length < positions) this.gids = new Int32Array(grow(positions));
          gids = this.gids;
        }
        const inputs: KeyInput[] = [{ values: this.starts, valid: null, map: null }, ...this.keyInputs(wide, batch)];
        wide.insert(inputs, rows, positions, gids);
        G = wide.size;
        const startCol = wide.keyColumn(0, 'float64');
        if (startCol.type !== 'float64') throw new Error('unreachable');
        windowStart = startCol.values;
        keys = plan.keys.map((k, j) => wide.keyColumn(j + 1, k.type));
      }
      windowEnd = new Float64Array(G);
      for (let g = 0; g < G; g++) windowEnd[g] = windowStart[g]! + w.size;
    }

    // 4. aggregates
    const ctx: AddContext = { eventTime: ts, seq };
    const states: AggState[] = [];
    plan.aggregates.forEach((a, k) => {
      const st = this.states[k]!;
      st.reset(this.used);
      st.ensure(G);
      const arg = a.arg === null ? null : a.arg.kind === 'column' ? batch.columns[a.arg.index]! : a.arg.kernel(batch);
      a.kernel.add(st, gids, rows, positions, arg, ctx);
      states.push(st.slice(G));
    });
    this.used = G;

    return { groups: G, windowStart, windowEnd, keys, states, rowsIn: n, rowsSelected: m, minEventTime: minT, maxEventTime: maxT };
  }

  /** The key columns of a batch as group-by inputs (string dictionaries interned into `table`). */
  private keyInputs(table: GroupTable, batch: Batch): KeyInput[] {
    return this.plan.keys.map((k, j) => {
      const col = batch.columns[k.index]!;
      if (col.type === 'string' && this.mapScratch[j]!.length < col.dict.length) this.mapScratch[j] = new Int32Array(grow(col.dict.length));
      return keyInputOf(table, col, this.mapScratch[j]);
    });
  }

  private wideTableFor(): GroupTable {
    if (this.wideTable === null) {
      const keySpecs: KeySpec[] = this.plan.keys.map((k) => ({ kind: keyKindOf(k.type), perPosition: false }));
      this.wideTable = new GroupTable([{ kind: 'f64', perPosition: true }, ...keySpecs]);
    }
    return this.wideTable;
  }
}

function grow(n: number): number {
  let c = 1024;
  while (c < n) c *= 2;
  return c;
}
