/**
 * The oracle test (issue: foundation, item 6): seeded random events — nulls, strings, negative
 * and > 2^53 int64 values, unordered timestamps, pre-epoch times — go through
 * filter → window → group-by → aggregates, split into partials at random batch boundaries,
 * aggregated by several simulated workers, serialized, merged in random order, and the result
 * must equal DuckDB SQL over the same rows: exactly for the exact aggregates, within the stated
 * error for floating-point sums (1e-12 relative) and the sketches. Runs for every window kind.
 *
 * Also checks the determinism promise of DESIGN.md A3: two different splits and merge orders
 * give bit-identical results.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { DuckDBConnection } from '@duckdb/node-api';
import { makeSchema, sliceBatch, int64ToString, type Batch, type Column } from '../../engine/schema.js';
import { compilePipeline, type PipelineSpec } from '../../engine/plan.js';
import { WindowAggregator } from '../../engine/window-aggregate.js';
import { WindowState, type WindowResult } from '../../engine/window-state.js';
import { deserializePartial, serializePartial, type Partial } from '../../native-free-kernels/partial.js';
import { loadBatch, openMemory, queryRows, type JsValue } from '../helpers/duckdb.js';
import { mulberry32 } from '../helpers/random.js';

// --- seeded data ------------------------------------------------------------------------------


const SCHEMA = makeSchema([
  { name: 'auction', type: 'int64' },
  { name: 'bidder', type: 'int64' },
  { name: 'price', type: 'float64' },
  { name: 'channel', type: 'string' },
  { name: 'qty', type: 'int32' },
  { name: 'flag', type: 'bool' },
  { name: 'ts', type: 'timestamp' },
]);

const HOT_AUCTIONS = [1, 2, 3, 42, -7, -1_000_000_007, 2 ** 60 + 7, -(2 ** 55) + 3, 2 ** 53 + 1, 9_007_199_254_740_993];
const CHANNELS = ['web', 'app', 'spam', 'ünïcødé ✓', ''];

/** int64 words of an exact integer given as a JS number or, beyond 2^53, a BigInt. */
function wordsOf(v: number | bigint): [number, number] {
  const b = BigInt.asUintN(64, BigInt(v));
  return [Number(b & 0xffffffffn) | 0, Number(b >> 32n) | 0];
}

function makeData(seed: number, n: number): Batch {
  const rnd = mulberry32(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
  const auction = new Int32Array(2 * n), bidder = new Int32Array(2 * n);
  const price = new Float64Array(n), qty = new Int32Array(n), flag = new Uint8Array(n), ts = new Float64Array(n);
  const codes = new Int32Array(n);
  const vA = new Uint8Array(n).fill(1), vB = new Uint8Array(n).fill(1), vP = new Uint8Array(n).fill(1);
  const vC = new Uint8Array(n).fill(1), vQ = new Uint8Array(n).fill(1), vF = new Uint8Array(n).fill(1);
  for (let i = 0; i < n; i++) {
    const a = rnd() < 0.6 ? BigInt(pick(HOT_AUCTIONS)) : BigInt(Math.floor(rnd() * 3000) - 500);
    [auction[2 * i], auction[2 * i + 1]] = wordsOf(a);
    if (rnd() < 0.02) vA[i] = 0;
    const b = rnd() < 0.05 ? 2n ** 62n + BigInt(Math.floor(rnd() * 50)) : BigInt(Math.floor(rnd() * 400));
    [bidder[2 * i], bidder[2 * i + 1]] = wordsOf(b);
    if (rnd() < 0.03) vB[i] = 0;
    const u = rnd();
    price[i] = u < 0.02 ? -Math.round(rnd() * 50000) / 100 : u < 0.03 ? 1e12 + Math.round(rnd() * 1000) : Math.round(rnd() * 100000) / 100;
    if (rnd() < 0.05) vP[i] = 0;
    codes[i] = Math.floor(rnd() * CHANNELS.length);
    if (rnd() < 0.03) vC[i] = 0;
    qty[i] = rnd() < 0.05 ? (rnd() < 0.5 ? 2147483647 - Math.floor(rnd() * 10) : -2147483648 + Math.floor(rnd() * 10)) : Math.floor(rnd() * 200) - 50;
    if (rnd() < 0.02) vQ[i] = 0;
    flag[i] = rnd() < 0.5 ? 1 : 0;
    if (rnd() < 0.05) vF[i] = 0;
    // mostly increasing event time with ±3 s disorder; 3 % of rows around the epoch (negative)
    ts[i] = rnd() < 0.03 ? Math.floor(rnd() * 40000) - 30000 : 1_700_000_000_000 + i * 7 + Math.floor(rnd() * 6000) - 3000;
  }
  for (let i = 0; i < n; i++) if (vA[i] === 0) { auction[2 * i] = 0; auction[2 * i + 1] = 0; }
  return {
    schema: SCHEMA,
    length: n,
    columns: [
      { type: 'int64', words: auction, valid: vA },
      { type: 'int64', words: bidder, valid: vB },
      { type: 'float64', values: price, valid: vP },
      { type: 'string', codes, dict: CHANNELS, valid: vC },
      { type: 'int32', values: qty, valid: vQ },
      { type: 'bool', values: flag, valid: vF },
      { type: 'timestamp', values: ts, valid: null },
    ],
  };
}

// --- aggregates under test and their SQL ------------------------------------------------------

type Compare = 'exact' | 'rel' | 'hll' | 'quantile' | 'intsum';
/**
 * `scale` (for 'rel'): the magnitude the error is relative to. DuckDB sums doubles in plain
 * double precision, so with cancellation (qty reaches ±2^31) its own error is relative to Σ|x|,
 * not to the result; Sluice accumulates in double-double and is the more accurate of the two.
 */
const AGGS: readonly { name: string; ours: string; sql: string; cmp: Compare; scale?: string }[] = [
  { name: 'n', ours: 'count()', sql: 'count(*)', cmp: 'exact' },
  { name: 'n_price', ours: 'count(price)', sql: 'count(price)', cmp: 'exact' },
  { name: 'n_channel', ours: 'count(channel)', sql: 'count(channel)', cmp: 'exact' },
  { name: 's_price', ours: 'sum(price)', sql: 'sum(price)', cmp: 'rel', scale: 'sum(abs(price))' },
  { name: 's_qty', ours: 'sum(qty)', sql: 'sum(qty)::VARCHAR', cmp: 'intsum' },
  { name: 's_auction', ours: 'sum(auction)', sql: 'sum(auction)::VARCHAR', cmp: 'intsum' },
  { name: 'mn', ours: 'min(price)', sql: 'min(price)', cmp: 'exact' },
  { name: 'mx', ours: 'max(price)', sql: 'max(price)', cmp: 'exact' },
  { name: 'mn_auction', ours: 'min(auction)', sql: 'min(auction)::DOUBLE', cmp: 'exact' },
  { name: 'mx_qty', ours: 'max(qty)', sql: 'max(qty)::DOUBLE', cmp: 'exact' },
  { name: 'mx_ts', ours: 'max(ts)', sql: 'max(ts)::DOUBLE', cmp: 'exact' },
  { name: 'mn_flag', ours: 'min(flag)', sql: 'min(flag::INTEGER)::DOUBLE', cmp: 'exact' },
  { name: 'av', ours: 'avg(price)', sql: 'avg(price)', cmp: 'rel', scale: 'avg(abs(price))' },
  { name: 'av_qty', ours: 'avg(qty)', sql: 'avg(qty)', cmp: 'rel', scale: 'avg(abs(qty::DOUBLE))' },
  { name: 'av_auction', ours: 'avg(auction)', sql: 'avg(auction)', cmp: 'rel', scale: 'avg(abs(auction::DOUBLE))' },
  { name: 'f', ours: 'first(price)', sql: 'first(price ORDER BY ts, rid) FILTER (WHERE price IS NOT NULL)', cmp: 'exact' },
  { name: 'l', ours: 'last(price)', sql: 'last(price ORDER BY ts, rid) FILTER (WHERE price IS NOT NULL)', cmp: 'exact' },
  { name: 'l_bidder', ours: 'last(bidder)', sql: 'last(bidder::DOUBLE ORDER BY ts, rid) FILTER (WHERE bidder IS NOT NULL)', cmp: 'exact' },
  { name: 'v', ours: 'var(price)', sql: 'var_samp(price)', cmp: 'rel', scale: 'var_samp(price) + avg(price) ^ 2' },
  { name: 'sd', ours: 'stddev(qty)', sql: 'stddev_samp(qty)', cmp: 'rel', scale: 'stddev_samp(qty) + abs(avg(qty::DOUBLE))' },
  { name: 'sx', ours: 'sum(price * 2 + qty)', sql: 'sum(price * 2 + qty)', cmp: 'rel', scale: 'sum(abs(price * 2 + qty))' },
  { name: 'acd', ours: 'approx_count_distinct(bidder)', sql: 'count(DISTINCT bidder)', cmp: 'hll' },
  { name: 'acd_ch', ours: 'approx_count_distinct(channel)', sql: 'count(DISTINCT channel)', cmp: 'hll' },
  { name: 'q90', ours: 'approx_quantile(price, 0.9)', sql: 'quantile_disc(price, 0.9)', cmp: 'quantile' },
];

interface Case {
  name: string;
  where?: string;
  window: PipelineSpec['window'];
  groupBy: string[];
}

const CASES: Case[] = [
  { name: 'tumbling by auction', where: "price > 100 and channel != 'spam'", window: { kind: 'tumbling', size: 10_000 }, groupBy: ['auction'] },
  { name: 'tumbling 1s global', window: { kind: 'tumbling', size: 1_000 }, groupBy: [] },
  { name: 'tumbling by flag and channel', where: 'qty between -20 and 100 or price is null', window: { kind: 'tumbling', size: 7_000 }, groupBy: ['flag', 'channel'] },
  { name: 'hopping 10s/2s by channel', where: 'qty is not null or flag', window: { kind: 'hopping', size: 10_000, slide: 2_000 }, groupBy: ['channel'] },
  { name: 'hopping 6s/4s by qty', window: { kind: 'hopping', size: 6_000, slide: 4_000 }, groupBy: ['qty'] },
  // dense integer keys (with nulls): the state's direct-indexed front (DenseKeyIndex) takes these
  { name: 'tumbling 5s by dense auction', where: 'auction between -500 and 2500 or auction is null', window: { kind: 'tumbling', size: 5_000 }, groupBy: ['auction'] },
  { name: 'hopping 4s/2s by dense qty', where: 'qty between -50 and 150 or qty is null', window: { kind: 'hopping', size: 4_000, slide: 2_000 }, groupBy: ['qty'] },
  { name: 'hopping 3s/3s by price', where: 'price < 500', window: { kind: 'hopping', size: 3_000, slide: 3_000 }, groupBy: ['price'] },
  { name: 'session 2s by auction', where: "channel in ('web', 'app') or channel is null", window: { kind: 'session', gap: 2_000 }, groupBy: ['auction'] },
  { name: 'session 50ms by bidder', window: { kind: 'session', gap: 50 }, groupBy: ['bidder', 'channel'] },
  { name: 'session 1s global', where: 'auction = 42', window: { kind: 'session', gap: 1_000 }, groupBy: [] },
];

// --- running Sluice's kernels -------------------------------------------------------------------

function spec(c: Case): PipelineSpec {
  return {
    from: 'events',
    where: c.where,
    window: c.window,
    groupBy: c.groupBy,
    select: Object.fromEntries(AGGS.map((a) => [a.name, a.ours])),
    lateness: 0,
  };
}

/** Split at random boundaries, aggregate on `workers` aggregators, serialize, merge shuffled. */
function runSluice(c: Case, data: Batch, seed: number, workers: number, maxBatch: number): WindowResult {
  const plan = compilePipeline('p', spec(c), SCHEMA, 'ts');
  const rnd = mulberry32(seed);
  const aggregators = Array.from({ length: workers }, () => new WindowAggregator(plan));
  const partials: Partial[] = [];
  let seq = 0;
  for (let from = 0; from < data.length; ) {
    const size = rnd() < 0.1 ? 1 + Math.floor(rnd() * 3) : 1 + Math.floor(rnd() * maxBatch);
    const to = Math.min(data.length, from + size);
    const p = aggregators[seq % workers]!.run(sliceBatch(data, from, to), seq);
    partials.push(deserializePartial(serializePartial(p)));
    seq++;
    from = to;
  }
  for (let i = partials.length - 1; i > 0; i--) {
    const j = Math.floor(rnd() * (i + 1));
    [partials[i], partials[j]] = [partials[j]!, partials[i]!];
  }
  const state = new WindowState(plan);
  for (const p of partials) state.merge(p);
  const out = state.closeAll();
  assert.ok(out !== null, 'no windows emitted');
  assert.equal(state.openGroups, 0);
  return out;
}

function keyText(col: Column, i: number): string | null {
  if (col.valid !== null && col.valid[i] === 0) return null;
  switch (col.type) {
    case 'int64': return int64ToString(col.words[2 * i]!, col.words[2 * i + 1]!);
    case 'string': return col.dict[col.codes[i]!]!;
    case 'bool': return String(col.values[i] === 1);
    default: return String(col.values[i]);
  }
}

interface Row { sortKey: string; values: (number | string | null)[]; scales?: (number | string | null)[] }

function sluiceRows(out: WindowResult): Row[] {
  const rows: Row[] = [];
  for (let i = 0; i < out.rows; i++) {
    const keys = out.keys.map((k) => keyText(k, i));
    rows.push({
      sortKey: JSON.stringify([out.windowStart[i], out.windowEnd[i], ...keys]),
      values: out.values.map((v) => (v.valid[i] === 1 ? v.values[i]! : null)),
    });
  }
  return rows.sort((a, b) => (a.sortKey < b.sortKey ? -1 : a.sortKey > b.sortKey ? 1 : 0));
}

// --- the DuckDB side ---------------------------------------------------------------------------

const fdiv = (a: string, b: number): string => `((${a}) - (((${a}) % ${b} + ${b}) % ${b})) // ${b}`;

function oracleSql(c: Case): string {
  const where = c.where === undefined ? 'true' : c.where;
  const keys = c.groupBy.map((k) => `"${k}"`);
  const keySel = keys.map((k) => `${k}`).join(', ');
  const aggs = [...AGGS.map((a) => `${a.sql} AS "${a.name}"`), ...AGGS.map((a) => `${a.scale ?? 'NULL'} AS "scale_${a.name}"`)].join(', ');
  const gb = (extra: string): string => [extra, ...keys].join(', ');
  const w = c.window;
  if (w.kind === 'tumbling') {
    const S = w.size;
    return `SELECT ${fdiv('ts', S)} * ${S} AS ws, ${fdiv('ts', S)} * ${S} + ${S} AS we${keys.length ? ', ' + keySel : ''}, ${aggs}
            FROM t WHERE ${where} GROUP BY ${gb('ws')}`;
  }
  if (w.kind === 'hopping') {
    const { size, slide } = w;
    return `WITH f AS (SELECT *, ${fdiv(`ts - ${size}`, slide)} + 1 AS k0, ${fdiv('ts', slide)} AS k1 FROM t WHERE ${where}),
                 e AS (SELECT *, unnest(range(k0, k1 + 1)) AS k FROM f)
            SELECT k * ${slide} AS ws, k * ${slide} + ${size} AS we${keys.length ? ', ' + keySel : ''}, ${aggs}
            FROM e GROUP BY ${gb('k')}`;
  }
  const gap = w.gap;
  const part = keys.length ? `PARTITION BY ${keySel}` : '';
  return `WITH f AS (SELECT * FROM t WHERE ${where}),
               s AS (SELECT *, CASE WHEN ts - lag(ts) OVER (${part} ORDER BY ts, rid) < ${gap} THEN 0 ELSE 1 END AS brk FROM f),
               s2 AS (SELECT *, sum(brk) OVER (${part} ORDER BY ts, rid ROWS UNBOUNDED PRECEDING) AS sid FROM s)
          SELECT min(ts) AS ws, max(ts) + ${gap} AS we${keys.length ? ', ' + keySel : ''}, ${aggs}
          FROM s2 GROUP BY ${gb('sid')}`;
}

function norm(v: JsValue): number | string | null {
  if (v === null) return null;
  if (typeof v === 'bigint') return Number(v);
  if (typeof v === 'boolean') return String(v);
  return v;
}

async function oracleRows(conn: DuckDBConnection, c: Case): Promise<Row[]> {
  const raw = await queryRows(conn, oracleSql(c));
  const nk = c.groupBy.length;
  return raw
    .map((r) => {
      const keys = r.slice(2, 2 + nk).map((v) => (v === null ? null : typeof v === 'boolean' ? String(v) : String(v)));
      const aggs = r.slice(2 + nk).map(norm);
      return { sortKey: JSON.stringify([Number(r[0]), Number(r[1]), ...keys]), values: aggs.slice(0, AGGS.length), scales: aggs.slice(AGGS.length) };
    })
    .sort((a, b) => (a.sortKey < b.sortKey ? -1 : a.sortKey > b.sortKey ? 1 : 0));
}

function compareValue(cmp: Compare, ours: number | string | null, want: number | string | null, scale: number | string | null | undefined, where: string): void {
  if (want === null || ours === null) {
    // approx_count_distinct of nothing is 0, count(DISTINCT) of nothing is 0 too
    assert.equal(ours, want, where);
    return;
  }
  const o = Number(ours);
  switch (cmp) {
    case 'exact':
      assert.ok(Object.is(o, Number(want)) || o === Number(want), `${where}: ${o} != ${want}`);
      return;
    case 'intsum':
      // DuckDB's exact HUGEINT text, rounded once to a double
      assert.equal(o, Number(BigInt(String(want))), where);
      return;
    case 'rel': {
      const w = Number(want);
      const mag = Math.max(1, Math.abs(w), scale === null || scale === undefined ? 0 : Math.abs(Number(scale)));
      assert.ok(Math.abs(o - w) <= 1e-12 * mag, `${where}: ${o} vs ${w} (scale ${mag})`);
      return;
    }
    case 'hll': {
      const w = Number(want);
      // p = 14: σ = 0.81 %; small sets are counted exactly while sparse
      assert.ok(Math.abs(o - w) <= Math.max(0, 0.033 * w), `${where}: ${o} vs exact ${w}`);
      return;
    }
    case 'quantile': {
      const w = Number(want);
      assert.ok(Math.abs(o - w) <= 0.01 * Math.abs(w) + 1e-9, `${where}: ${o} vs exact ${w}`);
      return;
    }
  }
}

// --- the tests -----------------------------------------------------------------------------------

describe('oracle: Sluice kernels vs DuckDB SQL', () => {
  const data = makeData(20261121, 30_000);
  let db: Awaited<ReturnType<typeof openMemory>>;

  before(async () => {
    db = await openMemory();
    await loadBatch(db.conn, 't', data);
  });
  after(() => db.close());

  for (const c of CASES) {
    test(c.name, async () => {
      const want = await oracleRows(db.conn, c);
      assert.ok(want.length > 0);
      const runs: [number, number, number][] = [
        [1, 1, 65_536],
        [2, 3, 500],
        [3, 2, 37],
      ];
      let previous: Row[] | null = null;
      for (const [seed, workers, maxBatch] of runs) {
        const got = sluiceRows(runSluice(c, data, seed, workers, maxBatch));
        assert.equal(got.length, want.length, `${c.name}: ${got.length} windows×groups, DuckDB has ${want.length}`);
        for (let i = 0; i < want.length; i++) {
          assert.equal(got[i]!.sortKey, want[i]!.sortKey, `${c.name}: row ${i} key`);
          AGGS.forEach((a, k) => compareValue(a.cmp, got[i]!.values[k]!, want[i]!.values[k]!, want[i]!.scales?.[k], `${c.name} row ${i} ${a.name} (${got[i]!.sortKey})`));
        }
        // determinism: different splits, worker counts and merge orders → identical bits
        if (previous !== null) assert.deepEqual(got, previous, `${c.name}: results differ between splits`);
        previous = got;
      }
    });
  }
});
