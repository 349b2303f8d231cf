import { test } from 'node:test';
import assert from 'node:assert/strict';
import { WindowState, type PartsSnapshot, type WindowResult } from '../../engine/window-state.js';
import { WindowAggregator } from '../../engine/window-aggregate.js';
import { compilePipeline, type PipelinePlan, type WindowSpec } from '../../engine/plan.js';
import { makeSchema, sliceColumn, valueAt, type Batch, type Column, type StringColumn } from '../../engine/schema.js';
import { deserializePartial, serializePartial, type Partial } from '../../native-free-kernels/partial.js';
import { mulberry32, type Rng } from '../helpers/random.js';

/**
 * WindowState is checked end to end against a brute-force reference computed straight from the
 * events: batches → WindowAggregator partials (serialized and deserialized, as across threads)
 * → WindowState merges in random orders → closed windows.
 */

const schema = makeSchema([
  { name: 'auction', type: 'int64' },
  { name: 'channel', type: 'string' },
  { name: 'price', type: 'float64' },
  { name: 'qty', type: 'int32' },
  { name: 'ts', type: 'timestamp' },
]);
const COL = { auction: 0, channel: 1, price: 2, qty: 3, ts: 4 } as const;

const SELECT = {
  n: 'count()',
  np: 'count(price)',
  total: 'sum(price)',
  mean: 'avg(price)',
  lo: 'min(price)',
  hi: 'max(price)',
  first_p: 'first(price)',
  last_p: 'last(price)',
  q: 'sum(qty)',
  v: 'var(price)',
} as const;
const OUTPUTS = Object.keys(SELECT) as (keyof typeof SELECT)[];

function planOf(window: WindowSpec, lateness = 0, groupBy: readonly string[] = ['auction', 'channel']): PipelinePlan {
  return compilePipeline('p', { from: 's', window, groupBy, select: SELECT, lateness }, schema, 'ts');
}


/** WindowAggregator lends its state until the next run(): keep a partial by round-tripping it. */
function own(p: Partial): Partial {
  return deserializePartial(serializePartial(p));
}

// ---------------------------------------------------------------------------------------------
// Events

const PRICE_BITS = 10; // prices are multiples of 2^-10: exact BigInt images for the reference
const AUCTIONS: [number, number][] = [[5, 0], [-3, -1], [1, 0x200000], [0, 0x200000], [7, -0x80000000]]; // 5, -3, 2^53+1, 2^53, ~-2^63
const CHANNELS = ['web', 'mobile', '', 'café'];

interface Stream {
  /** every event, in arrival order */
  all: Batch;
  /** the same events cut into batches, each with its own string dictionary */
  batches: Batch[];
  /** global index of each batch's first event */
  firstIndex: number[];
}

/**
 * Events whose times advance with bounded disorder: each is at most `maxOOO` before the largest
 * time seen so far, so none is late for watermark = max − maxOOO.
 */
function makeStream(rng: Rng, n: number, t0: number, step: number, maxOOO: number, batchCount: number): Stream {
  const words = new Int32Array(2 * n);
  const aValid = new Uint8Array(n);
  const cIdx = new Int32Array(n);
  const cValid = new Uint8Array(n);
  const price = new Float64Array(n);
  const pValid = new Uint8Array(n);
  const qty = new Int32Array(n);
  const qValid = new Uint8Array(n);
  const ts = new Float64Array(n);
  let max = t0;
  for (let i = 0; i < n; i++) {
    const [lo, hi] = AUCTIONS[Math.floor(rng() * AUCTIONS.length)]!;
    aValid[i] = rng() < 0.05 ? 0 : 1;
    words[2 * i] = aValid[i] ? lo : 0;
    words[2 * i + 1] = aValid[i] ? hi : 0;
    cValid[i] = rng() < 0.05 ? 0 : 1;
    cIdx[i] = Math.floor(rng() * CHANNELS.length);
    pValid[i] = rng() < 0.1 ? 0 : 1;
    price[i] = !pValid[i] ? 0 : rng() < 0.01 ? NaN : Math.floor((rng() - 0.3) * 2 ** 30) / 2 ** PRICE_BITS;
    qValid[i] = rng() < 0.1 ? 0 : 1;
    qty[i] = !qValid[i] ? 0 : rng() < 0.1 ? (rng() < 0.5 ? -0x80000000 : 0x7fffffff) : Math.floor((rng() - 0.5) * 1000);
    const r = rng();
    const t = r < 0.3 ? max - Math.floor(rng() * maxOOO) : r < 0.35 ? max + step * 20 : max + Math.floor(rng() * step) + (rng() < 0.1 ? 0.5 : 0);
    ts[i] = t;
    if (t > max) max = t;
  }
  const all: Batch = {
    schema,
    length: n,
    columns: [
      { type: 'int64', words, valid: aValid },
      { type: 'string', codes: cIdx, dict: CHANNELS, valid: cValid },
      { type: 'float64', values: price, valid: pValid },
      { type: 'int32', values: qty, valid: qValid },
      { type: 'timestamp', values: ts, valid: null },
    ],
  };
  const cuts = [0, n];
  for (let b = 1; b < batchCount; b++) cuts.push(1 + Math.floor(rng() * (n - 1)));
  cuts.sort((a, b) => a - b);
  const batches: Batch[] = [];
  const firstIndex: number[] = [];
  for (let b = 0; b < batchCount; b++) {
    const from = cuts[b]!;
    const to = cuts[b + 1]!;
    if (to === from) continue;
    firstIndex.push(from);
    batches.push({
      schema,
      length: to - from,
      columns: all.columns.map((c) => (c.type === 'string' ? reencode(rng, sliceColumn(c, from, to) as StringColumn) : sliceColumn(c, from, to))),
    });
  }
  return { all, batches, firstIndex };
}

/** The same strings under a fresh, shuffled dictionary with an unused extra entry. */
function reencode(rng: Rng, c: StringColumn): StringColumn {
  const dict = [...c.dict, 'unused'].sort(() => rng() - 0.5);
  const where = new Map(dict.map((s, i) => [s, i]));
  const codes = Int32Array.from(c.codes, (code) => where.get(c.dict[code]!)!);
  return { type: 'string', codes, dict, valid: c.valid };
}

// ---------------------------------------------------------------------------------------------
// Reference

interface Acc {
  start: number;
  end: number;
  keys: (string | number | boolean | null)[];
  n: number;
  np: number;
  nan: boolean;
  sumX: bigint;
  sumXX: bigint;
  lo: number | null;
  hi: number | null;
  firstT: number;
  firstV: number;
  lastT: number;
  lastV: number;
  qn: number;
  q: bigint;
}

function newAcc(start: number, end: number, keys: Acc['keys']): Acc {
  return { start, end, keys, n: 0, np: 0, nan: false, sumX: 0n, sumXX: 0n, lo: null, hi: null, firstT: Infinity, firstV: 0, lastT: -Infinity, lastV: 0, qn: 0, q: 0n };
}

/** Fold event i (events arrive in index order, so the (seq, row) tie-break is the index). */
function fold(a: Acc, all: Batch, i: number): void {
  a.n++;
  const p = all.columns[COL.price]!;
  const t = (all.columns[COL.ts] as { values: Float64Array }).values[i]!;
  if (p.valid === null || p.valid[i] === 1) {
    const v = (p as { values: Float64Array }).values[i]!;
    a.np++;
    if (Number.isNaN(v)) a.nan = true;
    else {
      const x = BigInt(v * 2 ** PRICE_BITS);
      a.sumX += x;
      a.sumXX += x * x;
      if (a.lo === null || v < a.lo) a.lo = v;
    }
    a.hi = a.hi === null ? v : Number.isNaN(v) || Number.isNaN(a.hi) ? NaN : Math.max(a.hi, v);
    if (t < a.firstT) {
      a.firstT = t;
      a.firstV = v;
    }
    if (t >= a.lastT) {
      a.lastT = t;
      a.lastV = v;
    }
  }
  const q = all.columns[COL.qty]!;
  if (q.valid === null || q.valid[i] === 1) {
    a.qn++;
    a.q += BigInt((q as { values: Int32Array }).values[i]!);
  }
}

/** Correctly rounded num / den. */
function ratio(num: bigint, den: bigint): number {
  const neg = num < 0n;
  const a = neg ? -num : num;
  if (a === 0n) return 0;
  let shift = 0;
  while ((a << BigInt(shift)) / den < 1n << 66n) shift += 16;
  const scaled = a << BigInt(shift);
  let q = scaled / den;
  if (q * den !== scaled) q |= 1n;
  const v = Number(q) / 2 ** shift;
  return neg ? -v : v;
}

function finalOf(a: Acc): Record<string, number | null> {
  const scale = 1n << BigInt(PRICE_BITS);
  const np = BigInt(a.np);
  const clean = a.np > 0 && !a.nan;
  return {
    n: a.n,
    np: a.np,
    total: a.np === 0 ? null : a.nan ? NaN : ratio(a.sumX, scale),
    mean: a.np === 0 ? null : a.nan ? NaN : ratio(a.sumX, np * scale),
    // DuckDB's order: NaN is the largest value, so min is NaN only when every value is
    lo: a.np === 0 ? null : a.lo === null ? NaN : a.lo,
    hi: a.np === 0 ? null : a.hi,
    first_p: a.np === 0 ? null : a.firstV,
    last_p: a.np === 0 ? null : a.lastV,
    q: a.qn === 0 ? null : Number(a.q),
    v: a.np < 2 ? null : !clean ? NaN : ratio(np * a.sumXX - a.sumX * a.sumX, np * (np - 1n) * scale * scale),
  };
}

function keyValues(all: Batch, i: number, plan: PipelinePlan): Acc['keys'] {
  return plan.keys.map((k) => valueAt(all.columns[k.index]!, i));
}

function rowId(start: number, end: number, keys: Acc['keys']): string {
  return JSON.stringify([start, end, ...keys]);
}

/** Brute-force windows (tumbling / hopping: membership scan; sessions: sorted per key). */
function reference(plan: PipelinePlan, all: Batch): Map<string, Record<string, number | null>> {
  const ts = (all.columns[COL.ts] as { values: Float64Array }).values;
  const accs = new Map<string, Acc>();
  const w = plan.window;
  if (w.kind === 'session') {
    const byKey = new Map<string, number[]>();
    for (let i = 0; i < all.length; i++) {
      const k = JSON.stringify(keyValues(all, i, plan));
      const list = byKey.get(k) ?? [];
      list.push(i);
      byKey.set(k, list);
    }
    for (const list of byKey.values()) {
      const sorted = [...list].sort((a, b) => ts[a]! - ts[b]! || a - b);
      let members: number[] = [];
      const flush = (): void => {
        if (members.length === 0) return;
        const end = Math.max(...members.map((i) => ts[i]!)) + w.gap;
        const a = newAcc(ts[members[0]!]!, end, keyValues(all, members[0]!, plan));
        // fold in arrival order so ties break as the kernels do
        for (const i of [...members].sort((x, y) => x - y)) fold(a, all, i);
        accs.set(rowId(a.start, a.end, a.keys), a);
        members = [];
      };
      let last = -Infinity;
      for (const i of sorted) {
        if (members.length > 0 && ts[i]! >= last + w.gap) flush();
        members.push(i);
        last = Math.max(last, ts[i]!);
      }
      flush();
    }
  } else {
    const size = w.size;
    const slide = w.kind === 'tumbling' ? w.size : w.slide;
    for (let i = 0; i < all.length; i++) {
      const t = ts[i]!;
      const c = Math.floor(t / slide);
      for (let k = c - Math.ceil(size / slide) - 2; k <= c + 2; k++) {
        const start = k * slide;
        if (!(start <= t && t < start + size)) continue;
        const keys = keyValues(all, i, plan);
        const id = rowId(start, start + size, keys);
        let a = accs.get(id);
        if (a === undefined) {
          a = newAcc(start, start + size, keys);
          accs.set(id, a);
        }
        fold(a, all, i);
      }
    }
  }
  const out = new Map<string, Record<string, number | null>>();
  for (const [id, a] of accs) out.set(id, finalOf(a));
  return out;
}

// ---------------------------------------------------------------------------------------------
// Results

function rowsOf(plan: PipelinePlan, results: readonly (WindowResult | null)[]): Map<string, Record<string, number | null>> {
  const out = new Map<string, Record<string, number | null>>();
  for (const r of results) {
    if (r === null) continue;
    assert.equal(r.windowStart.length, r.rows);
    for (let i = 0; i < r.rows; i++) {
      const keys = r.keys.map((c) => valueAt(c, i));
      const id = rowId(r.windowStart[i]!, r.windowEnd[i]!, keys);
      assert.ok(!out.has(id), `window ${id} emitted twice`);
      const row: Record<string, number | null> = {};
      plan.aggregates.forEach((a, k) => {
        const v = r.values[k]!;
        row[a.output] = v.valid[i] === 1 ? v.values[i]! : null;
      });
      out.set(id, row);
    }
  }
  return out;
}

function same(a: number | null, b: number | null): boolean {
  return a === null || b === null ? a === b : Object.is(a, b);
}

function close(a: number | null, b: number | null, rel: number): boolean {
  if (a === null || b === null || !Number.isFinite(b)) return same(a, b);
  return Math.abs(a - b) <= rel * Math.abs(b);
}

/** Compare with the reference: exact except the float sums (1e-15) and var (1e-9). */
function assertMatches(got: Map<string, Record<string, number | null>>, want: Map<string, Record<string, number | null>>, what: string): void {
  const missing = [...want.keys()].filter((k) => !got.has(k));
  const extra = [...got.keys()].filter((k) => !want.has(k));
  assert.deepEqual({ missing: missing.slice(0, 5), extra: extra.slice(0, 5) }, { missing: [], extra: [] }, `${what}: window sets (${got.size} vs ${want.size})`);
  const bad: string[] = [];
  for (const [id, w] of want) {
    const g = got.get(id)!;
    for (const o of OUTPUTS) {
      const tol = o === 'total' || o === 'mean' ? 1e-15 : o === 'v' ? 1e-9 : 0;
      if (!(tol === 0 ? same(g[o]!, w[o]!) : close(g[o]!, w[o]!, tol))) bad.push(`${id} ${o}: got ${g[o]}, want ${w[o]}`);
    }
  }
  assert.deepEqual(bad.slice(0, 8), [], what);
}

function assertIdentical(a: Map<string, Record<string, number | null>>, b: Map<string, Record<string, number | null>>, what: string): void {
  assert.deepEqual([...a.keys()].sort(), [...b.keys()].sort(), what);
  const bad: string[] = [];
  for (const [id, r] of a) for (const o of OUTPUTS) if (!same(r[o]!, b.get(id)![o]!)) bad.push(`${id} ${o}: ${r[o]} vs ${b.get(id)![o]}`);
  assert.deepEqual(bad.slice(0, 8), [], what);
}

/** Batches → partials, each through serialize / deserialize as it would cross threads. */
function partialsOf(plan: PipelinePlan, stream: Stream): Partial[] {
  const agg = new WindowAggregator(plan);
  return stream.batches.map((b, seq) => deserializePartial(serializePartial(agg.run(b, seq))));
}

function shuffled<T>(rng: Rng, xs: readonly T[]): T[] {
  const out = [...xs];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(rng() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

const WINDOWS: [string, WindowSpec][] = [
  ['tumbling', { kind: 'tumbling', size: 10_000 }],
  ['hopping', { kind: 'hopping', size: 10_000, slide: 3_000 }],
  ['session', { kind: 'session', gap: 5_000 }],
];

// ---------------------------------------------------------------------------------------------
// Tests

test('partials merged in random orders give the brute-force windows, identical for every order', () => {
  for (const [name, window] of WINDOWS) {
    const rng = mulberry32(71 + name.length);
    const plan = planOf(window);
    // times straddle 0 so negative window starts are covered
    const stream = makeStream(rng, 4000, -300_000, 400, 20_000, 37);
    const partials = partialsOf(plan, stream);
    const want = reference(plan, stream.all);
    let first: Map<string, Record<string, number | null>> | null = null;
    for (let trial = 0; trial < 3; trial++) {
      const st = new WindowState(plan);
      for (const p of trial === 0 ? partials : shuffled(rng, partials)) st.merge(p);
      assert.equal(st.openGroups, want.size, `${name}: open groups before closing`);
      const got = rowsOf(plan, [st.closeAll()]);
      assertMatches(got, want, `${name} trial ${trial}`);
      if (first === null) first = got;
      else assertIdentical(got, first, `${name}: merge order ${trial} vs in-order`);
      assert.equal(st.openGroups, 0, `${name}: open groups after closeAll`);
      assert.equal(st.openWindows, 0);
      assert.equal(st.closeAll(), null, `${name}: nothing left to close`);
    }
  }
});

test('the result does not depend on batch boundaries', () => {
  for (const [name, window] of WINDOWS) {
    const rng = mulberry32(72);
    const plan = planOf(window);
    const stream = makeStream(rng, 3000, 1.7e12, 300, 10_000, 1);
    const whole = new WindowState(plan);
    for (const p of partialsOf(plan, stream)) whole.merge(p);
    const once = rowsOf(plan, [whole.closeAll()]);
    for (const batches of [2, 11, 300]) {
      const cut: Stream = { ...stream, ...rebatch(rng, stream.all, batches) };
      const st = new WindowState(plan);
      for (const p of shuffled(rng, partialsOf(plan, cut))) st.merge(p);
      assertIdentical(rowsOf(plan, [st.closeAll()]), once, `${name} in ${batches} batches`);
    }
  }
});

function rebatch(rng: Rng, all: Batch, count: number): Pick<Stream, 'batches' | 'firstIndex'> {
  const cuts = [0, all.length];
  for (let b = 1; b < count; b++) cuts.push(1 + Math.floor(rng() * (all.length - 1)));
  cuts.sort((a, b) => a - b);
  const batches: Batch[] = [];
  const firstIndex: number[] = [];
  for (let b = 0; b < count; b++) {
    if (cuts[b + 1] === cuts[b]) continue;
    firstIndex.push(cuts[b]!);
    batches.push({ schema, length: cuts[b + 1]! - cuts[b]!, columns: all.columns.map((c) => sliceColumn(c, cuts[b]!, cuts[b + 1]!)) });
  }
  return { batches, firstIndex };
}

test('closeUpTo(watermark) emits exactly the windows with end + lateness ≤ watermark, each once', () => {
  for (const [name, window] of WINDOWS) {
    for (const lateness of [0, 7_000]) {
      const rng = mulberry32(73);
      const plan = planOf(window, lateness);
      const maxOOO = 15_000;
      const stream = makeStream(rng, 4000, 5e11, 500, maxOOO, 60);
      const partials = partialsOf(plan, stream);
      const want = reference(plan, stream.all);
      const st = new WindowState(plan);
      const emitted: (WindowResult | null)[] = [];
      let prevWm = -Infinity;
      let maxT = -Infinity;
      for (const p of partials) {
        st.merge(p);
        maxT = Math.max(maxT, p.maxEventTime);
        const wm = maxT - maxOOO;
        const r = st.closeUpTo(wm);
        if (r !== null) {
          for (let i = 0; i < r.rows; i++) {
            const end = r.windowEnd[i]!;
            assert.ok(end + lateness <= wm, `${name}: window ending ${end} closed at watermark ${wm}`);
            // it could not have closed at the previous watermark
            assert.ok(end + lateness > prevWm, `${name}: window ending ${end} closed late (previous watermark ${prevWm})`);
          }
        }
        // what stays open must not be closable yet
        assert.equal(st.closeUpTo(wm), null, `${name}: a second close at the same watermark emits nothing`);
        emitted.push(r);
        prevWm = wm;
      }
      const beforeEnd = st.openGroups;
      const last = st.closeAll();
      assert.equal(last === null ? 0 : last.rows, beforeEnd);
      emitted.push(last);
      assert.ok(emitted.filter((r) => r !== null).length > 3, `${name}: windows closed along the way`);
      assertMatches(rowsOf(plan, emitted), want, `${name} lateness ${lateness}`);
      assert.equal(st.openGroups, 0);
    }
  }
});

test('closeUpTo on boundaries: a window closes when end + lateness equals the watermark, not before', () => {
  for (const [name, window] of WINDOWS) {
    const plan = planOf(window, 1_000, []);
    const agg = new WindowAggregator(plan);
    const st = new WindowState(plan);
    // one event at t = 0: tumbling [0, 10000); hopping ends 10000 − k·3000; session [0, 5000)
    const b: Batch = {
      schema,
      length: 1,
      columns: [
        { type: 'int64', words: new Int32Array(2), valid: null },
        { type: 'string', codes: new Int32Array(1), dict: ['x'], valid: null },
        { type: 'float64', values: Float64Array.from([2.5]), valid: null },
        { type: 'int32', values: Int32Array.from([1]), valid: null },
        { type: 'timestamp', values: new Float64Array(1), valid: null },
      ],
    };
    st.merge(agg.run(b, 0));
    const ends = name === 'tumbling' ? [10_000] : name === 'hopping' ? [1_000, 4_000, 7_000, 10_000] : [5_000];
    for (const end of ends) {
      assert.equal(st.closeUpTo(end + 1_000 - 0.5), null, `${name}: nothing at ${end + 1000 - 0.5}`);
      const r = st.closeUpTo(end + 1_000);
      assert.notEqual(r, null, `${name}: window ending ${end}`);
      assert.equal(r!.rows, 1);
      assert.equal(r!.windowEnd[0], end);
      assert.equal(r!.keys.length, 0);
      assert.equal(r!.values[0]!.values[0], 1);
    }
    assert.equal(st.openGroups, 0, name);
  }
});

// ---------------------------------------------------------------------------------------------
// Sessions across partials

/** A one-key batch of events at the given times (price = time, so sums name the events). */
function eventsAt(times: readonly number[], key = 1): Batch {
  const n = times.length;
  const words = new Int32Array(2 * n);
  for (let i = 0; i < n; i++) words[2 * i] = key;
  return {
    schema,
    length: n,
    columns: [
      { type: 'int64', words, valid: null },
      { type: 'string', codes: new Int32Array(n), dict: ['k'], valid: null },
      { type: 'float64', values: Float64Array.from(times), valid: null },
      { type: 'int32', values: new Int32Array(n).fill(1), valid: null },
      { type: 'timestamp', values: Float64Array.from(times), valid: null },
    ],
  };
}

function sessionRows(plan: PipelinePlan, r: WindowResult | null): string[] {
  const out: string[] = [];
  if (r === null) return out;
  const n = plan.aggregates.findIndex((a) => a.output === 'n');
  const total = plan.aggregates.findIndex((a) => a.output === 'total');
  for (let i = 0; i < r.rows; i++) {
    out.push(`${valueAt(r.keys[0]!, i)} [${r.windowStart[i]}, ${r.windowEnd[i]}) n=${r.values[n]!.values[i]} total=${r.values[total]!.values[i]}`);
  }
  return out.sort();
}

function permutations<T>(xs: readonly T[]): T[][] {
  if (xs.length <= 1) return [[...xs]];
  return xs.flatMap((x, i) => permutations([...xs.slice(0, i), ...xs.slice(i + 1)]).map((p) => [x, ...p]));
}

test('sessions: a partial bridging two earlier sessions merges all three, in any order', () => {
  const plan = planOf({ kind: 'session', gap: 10 }, 0, ['auction']);
  const agg = new WindowAggregator(plan);
  const parts = [
    own(agg.run(eventsAt([0, 20]), 0)), // [0, 10) and [20, 30)
    own(agg.run(eventsAt([9, 15]), 1)), // [9, 25): overlaps both
    own(agg.run(eventsAt([100]), 2)), // [100, 110): apart
  ].map((p) => deserializePartial(serializePartial(p)));
  for (const order of permutations(parts)) {
    const st = new WindowState(plan);
    for (const p of order) st.merge(p);
    assert.equal(st.openGroups, 2);
    assert.deepEqual(sessionRows(plan, st.closeAll()), ['1 [0, 30) n=4 total=44', '1 [100, 110) n=1 total=100']);
    assert.equal(st.openGroups, 0);
  }
});

test('sessions: touching sessions (end = next start) stay separate; overlapping by any amount merge', () => {
  const plan = planOf({ kind: 'session', gap: 10 }, 0, ['auction']);
  const agg = new WindowAggregator(plan);
  const touching = [own(agg.run(eventsAt([0]), 0)), own(agg.run(eventsAt([10]), 1)), own(agg.run(eventsAt([20, 25]), 2))];
  for (const order of permutations(touching)) {
    const st = new WindowState(plan);
    for (const p of order) st.merge(p);
    assert.deepEqual(sessionRows(plan, st.closeAll()), ['1 [0, 10) n=1 total=0', '1 [10, 20) n=1 total=10', '1 [20, 35) n=2 total=45']);
  }
  const overlapping = [own(agg.run(eventsAt([0]), 0)), own(agg.run(eventsAt([9.5]), 1)), own(agg.run(eventsAt([19]), 2))];
  for (const order of permutations(overlapping)) {
    const st = new WindowState(plan);
    for (const p of order) st.merge(p);
    assert.deepEqual(sessionRows(plan, st.closeAll()), ['1 [0, 29) n=3 total=28.5']);
  }
  // one partial covering several existing sessions and extending past both ends
  const wide = [own(agg.run(eventsAt([10]), 0)), own(agg.run(eventsAt([30]), 1)), own(agg.run(eventsAt([50]), 2)), own(agg.run(eventsAt([5, 14, 23, 32, 41, 50, 59]), 3))];
  for (const order of permutations(wide)) {
    const st = new WindowState(plan);
    for (const p of order) st.merge(p);
    assert.deepEqual(sessionRows(plan, st.closeAll()), ['1 [5, 69) n=10 total=314']);
  }
});

test('sessions: different keys never merge; closed sessions free their slots for reuse', () => {
  const plan = planOf({ kind: 'session', gap: 10 }, 0, ['auction']);
  const agg = new WindowAggregator(plan);
  const st = new WindowState(plan);
  st.merge(agg.run(eventsAt([0, 5], 1), 0));
  st.merge(agg.run(eventsAt([8], 2), 1)); // overlaps key 1's [0, 15) in time only
  assert.equal(st.openGroups, 2);
  assert.deepEqual(sessionRows(plan, st.closeUpTo(15)), ['1 [0, 15) n=2 total=5']);
  assert.equal(st.openGroups, 1);
  assert.deepEqual(sessionRows(plan, st.closeUpTo(15)), []);
  assert.deepEqual(sessionRows(plan, st.closeUpTo(18)), ['2 [8, 18) n=1 total=8']);
  // many rounds of open / close: slots are recycled, states start from their inits again
  for (let round = 0; round < 50; round++) {
    const t = 1000 + round * 100;
    st.merge(agg.run(eventsAt([t, t + 1], 1 + (round % 3)), 2 + round));
    const r = st.closeUpTo(t + 11);
    const rows = sessionRows(plan, r);
    assert.ok(rows.includes(`${1 + (round % 3)} [${t}, ${t + 11}) n=2 total=${2 * t + 1}`), `round ${round}: ${rows}`);
  }
  st.closeAll();
  assert.equal(st.openGroups, 0);
});

test('many keys with random sessions merged from shuffled partials equal the sorted-array reference', () => {
  const rng = mulberry32(74);
  const plan = planOf({ kind: 'session', gap: 1_000 });
  // heavy disorder inside and across batches: sessions of one key are split over many partials
  const stream = makeStream(rng, 4000, 0, 150, 30_000, 200);
  const partials = partialsOf(plan, stream);
  const want = reference(plan, stream.all);
  for (let trial = 0; trial < 3; trial++) {
    const st = new WindowState(plan);
    for (const p of shuffled(rng, partials)) st.merge(p);
    assert.equal(st.openGroups, want.size);
    assertMatches(rowsOf(plan, [st.closeAll()]), want, `trial ${trial}`);
    assert.equal(st.openGroups, 0);
  }
});

// ---------------------------------------------------------------------------------------------
// Wide batches (the aggregator's fallback when window numbers leave int32)

/** One batch whose event times span 1.2e9 ms (two weeks), many events sharing a few instants. */
function wideBatchCheck(window: WindowSpec, name: string): void {
  const rng = mulberry32(75);
  const plan = planOf(window);
  const stream = makeStream(rng, 400, 0, 1, 0, 1);
  const ts = (stream.all.columns[COL.ts] as { values: Float64Array }).values; // the batch views it
  for (let i = 0; i < ts.length; i++) ts[i] = i % 4 === 0 ? 1.2e9 + (i % 3) : i % 4 === 1 ? -5 : 1000 + (i % 5);
  const st = new WindowState(plan);
  for (const p of partialsOf(plan, stream)) st.merge(p);
  assertMatches(rowsOf(plan, [st.closeAll()]), reference(plan, stream.all), name);
}

test('tumbling 1 ms windows over a batch spanning more than 2^30 window numbers equal brute force', () => {
  wideBatchCheck({ kind: 'tumbling', size: 1 }, 'tumbling 1 ms');
});

test('hopping 2 ms / 1 ms windows over a batch spanning more than 2^30 window numbers equal brute force', () => {
  wideBatchCheck({ kind: 'hopping', size: 2, slide: 1 }, 'hopping 2 ms / 1 ms');
});

test('partials spanning hundreds of windows, out of order within a batch, equal brute force', () => {
  // one partial per batch holds ~700 window starts: past the merge's scan of starts (32), it
  // looks them up in a Map; the 4 ms / 1 ms hopping case lists every event in 4 windows
  for (const [name, window] of [['tumbling 1 ms', { kind: 'tumbling', size: 1 }], ['hopping 4 ms / 1 ms', { kind: 'hopping', size: 4, slide: 1 }]] as [string, WindowSpec][]) {
    const rng = mulberry32(76);
    const plan = planOf(window);
    const stream = makeStream(rng, 2000, 5_000, 1, 40, 3);
    const st = new WindowState(plan);
    for (const p of shuffled(rng, partialsOf(plan, stream))) st.merge(p);
    assertMatches(rowsOf(plan, [st.closeAll()]), reference(plan, stream.all), name);
  }
});

test('merging an empty partial changes nothing', () => {
  for (const [name, window] of WINDOWS) {
    const plan = planOf(window);
    const agg = new WindowAggregator(plan);
    const st = new WindowState(plan);
    const empty = agg.run(eventsAt([]), 0);
    assert.equal(empty.groups, 0);
    st.merge(deserializePartial(serializePartial(empty)));
    assert.equal(st.openGroups, 0, name);
    assert.equal(st.closeAll(), null, name);
  }
});

test('string keys from batches with different dictionaries land in one group per string', () => {
  const plan = planOf({ kind: 'tumbling', size: 1_000 }, 0, ['channel']);
  const agg = new WindowAggregator(plan);
  const st = new WindowState(plan);
  const batch = (dict: string[], codes: number[]): Batch => {
    const b = eventsAt(codes.map(() => 10));
    const cols = [...b.columns] as Column[];
    cols[COL.channel] = { type: 'string', codes: Int32Array.from(codes), dict, valid: null };
    return { ...b, columns: cols };
  };
  st.merge(agg.run(batch(['a', 'b', 'c'], [0, 1, 2, 2]), 0));
  st.merge(agg.run(batch(['c', 'a'], [0, 1, 1]), 1));
  st.merge(agg.run(batch(['zz', 'b', 'a'], [1, 1, 2]), 2));
  const r = st.closeAll()!;
  const counts = new Map<string, number>();
  for (let i = 0; i < r.rows; i++) counts.set(String(valueAt(r.keys[0]!, i)), r.values[0]!.values[i]!);
  assert.deepEqual(Object.fromEntries([...counts].sort()), { a: 4, b: 3, c: 3 });
});

// ---------------------------------------------------------------------------------------------
// Incremental checkpoints

/** A part store as the storage keeps it: the parts the latest KEPT checkpoints reference. */
const KEPT = 3;

class PartStore {
  private readonly bytes = new Map<number, Uint8Array>();
  private readonly kept: number[][] = [];
  nextId = 1;
  written = 0;
  referenced = 0;

  /** Store a snapshot's new parts, drop the parts no kept checkpoint references, confirm. */
  commit(snap: PartsSnapshot): number[] {
    for (const p of snap.parts) {
      if (p.bytes === null) {
        assert.ok(this.bytes.has(p.id), `part ${p.id} is referenced but not stored`);
        this.referenced++;
      } else {
        assert.ok(!this.bytes.has(p.id), `part ${p.id} written twice`);
        this.bytes.set(p.id, p.bytes.slice(0));
        this.written++;
      }
    }
    const ids = snap.parts.map((p) => p.id);
    this.kept.push(ids);
    if (this.kept.length > KEPT) this.kept.shift();
    const live = new Set(this.kept.flat());
    for (const id of this.bytes.keys()) if (!live.has(id)) this.bytes.delete(id);
    snap.stored();
    return ids;
  }

  restore(plan: PipelinePlan, ids: readonly number[]): WindowState {
    const st = new WindowState(plan);
    st.restore(ids.map((id) => ({ id, bytes: this.bytes.get(id)!.slice(0) })));
    return st;
  }
}

test('incremental checkpoints: unchanged windows are referenced, not rewritten; a restore from the parts continues exactly like the original', () => {
  for (const [name, window] of WINDOWS) {
    const rng = mulberry32(91);
    // long lateness: windows stay open well after their last event, as in production
    const lateness = 60_000;
    const plan = planOf(window, lateness);
    const maxOOO = 5_000;
    const stream = makeStream(rng, 3000, 5e11, 200, maxOOO, 60);
    const partials = partialsOf(plan, stream);
    const store = new PartStore();
    const st = new WindowState(plan);
    const wms: number[] = [];
    let maxT = -Infinity;
    for (const p of partials) {
      maxT = Math.max(maxT, p.maxEventTime);
      wms.push(maxT - maxOOO);
    }
    const run = (state: WindowState, from: number): Map<string, Record<string, number | null>> => {
      const out: (WindowResult | null)[] = [];
      for (let i = from; i < partials.length; i++) {
        state.merge(partials[i]!);
        out.push(state.closeUpTo(wms[i]!));
      }
      out.push(state.closeAll());
      return rowsOf(plan, out);
    };
    const checkpoints: { at: number; ids: number[] }[] = [];
    for (let i = 0; i < partials.length; i++) {
      st.merge(partials[i]!);
      st.closeUpTo(wms[i]!);
      if (i % 2 === 1) checkpoints.push({ at: i + 1, ids: store.commit(st.snapshot(() => store.nextId++)) });
      // the latest checkpoint restores to a state that ends exactly like the original
      if (i % 12 === 11) {
        const { at, ids } = checkpoints.at(-1)!;
        const restored = store.restore(plan, ids);
        const copy = store.restore(plan, ids);
        assertIdentical(run(restored, at), run(copy, at), `${name}: two restores of one checkpoint`);
        const whole = new WindowState(plan);
        for (let j = 0; j < at; j++) {
          whole.merge(partials[j]!);
          whole.closeUpTo(wms[j]!);
        }
        assertIdentical(run(store.restore(plan, ids), at), run(whole, at), `${name}: restored at batch ${at} vs uninterrupted`);
      }
    }
    if (name === 'session') {
      // all open sessions are one part: referenced only when nothing merged or closed
      assert.equal(store.referenced, 0, `${name}: every checkpoint followed merges`);
    } else {
      // most windows of a checkpoint got no event since the previous one (hopping ones overlap: fewer)
      assert.ok(store.referenced * 2 > store.written, `${name}: ${store.referenced} windows referenced, ${store.written} written`);
    }
    // a checkpoint with nothing changed since the last writes nothing
    const again = st.snapshot(() => store.nextId++);
    assert.ok(again.parts.length > 0, name);
    assert.deepEqual(again.parts.filter((p) => p.bytes !== null), [], `${name}: a second checkpoint with no change`);
  }
});

test('incremental checkpoints: parts are referenced only once stored(); a merge during the commit writes the window again', () => {
  const plan = planOf({ kind: 'tumbling', size: 1_000 }, 60_000, ['auction']);
  const agg = new WindowAggregator(plan);
  const st = new WindowState(plan);
  let next = 1;
  const newId = (): number => next++;
  st.merge(own(agg.run(eventsAt([10, 1010, 2010]), 0))); // windows 0, 1000, 2000
  const first = st.snapshot(newId);
  assert.deepEqual(first.parts.map((p) => [p.id, p.bytes !== null]), [[1, true], [2, true], [3, true]]);
  // not confirmed (a failed commit): everything is written again, under new ids
  const retry = st.snapshot(newId);
  assert.deepEqual(retry.parts.map((p) => [p.id, p.bytes !== null]), [[4, true], [5, true], [6, true]]);
  // a merge into window 1000 while the commit runs, then the commit succeeds
  st.merge(own(agg.run(eventsAt([1500]), 1)));
  retry.stored();
  const third = st.snapshot(newId);
  assert.deepEqual(third.parts.map((p) => [p.id, p.bytes !== null]), [[4, false], [7, true], [6, false]]);
  third.stored();
  // closing window 0 drops its part from the next checkpoint
  st.closeUpTo(1000 + 60_000);
  assert.deepEqual(st.snapshot(newId).parts.map((p) => [p.id, p.bytes !== null]), [[7, false], [6, false]]);
});

test('restoring parts without ids (a checkpoint written before parts existed) writes every window at the next checkpoint', () => {
  const plan = planOf({ kind: 'hopping', size: 2_000, slide: 1_000 }, 0, ['auction']);
  const agg = new WindowAggregator(plan);
  const st = new WindowState(plan);
  st.merge(own(agg.run(eventsAt([10, 1010, 2010]), 0)));
  const snap = st.snapshot(() => 1);
  const legacy = new WindowState(plan);
  legacy.restore(snap.parts.map((p) => ({ id: null, bytes: p.bytes! })));
  let next = 100;
  const parts = legacy.snapshot(() => next++).parts;
  assert.equal(parts.length, 4);
  assert.ok(parts.every((p) => p.bytes !== null));
  assert.deepEqual(rowsOf(plan, [legacy.closeAll()]), rowsOf(plan, [st.closeAll()]));
});
