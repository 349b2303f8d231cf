/**
 * `npx sluice bench kernels` — the kernel library on one thread, on seeded data:
 *
 *   decoders        Arrow IPC, MessagePack (rows and columns), NDJSON, JSON array
 *   filter          price > 100 and channel != 'spam'
 *   pipeline        filter + tumbling 10 s window + group-by auction (10 K keys)
 *                   + count / sum / min / max  (the foundation issue's target: ≥ 50 M rows/s)
 *
 * Each row prints rows/s (median of the tinybench samples, after warm-up) beside a plain
 * typed-array loop doing the same work with no generality (direct-indexed arrays instead of a
 * hash table — the speed of light for this data) and beside DuckDB running the equivalent SQL
 * over the same rows in this process, with 1 thread and with every core, as ratios.
 */

import { Bench } from 'tinybench';
import { mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';
import { makeSchema, sliceBatch, type Batch, type StringColumn, type Float64Column, type TimestampColumn, type Int64Column } from '../engine/schema.js';
import { compilePipeline } from '../engine/plan.js';
import { WindowAggregator } from '../engine/window-aggregate.js';
import { WindowState } from '../engine/window-state.js';
import { deserializePartial, serializePartial } from '../native-free-kernels/partial.js';
import { checkExpression, compileFilter } from '../native-free-kernels/expression/index.js';
import { decodeArrow } from '../native-free-kernels/decode-arrow.js';
import { decodeMsgpack } from '../native-free-kernels/decode-msgpack.js';
import { decodeJson, decodeNdjson } from '../native-free-kernels/decode-json.js';
import { encodeArrow } from '../native-free-kernels/encode-arrow.js';
import { encodeMsgpackColumns, encodeMsgpackRows } from '../native-free-kernels/encode-msgpack.js';
import { encodeJson, encodeNdjson } from '../native-free-kernels/encode-json.js';
import { loadIntoDuckDB, BIDS_SQL_COLUMNS } from './duckdb-load.js';
import { mulberry32 } from './random.js';
import { markdownTable, millions } from './report.js';

export interface KernelBenchOptions {
  quick: boolean;
  json: boolean;
  log: (line: string) => void;
}

export interface BenchRow {
  name: string;
  rows: number;
  /** rows per second, median */
  sluice: number;
  baseline: number | null;
  duckdb1: number | null;
  duckdbAll: number | null;
}

export const BIDS = makeSchema([
  { name: 'auction', type: 'int64' },
  { name: 'bidder', type: 'int64' },
  { name: 'price', type: 'float64' },
  { name: 'channel', type: 'string' },
  { name: 'ts', type: 'timestamp' },
]);

export const CHANNELS = ['web', 'app', 'ios', 'android', 'partner', 'email', 'tv', 'spam'];
const KEYS = 10_000;
const WINDOW = 10_000;


/** Seeded bids: auctions uniform over 10 K ids, prices 0..1000, 8 channels, ~100 events/ms. */
export function makeBids(rows: number, seed = 42): Batch {
  const rnd = mulberry32(seed);
  const auction = new Int32Array(2 * rows);
  const bidder = new Int32Array(2 * rows);
  const price = new Float64Array(rows);
  const codes = new Int32Array(rows);
  const ts = new Float64Array(rows);
  const t0 = 1_700_000_000_000;
  for (let i = 0; i < rows; i++) {
    auction[2 * i] = Math.floor(rnd() * KEYS);
    bidder[2 * i] = Math.floor(rnd() * 1_000_000);
    price[i] = Math.round(rnd() * 100_000) / 100;
    codes[i] = Math.floor(rnd() * CHANNELS.length);
    ts[i] = t0 + Math.floor(i / 100) + Math.floor(rnd() * 50);
  }
  return {
    schema: BIDS,
    length: rows,
    columns: [
      { type: 'int64', words: auction, valid: null },
      { type: 'int64', words: bidder, valid: null },
      { type: 'float64', values: price, valid: null },
      { type: 'string', codes, dict: CHANNELS, valid: null },
      { type: 'timestamp', values: ts, valid: null },
    ],
  };
}

/** `batch` in consecutive slices of `size` rows (views, the last one shorter). */
export function splitBatch(batch: Batch, size: number): Batch[] {
  const out: Batch[] = [];
  for (let from = 0; from < batch.length; from += size) out.push(sliceBatch(batch, from, Math.min(batch.length, from + size)));
  return out;
}

/** Median rows/s of a tinybench task that processes `rows` rows per call. */
function rate(bench: Bench, name: string, rows: number): number {
  const task = bench.getTask(name);
  const r = task?.result;
  if (r === undefined || (r.state !== 'completed' && r.state !== 'aborted-with-statistics')) {
    throw new Error(`benchmark ${name} did not complete${r !== undefined && r.state === 'errored' ? `: ${r.error.message}` : ''}`);
  }
  return rows / (r.latency.p50 / 1000);
}

// --- plain typed-array baselines -------------------------------------------------------------

/** The filter as a hand-written loop over the two columns. */
function baselineFilter(batches: Batch[], out: Int32Array): number {
  let total = 0;
  for (const b of batches) {
    const price = (b.columns[2] as Float64Column).values;
    const codes = (b.columns[3] as StringColumn).codes;
    const spam = (b.columns[3] as StringColumn).dict.indexOf('spam');
    let k = 0;
    for (let i = 0; i < b.length; i++) {
      out[k] = i;
      k += (price[i]! > 100 ? 1 : 0) & (codes[i] !== spam ? 1 : 0);
    }
    total += k;
  }
  return total;
}

/** The pipeline with direct-indexed arrays (auction ids are 0..9999, windows few): no hashing. */
function baselinePipeline(batches: Batch[], cnt: Float64Array, sum: Float64Array, mn: Float64Array, mx: Float64Array): void {
  cnt.fill(0);
  sum.fill(0);
  mn.fill(Infinity);
  mx.fill(-Infinity);
  for (const b of batches) {
    const auction = (b.columns[0] as Int64Column).words;
    const price = (b.columns[2] as Float64Column).values;
    const codes = (b.columns[3] as StringColumn).codes;
    const spam = (b.columns[3] as StringColumn).dict.indexOf('spam');
    const ts = (b.columns[4] as TimestampColumn).values;
    const base = Math.floor(ts[0]! / WINDOW);
    for (let i = 0; i < b.length; i++) {
      const p = price[i]!;
      if (p > 100 && codes[i] !== spam) {
        const g = ((Math.floor(ts[i]! / WINDOW) - base) & 3) * KEYS + auction[2 * i]!;
        cnt[g]!++;
        sum[g]! += p;
        if (p < mn[g]!) mn[g] = p;
        if (p > mx[g]!) mx[g] = p;
      }
    }
  }
}

// --- DuckDB -----------------------------------------------------------------------------------

async function duckdbRates(
  conn: DuckDBConnection,
  threads: number,
  quick: boolean,
  queries: Record<string, { sql: string; rows: number }>,
): Promise<Record<string, number>> {
  await conn.run(`SET threads = ${threads}`);
  const bench = new Bench({ time: quick ? 300 : 1500, warmupTime: quick ? 100 : 300 });
  for (const [name, q] of Object.entries(queries)) bench.add(name, async () => { await conn.run(q.sql); });
  await bench.run();
  const out: Record<string, number> = {};
  for (const [name, q] of Object.entries(queries)) out[name] = rate(bench, name, q.rows);
  return out;
}

// --- the suite ----------------------------------------------------------------------------------

/** the batch size of the partials the merge case merges */
const MERGE_BATCH_ROWS = 16_384;

export async function runKernelBench(opts: KernelBenchOptions): Promise<BenchRow[]> {
  const log = opts.log;
  const rows = opts.quick ? 262_144 : 1_048_576;
  const batchRows = 65_536;
  const data = makeBids(rows);
  const batches = splitBatch(data, batchRows);
  log(`kernels: ${rows.toLocaleString('en-US')} seeded bids in ${batches.length} batches of ${batchRows.toLocaleString('en-US')} rows, one thread`);

  // encoded forms of one batch for the decoders
  const one = batches[0]!;
  const encoded = {
    arrow: encodeArrow(one),
    msgpackRows: encodeMsgpackRows(one),
    msgpackColumns: encodeMsgpackColumns(one),
    ndjson: encodeNdjson(one),
    json: encodeJson(one),
  };

  const where = "price > 100 and channel != 'spam'";
  const filter = compileFilter(checkExpression(where, BIDS));
  const sel = new Int32Array(batchRows);
  const plan = compilePipeline('bid_stats', {
    from: 'bids',
    where,
    window: { kind: 'tumbling', size: WINDOW },
    groupBy: ['auction'],
    select: { bids: 'count()', total: 'sum(price)', min_price: 'min(price)', max_price: 'max(price)' },
    lateness: 0,
  }, BIDS, 'ts');
  const aggregator = new WindowAggregator(plan);
  const cnt = new Float64Array(4 * KEYS), sum = new Float64Array(4 * KEYS), mn = new Float64Array(4 * KEYS), mx = new Float64Array(4 * KEYS);

  // what the state thread receives: one serialized partial per 16 K-row batch (the e2e latency
  // run's batches), merged into the open windows
  const partials = splitBatch(data, MERGE_BATCH_ROWS).map((b, i) => serializePartial(aggregator.run(b, i)));

  const time = opts.quick ? 400 : 2000;
  const bench = new Bench({ time, warmupTime: opts.quick ? 100 : 500 });
  let sink = 0;
  bench
    .add('decode arrow', () => { sink += decodeArrow(encoded.arrow, BIDS).length; })
    .add('decode msgpack rows', () => { sink += decodeMsgpack(encoded.msgpackRows, BIDS).length; })
    .add('decode msgpack columns', () => { sink += decodeMsgpack(encoded.msgpackColumns, BIDS).length; })
    .add('decode ndjson', () => { sink += decodeNdjson(encoded.ndjson, BIDS).length; })
    .add('decode json', () => { sink += decodeJson(encoded.json, BIDS).length; })
    .add('filter', () => { for (const b of batches) sink += filter(b, null, b.length, sel); })
    .add('filter baseline', () => { sink += baselineFilter(batches, sel); })
    .add('pipeline', () => { for (const [i, b] of batches.entries()) sink += aggregator.run(b, i).groups; })
    .add('pipeline+partial', () => { for (const [i, b] of batches.entries()) sink += serializePartial(aggregator.run(b, i)).byteLength; })
    .add('merge partials', () => {
      const st = new WindowState(plan);
      for (const buf of partials) st.merge(deserializePartial(buf));
      sink += st.openGroups;
    })
    .add('pipeline baseline', () => { baselinePipeline(batches, cnt, sum, mn, mx); sink += cnt[0]!; });
  log('running Sluice kernels and baselines ...');
  await bench.run();
  if (sink === 0) throw new Error('benchmark did no work');

  // DuckDB over the same rows, in this process
  log('loading the same rows into DuckDB ...');
  const instance = await DuckDBInstance.create(':memory:');
  const conn = await instance.connect();
  const dir = join(tmpdir(), `sluice-bench-${process.pid}`);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'one.ndjson'), encoded.ndjson);
  writeFileSync(join(dir, 'one.json'), encoded.json);
  await loadIntoDuckDB(conn, 'bids', data);
  const cols = BIDS_SQL_COLUMNS;
  const queries = {
    'decode ndjson': { sql: `SELECT * FROM read_ndjson('${join(dir, 'one.ndjson')}', columns = ${cols})`, rows: one.length },
    'decode json': { sql: `SELECT * FROM read_json('${join(dir, 'one.json')}', format = 'array', columns = ${cols})`, rows: one.length },
    filter: { sql: `SELECT count(*) FROM bids WHERE price > 100 AND channel != 'spam'`, rows },
    pipeline: {
      sql: `SELECT ts // ${WINDOW} AS w, auction, count(*), sum(price), min(price), max(price)
            FROM bids WHERE price > 100 AND channel != 'spam' GROUP BY ALL`,
      rows,
    },
  };
  log('running DuckDB with 1 thread ...');
  const d1 = await duckdbRates(conn, 1, opts.quick, queries);
  const cores = (await import('node:os')).availableParallelism();
  log(`running DuckDB with ${cores} threads ...`);
  const dAll = await duckdbRates(conn, cores, opts.quick, queries);
  conn.closeSync();
  instance.closeSync();

  const results: BenchRow[] = [
    { name: 'decode arrow', rows: one.length, sluice: rate(bench, 'decode arrow', one.length), baseline: null, duckdb1: null, duckdbAll: null },
    { name: 'decode msgpack rows', rows: one.length, sluice: rate(bench, 'decode msgpack rows', one.length), baseline: null, duckdb1: null, duckdbAll: null },
    { name: 'decode msgpack columns', rows: one.length, sluice: rate(bench, 'decode msgpack columns', one.length), baseline: null, duckdb1: null, duckdbAll: null },
    { name: 'decode ndjson', rows: one.length, sluice: rate(bench, 'decode ndjson', one.length), baseline: null, duckdb1: d1['decode ndjson']!, duckdbAll: dAll['decode ndjson']! },
    { name: 'decode json', rows: one.length, sluice: rate(bench, 'decode json', one.length), baseline: null, duckdb1: d1['decode json']!, duckdbAll: dAll['decode json']! },
    { name: 'filter', rows, sluice: rate(bench, 'filter', rows), baseline: rate(bench, 'filter baseline', rows), duckdb1: d1.filter!, duckdbAll: dAll.filter! },
    {
      name: 'filter+tumbling+group-by(10K)+4 aggs',
      rows,
      sluice: rate(bench, 'pipeline', rows),
      baseline: rate(bench, 'pipeline baseline', rows),
      duckdb1: d1.pipeline!,
      duckdbAll: dAll.pipeline!,
    },
    {
      // what a worker really does per batch: the same, plus serializing the partial result
      // (10 K groups per 64 K rows) into the buffer it hands back
      name: '  … + partial serialized',
      rows,
      sluice: rate(bench, 'pipeline+partial', rows),
      baseline: null,
      duckdb1: d1.pipeline!,
      duckdbAll: dAll.pipeline!,
    },
    {
      // the state thread's side: those partials (one per 16 K rows here) merged into the
      // open windows' tables
      name: `partials of ${MERGE_BATCH_ROWS / 1024} K rows merged`,
      rows,
      sluice: rate(bench, 'merge partials', rows),
      baseline: null,
      duckdb1: null,
      duckdbAll: null,
    },
  ];
  return results;
}

const fmt = (v: number | null): string => (v === null ? '—' : millions(v, 1));
const ratio = (a: number, b: number | null): string => (b === null ? '—' : `${(a / b).toFixed(2)}×`);

export function kernelTable(rows: BenchRow[], cores: number): string {
  const head = ['kernel', 'Sluice rows/s', 'typed-array loop', 'Sluice/loop', 'DuckDB 1 thread', 'Sluice/DuckDB', `DuckDB ${cores} threads`, 'Sluice/DuckDB'];
  const body = rows.map((r) => [r.name, fmt(r.sluice), fmt(r.baseline), ratio(r.sluice, r.baseline), fmt(r.duckdb1), ratio(r.sluice, r.duckdb1), fmt(r.duckdbAll), ratio(r.sluice, r.duckdbAll)]);
  return markdownTable(head, body);
}
