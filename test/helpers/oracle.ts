/**
 * Shared pieces of the runtime tests (test/engine/runtime*.test.ts): seeded event data for a
 * `bids`-like stream, encoding it as batches of any size in every wire format, feeding an
 * engine in order, reading result tables back, and the DuckDB oracle — SQL that computes each
 * window kind and aggregate independently of Sluice's kernels (the same ideas as
 * test/engine/oracle.test.ts, which tests the kernels without the runtime).
 *
 * Late events are decided here in plain JavaScript with the per-row definition of
 * docs/pipelines.md: the watermark before row r is max(event time of every earlier row of the
 * stream) − maxOutOfOrder; a tumbling / hopping row is late for a window when window end +
 * lateness ≤ that watermark; a session row when t < watermark − lateness.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DuckDBConnection } from '@duckdb/node-api';
import type { Sluice, IngestResult } from '../../engine/runtime.js';
import type { WindowSpec } from '../../engine/config.js';
import { int64ToString, makeSchema, schemaFromRecord, sliceBatch, type Batch, type Column, type ColumnType } from '../../engine/schema.js';
import type { BatchFormat } from '../../native-free-kernels/decode.js';
import { encodeArrow, encodeArrowDictionary } from '../../native-free-kernels/encode-arrow.js';
import { encodeMsgpackColumns, encodeMsgpackRows } from '../../native-free-kernels/encode-msgpack.js';
import { encodeNdjson } from '../../native-free-kernels/encode-json.js';
import { loadBatch, queryRows, type JsValue } from './duckdb.js';
import { mulberry32 } from './random.js';

// --- data -------------------------------------------------------------------------------------

/** The stream's columns, in config order (the result and late tables follow it). */
export const BIDS_COLUMNS = {
  id: 'int64',
  auction: 'int64',
  bidder: 'int64',
  price: 'float64',
  channel: 'string',
  qty: 'int32',
  flag: 'bool',
  ts: 'timestamp',
} as const satisfies Record<string, ColumnType>;

export const BIDS_SCHEMA = schemaFromRecord(BIDS_COLUMNS);

/** 1_700_000_000_000 = 2023-11-14T22:13:20Z: every event time is a few minutes after it. */
export const T0 = 1_700_000_000_000;

const HOT_AUCTIONS = [1n, 2n, 3n, 42n, -7n, -1_000_000_007n, 2n ** 60n + 7n, -(2n ** 55n) + 3n, 2n ** 53n + 1n, 9_007_199_254_740_993n];
const CHANNELS = ['web', 'app', 'spam', 'ünïcødé ✓', '', 'quote "x"'];

export interface EventOptions {
  seed: number;
  n: number;
  /** ms between consecutive events' base times */
  step: number;
  /** each event time is its base time plus a uniform integer in [0, disorder] (≤ maxOutOfOrder keeps every event on time) */
  disorder: number;
  /** fraction of events sent back in time by up to `lateSpan` ms below the base (0 = none) */
  lateRate?: number;
  lateSpan?: number;
}

function wordsOf(v: bigint): [number, number] {
  const b = BigInt.asUintN(64, v);
  return [Number(b & 0xffffffffn) | 0, Number(b >> 32n) | 0];
}

/**
 * Seeded events: unique ids (beyond 2^53), int64 keys beyond 2^53 and negative, nulls in every
 * column but the event time, strings with non-ASCII text, int32 limits. No NaN, infinities or
 * −0: NDJSON cannot carry the first two and MessagePack writes −0 as 0, and the same events
 * must decode to the same bits in every format.
 */
export function makeEvents(o: EventOptions): Batch {
  const n = o.n;
  const id = new Int32Array(2 * n), auction = new Int32Array(2 * n), bidder = new Int32Array(2 * n);
  const price = new Float64Array(n), qty = new Int32Array(n), flag = new Uint8Array(n), ts = new Float64Array(n);
  const codes = new Int32Array(n);
  const vA = new Uint8Array(n).fill(1), vB = new Uint8Array(n).fill(1), vP = new Uint8Array(n).fill(1);
  const vC = new Uint8Array(n).fill(1), vQ = new Uint8Array(n).fill(1), vF = new Uint8Array(n).fill(1);
  for (let i = 0; i < n; i++) {
    // one generator per event: a longer stream with the same seed starts with the same events
    const rnd = mulberry32((o.seed * 0x9e3779b1) ^ Math.imul(i + 1, 0x85ebca6b));
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
    [id[2 * i], id[2 * i + 1]] = wordsOf(2n ** 60n + BigInt(i));
    if (rnd() < 0.02) vA[i] = 0;
    else [auction[2 * i], auction[2 * i + 1]] = wordsOf(rnd() < 0.6 ? pick(HOT_AUCTIONS) : BigInt(Math.floor(rnd() * 400) - 100));
    if (rnd() < 0.03) vB[i] = 0;
    else [bidder[2 * i], bidder[2 * i + 1]] = wordsOf(rnd() < 0.05 ? 2n ** 62n + BigInt(Math.floor(rnd() * 20)) : BigInt(Math.floor(rnd() * 300)));
    const u = rnd();
    price[i] = u < 0.03 ? -(1 + Math.round(rnd() * 50000)) / 100 : u < 0.05 ? 1e12 + Math.round(rnd() * 1000) : (1 + Math.round(rnd() * 100000)) / 100;
    if (rnd() < 0.05) { vP[i] = 0; price[i] = 0; }
    codes[i] = Math.floor(rnd() * CHANNELS.length);
    if (rnd() < 0.03) { vC[i] = 0; codes[i] = 0; }
    qty[i] = rnd() < 0.05 ? (rnd() < 0.5 ? 2147483647 - Math.floor(rnd() * 10) : -2147483648 + Math.floor(rnd() * 10)) : Math.floor(rnd() * 200) - 50;
    if (rnd() < 0.02) { vQ[i] = 0; qty[i] = 0; }
    flag[i] = rnd() < 0.5 ? 1 : 0;
    if (rnd() < 0.05) { vF[i] = 0; flag[i] = 0; }
    const base = T0 + i * o.step;
    const late = (o.lateRate ?? 0) > 0 && rnd() < o.lateRate!;
    ts[i] = late ? base - Math.floor(rnd() * (o.lateSpan ?? 0)) : base + Math.floor(rnd() * (o.disorder + 1));
  }
  return {
    schema: BIDS_SCHEMA,
    length: n,
    columns: [
      { type: 'int64', words: id, valid: null },
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

/** Event times of a batch (the `ts` column). */
export function eventTimes(batch: Batch): Float64Array {
  const c = batch.columns[BIDS_SCHEMA.index.get('ts')!]!;
  if (c.type !== 'timestamp') throw new Error('ts is not a timestamp column');
  return c.values;
}

// --- wire formats -----------------------------------------------------------------------------

export type WireFormat = 'arrow' | 'arrow-dict' | 'msgpack-rows' | 'msgpack-cols' | 'ndjson';

export interface Payload {
  readonly bytes: Uint8Array;
  readonly format: BatchFormat;
}

const ENCODERS: Record<WireFormat, [(b: Batch) => Uint8Array, BatchFormat]> = {
  arrow: [encodeArrow, 'arrow'],
  'arrow-dict': [encodeArrowDictionary, 'arrow'],
  'msgpack-rows': [encodeMsgpackRows, 'msgpack'],
  'msgpack-cols': [encodeMsgpackColumns, 'msgpack'],
  ndjson: [encodeNdjson, 'ndjson'],
};

/** The events cut into consecutive batches of `size` rows (the last one shorter), encoded. */
export function encodeBatches(events: Batch, size: number, wire: WireFormat): Payload[] {
  const [encode, format] = ENCODERS[wire];
  const out: Payload[] = [];
  for (let from = 0; from < events.length; from += size) out.push({ bytes: encode(sliceBatch(events, from, Math.min(events.length, from + size))), format });
  return out;
}

export interface FeedOptions {
  /** batches sent and not acknowledged yet, at most (default 4096) */
  maxOutstanding?: number;
  /** called as each batch is acknowledged, with its index in `payloads` (0-based) */
  onAck?: (r: IngestResult, index: number) => void;
}

/**
 * Ingest payloads strictly in order (batch seqs follow the iteration order) without waiting for each
 * acknowledgement: `tryIngest` is synchronous, so the order of calls is the order of seqs;
 * when the engine is full, wait for the oldest outstanding batch and try again. Resolves with
 * every batch's result (rejects with the first failure, after all have settled).
 */
export async function feed(engine: Sluice, stream: string, payloads: Iterable<Payload>, opts: FeedOptions = {}): Promise<IngestResult[]> {
  const maxOutstanding = opts.maxOutstanding ?? 4096;
  const all: Promise<IngestResult>[] = [];
  const track = (r: Promise<IngestResult>, i: number): void => {
    all.push(r);
    r.then((x) => opts.onAck?.(x, i), () => {});
  };
  let oldest = 0;
  let i = -1;
  for (const p of payloads) {
    i++;
    for (;;) {
      const r = engine.tryIngest(stream, p.bytes, p.format);
      if (r !== null) {
        track(r, i);
        break;
      }
      if (oldest === all.length) {
        // nothing of ours outstanding, yet full: let ingest() do the waiting
        const w = engine.ingest(stream, p.bytes, p.format);
        track(w, i);
        await w.catch(() => {});
        oldest = all.length;
        break;
      }
      await all[oldest++]!.catch(() => {});
    }
    while (all.length - oldest >= maxOutstanding) await all[oldest++]!.catch(() => {});
  }
  const settled = await Promise.allSettled(all);
  const failed = settled.find((s) => s.status === 'rejected');
  if (failed !== undefined) throw (failed as PromiseRejectedResult).reason;
  return settled.map((s) => (s as PromiseFulfilledResult<IngestResult>).value);
}

// --- engine set-up --------------------------------------------------------------------------

const created: string[] = [];

/** A new, empty data directory (removed by removeFreshDirs). */
export function freshDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-'));
  created.push(dir);
  return dir;
}

/** Remove every directory freshDir made in this process (call once every engine is closed). */
export function removeFreshDirs(): void {
  for (const dir of created.splice(0)) rmSync(dir, { recursive: true, force: true });
}

export interface PipelineDef {
  from?: string;
  where?: string;
  window: Record<string, unknown>;
  groupBy: string[];
  select: Record<string, string>;
  lateness?: string;
}

export interface ConfigOptions {
  dir: string;
  threads: number;
  pipelines: Record<string, PipelineDef>;
  maxOutOfOrder?: string;
  ack?: 'accepted' | 'durable';
  archive?: boolean;
  storage?: Record<string, unknown>;
  workers?: Record<string, unknown>;
  server?: Record<string, unknown>;
}

/**
 * A config with one stream `bids` (BIDS_COLUMNS). idleTimeout is an hour: the tests' results
 * must not depend on how long a run pauses between batches.
 */
export function bidsConfig(o: ConfigOptions): Record<string, unknown> {
  return {
    server: { ...o.server },
    storage: { dir: o.dir, ...o.storage },
    workers: { threads: o.threads, ...o.workers },
    streams: {
      bids: {
        schema: { ...BIDS_COLUMNS },
        eventTime: { column: 'ts', maxOutOfOrder: o.maxOutOfOrder ?? '2s', idleTimeout: '1h' },
        archive: o.archive ?? false,
        ack: o.ack ?? 'accepted',
      },
    },
    pipelines: Object.fromEntries(Object.entries(o.pipelines).map(([name, p]) => [name, { from: 'bids', lateness: '0s', ...p }])),
  };
}

/** Every row of a query, ORDER BY every column: the form two runs are compared in. */
export async function tableRows(engine: Sluice, table: string): Promise<unknown[][]> {
  return (await engine.query(`SELECT * FROM "${table}" ORDER BY ALL`)).rows;
}

// --- aggregates and their SQL ---------------------------------------------------------------

export type Compare = 'exact' | 'rel' | 'hll' | 'quantile' | 'intsum';

export interface AggDef {
  /** output column */
  readonly name: string;
  /** Sluice's select entry */
  readonly ours: string;
  /** the DuckDB expression over the oracle table */
  readonly sql: string;
  readonly cmp: Compare;
  /**
   * 'rel': the magnitude the error is relative to. DuckDB sums doubles in plain double
   * precision, so with cancellation its own error is relative to Σ|x|, not to the result.
   */
  readonly scale?: string;
}

/** One of each aggregate kind, over columns of every type. `rid` is the arrival order (first/last ties). */
export const AGGS: readonly AggDef[] = [
  { name: 'n', ours: 'count()', sql: 'count(*)', cmp: 'exact' },
  { name: 'n_price', ours: 'count(price)', sql: 'count(price)', cmp: 'exact' },
  { name: 's_price', ours: 'sum(price)', sql: 'sum(price)', cmp: 'rel', scale: 'sum(abs(price))' },
  { name: 's_qty', ours: 'sum(qty)', sql: 'sum(qty)::VARCHAR', cmp: 'intsum' },
  { name: 's_auction', ours: 'sum(auction)', sql: 'sum(auction)::VARCHAR', cmp: 'intsum' },
  { name: 'mn', ours: 'min(price)', sql: 'min(price)', cmp: 'exact' },
  { name: 'mx_qty', ours: 'max(qty)', sql: 'max(qty)::DOUBLE', cmp: 'exact' },
  { name: 'mx_ts', ours: 'max(ts)', sql: 'max(ts)::DOUBLE', cmp: 'exact' },
  { name: 'mn_flag', ours: 'min(flag)', sql: 'min(flag::INTEGER)::DOUBLE', cmp: 'exact' },
  { name: 'av', ours: 'avg(price)', sql: 'avg(price)', cmp: 'rel', scale: 'avg(abs(price))' },
  { name: 'av_auction', ours: 'avg(auction)', sql: 'avg(auction)', cmp: 'rel', scale: 'avg(abs(auction::DOUBLE))' },
  { name: 'f', ours: 'first(price)', sql: 'first(price ORDER BY ts, rid) FILTER (WHERE price IS NOT NULL)', cmp: 'exact' },
  { name: 'l_bidder', ours: 'last(bidder)', sql: 'last(bidder::DOUBLE ORDER BY ts, rid) FILTER (WHERE bidder IS NOT NULL)', cmp: 'exact' },
  { name: 'v', ours: 'var(price)', sql: 'var_samp(price)', cmp: 'rel', scale: 'var_samp(price) + avg(price) ^ 2' },
  { name: 'acd', ours: 'approx_count_distinct(bidder)', sql: 'count(DISTINCT bidder)', cmp: 'hll' },
  { name: 'q90', ours: 'approx_quantile(price, 0.9)', sql: 'quantile_disc(price, 0.9)', cmp: 'quantile' },
];

export function selectOf(aggs: readonly AggDef[]): Record<string, string> {
  return Object.fromEntries(aggs.map((a) => [a.name, a.ours]));
}

/** A pipeline's window as the oracle needs it (ms). */
export type OracleWindow = WindowSpec;

export interface OracleCase {
  readonly window: OracleWindow;
  readonly groupBy: readonly string[];
  /** SQL filter over the oracle table (the pipeline's `where`, in DuckDB syntax) */
  readonly where?: string;
  /** a boolean SQL expression: rows (tumbling / session) or row-windows (hopping, per `k`) to leave out as late */
  readonly lateSql?: string;
  readonly aggs: readonly AggDef[];
}

const fdiv = (a: string, b: number): string => `((${a}) - (((${a}) % ${b} + ${b}) % ${b})) // ${b}`;

/**
 * The oracle's SQL over table `t` (the events, `rid` their arrival order): one row per
 * (window, group) with window start and end in ms, the group keys as text, each aggregate,
 * then each aggregate's error scale.
 */
export function oracleSql(c: OracleCase): string {
  const where = c.where ?? 'true';
  const late = c.lateSql ?? 'false';
  const keys = c.groupBy.map((k) => `"${k}"`);
  const keySel = keys.map((k) => `${k}::VARCHAR`).join(', ');
  const aggs = [...c.aggs.map((a) => `${a.sql} AS "${a.name}"`), ...c.aggs.map((a) => `${a.scale ?? 'NULL'} AS "scale_${a.name}"`)].join(', ');
  const gb = (extra: string): string => [extra, ...keys].join(', ');
  const w = c.window;
  const withKeys = keys.length ? `, ${keySel}` : '';
  if (w.kind === 'tumbling') {
    const S = w.size;
    return `WITH f AS (SELECT *, ${fdiv('ts', S)} * ${S} AS ws FROM t WHERE (${where}) AND NOT (${late}))
            SELECT ws, ws + ${S} AS we${withKeys}, ${aggs} FROM f GROUP BY ${gb('ws')}`;
  }
  if (w.kind === 'hopping') {
    const { size, slide } = w;
    return `WITH f AS (SELECT *, ${fdiv(`ts - ${size}`, slide)} + 1 AS k0, ${fdiv('ts', slide)} AS k1 FROM t WHERE ${where}),
                 e AS (SELECT *, unnest(range(k0, k1 + 1)) AS k FROM f),
                 g AS (SELECT * FROM e WHERE NOT (${late}))
            SELECT k * ${slide} AS ws, k * ${slide} + ${size} AS we${withKeys}, ${aggs}
            FROM g GROUP BY ${gb('k')}`;
  }
  const gap = w.gap;
  const part = keys.length ? `PARTITION BY ${keys.join(', ')}` : '';
  return `WITH f AS (SELECT * FROM t WHERE (${where}) AND NOT (${late})),
               s AS (SELECT *, CASE WHEN ts - lag(ts) OVER (${part} ORDER BY ts, rid) < ${gap} THEN 0 ELSE 1 END AS brk FROM f),
               s2 AS (SELECT *, sum(brk) OVER (${part} ORDER BY ts, rid ROWS UNBOUNDED PRECEDING) AS sid FROM s)
          SELECT min(ts) AS ws, max(ts) + ${gap} AS we${withKeys}, ${aggs}
          FROM s2 GROUP BY ${gb('sid')}`;
}

export interface ResultRow {
  /** JSON of [window start ms, window end ms, ...keys as text] */
  readonly sortKey: string;
  readonly values: (number | string | null)[];
  readonly scales?: (number | string | null)[];
}

function norm(v: JsValue | unknown): number | string | null {
  if (v === null || v === undefined) return null;
  if (typeof v === 'bigint') return Number(v);
  if (typeof v === 'boolean') return String(v);
  if (typeof v === 'number' || typeof v === 'string') return v;
  return String(v);
}

const bySortKey = (a: ResultRow, b: ResultRow): number => (a.sortKey < b.sortKey ? -1 : a.sortKey > b.sortKey ? 1 : 0);

/** The oracle's rows, sorted by window and keys. */
export async function oracleRows(conn: DuckDBConnection, c: OracleCase): Promise<ResultRow[]> {
  const raw = await queryRows(conn, oracleSql(c));
  const nk = c.groupBy.length;
  return raw.map((r) => {
    const keys = r.slice(2, 2 + nk).map((v) => (v === null ? null : String(v)));
    const aggs = r.slice(2 + nk).map(norm);
    return { sortKey: JSON.stringify([Number(r[0]), Number(r[1]), ...keys]), values: aggs.slice(0, c.aggs.length), scales: aggs.slice(c.aggs.length) };
  }).sort(bySortKey);
}

/** A pipeline's result table in the same form (window times in ms, keys as text). */
export async function engineRows(engine: Sluice, pipeline: string, groupBy: readonly string[], aggs: readonly AggDef[]): Promise<ResultRow[]> {
  const keys = groupBy.map((k) => `, "${k}"::VARCHAR`).join('');
  const cols = aggs.map((a) => `, "${a.name}"`).join('');
  const { rows } = await engine.query(`SELECT epoch_ms(window_start), epoch_ms(window_end)${keys}${cols} FROM "${pipeline}"`);
  const nk = groupBy.length;
  return rows.map((r) => ({
    sortKey: JSON.stringify([Number(r[0]), Number(r[1]), ...r.slice(2, 2 + nk).map((v) => (v === null ? null : String(v)))]),
    values: r.slice(2 + nk).map(norm),
  })).sort(bySortKey);
}

function compareValue(cmp: Compare, ours: number | string | null, want: number | string | null, scale: number | string | null | undefined, where: string): void {
  if (want === null || ours === null) {
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
      // exact while sparse (≤ 1536 distinct values), then p = 14: σ = 0.81 %
      assert.ok(Math.abs(o - w) <= 0.033 * w, `${where}: ${o} vs exact ${w}`);
      return;
    }
    case 'quantile': {
      const w = Number(want);
      assert.ok(Math.abs(o - w) <= 0.01 * Math.abs(w) + 1e-9, `${where}: ${o} vs exact ${w}`);
      return;
    }
  }
}

/** Same windows and groups exactly; each aggregate within its stated error (docs/pipelines.md). */
export function assertMatchesOracle(label: string, got: readonly ResultRow[], want: readonly ResultRow[], aggs: readonly AggDef[]): void {
  assert.ok(want.length > 0, `${label}: the oracle has no rows`);
  if (got.length !== want.length) {
    const g = new Set(got.map((r) => r.sortKey));
    const w = new Set(want.map((r) => r.sortKey));
    const missing = [...w].filter((k) => !g.has(k)).slice(0, 5);
    const extra = [...g].filter((k) => !w.has(k)).slice(0, 5);
    assert.fail(`${label}: ${got.length} windows×groups, the oracle has ${want.length}; missing ${JSON.stringify(missing)}, extra ${JSON.stringify(extra)}`);
  }
  for (let i = 0; i < want.length; i++) {
    assert.equal(got[i]!.sortKey, want[i]!.sortKey, `${label}: row ${i} key`);
    aggs.forEach((a, k) => compareValue(a.cmp, got[i]!.values[k]!, want[i]!.values[k]!, want[i]!.scales?.[k], `${label} row ${i} ${a.name} (${got[i]!.sortKey})`));
  }
}

// --- the oracle table ---------------------------------------------------------------------

/**
 * Load events into DuckDB table `t` (timestamps as BIGINT ms, `rid` = arrival order) with extra
 * per-row float64 columns (e.g. the watermark before each row).
 */
export async function loadOracleTable(conn: DuckDBConnection, events: Batch, extra: Record<string, Float64Array> = {}): Promise<void> {
  const names = Object.keys(extra);
  const schema = makeSchema([...events.schema.fields, ...names.map((name) => ({ name, type: 'float64' as const }))]);
  const columns: Column[] = [...events.columns, ...names.map((name): Column => ({ type: 'float64', values: extra[name]!, valid: null }))];
  await loadBatch(conn, 't', { schema, length: events.length, columns });
}

/** The watermark before each row: max(event time of every earlier row) − maxOutOfOrder (−Infinity for the first). */
export function rowWatermarks(ts: Float64Array, maxOutOfOrder: number): Float64Array {
  const wm = new Float64Array(ts.length);
  let max = -Infinity;
  for (let r = 0; r < ts.length; r++) {
    wm[r] = max - maxOutOfOrder;
    if (ts[r]! > max) max = ts[r]!;
  }
  return wm;
}

const floorDiv = (a: number, b: number): number => Math.floor(a / b);

/**
 * Per row, the first window index k (window [k·slide, k·slide + size)) that is NOT late, by
 * the per-row definition: tumbling / hopping windows of a row are k0..k1 (k0 = ⌊(t − size) /
 * slide⌋ + 1, k1 = ⌊t / slide⌋) and a window is late when its end + lateness ≤ wm. Ends grow
 * with k, so the late windows are a prefix. Returns k1 + 1 when every window is late.
 */
export function firstOnTimeWindow(t: number, wm: number, size: number, slide: number, lateness: number): number {
  const k0 = floorDiv(t - size, slide) + 1;
  const k1 = floorDiv(t, slide);
  let k = k0;
  while (k <= k1 && k * slide + size + lateness <= wm) k++;
  return k;
}

/** Whether row r (event time t, watermark before it wm) is late for a session window. */
export function sessionLate(t: number, wm: number, lateness: number): boolean {
  return t < wm - lateness;
}

/** The int64 id column of a batch as decimal text, one per row. */
export function idsOf(events: Batch): string[] {
  const c = events.columns[BIDS_SCHEMA.index.get('id')!]!;
  if (c.type !== 'int64') throw new Error('id is not int64');
  const out: string[] = [];
  for (let i = 0; i < events.length; i++) out.push(int64ToString(c.words[2 * i]!, c.words[2 * i + 1]!));
  return out;
}
