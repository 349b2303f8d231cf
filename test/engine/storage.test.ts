import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { DuckDBInstance } from '@duckdb/node-api';
import { loadConfig, parseConfig, resolveStorageThreads, type SluiceConfig } from '../../engine/config.js';
import { SluiceError } from '../../engine/errors.js';
import { int64ToString, makeSchema, valueAt, type Batch, type Column, type ColumnType, type Field } from '../../engine/schema.js';
import type { WindowResult } from '../../engine/window-state.js';
import { Storage, type CommitRequest, type StorageLogger } from '../../engine/storage.js';
import { parquetFileName, rangeStartOf } from '../../engine/parquet-export.js';
import { mulberry32, randomBatch, stringColumnOf, type Rng } from '../helpers/random.js';
import { repoRoot } from '../helpers/paths.js';

// ---------------------------------------------------------------------------------------------
// helpers

function tempDir(t: { after(fn: () => void): void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-storage-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function config(text: string, dir: string): SluiceConfig {
  return parseConfig(text, { env: {}, overrides: { dataDir: dir } });
}

async function expectRejects(p: Promise<unknown>, code: string, pattern?: RegExp): Promise<SluiceError> {
  let caught: unknown;
  try {
    await p;
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof SluiceError, `expected ${code}, got ${String(caught)}`);
  assert.equal(caught.code, code, caught.message);
  if (pattern !== undefined) assert.match(caught.message, pattern);
  return caught;
}

async function describe(s: Storage, table: string): Promise<[string, string][]> {
  const r = await s.query(`DESCRIBE ${table}`);
  return r.rows.map((row) => [String(row[0]), String(row[1])]);
}

async function count(s: Storage, table: string): Promise<number> {
  return Number((await s.query(`SELECT count(*) FROM ${table}`)).rows[0]![0]);
}

const EMPTY: CommitRequest = { results: [], late: [], archive: [], checkpoint: null };

/** The JSON form query() gives a DOUBLE. */
function jsonDouble(v: number): number | string {
  return Number.isFinite(v) ? v : String(v);
}

/** A column's value as query() returns it, given the SQL casts int64 columns to VARCHAR. */
function expectedValue(c: Column, i: number): unknown {
  const v = valueAt(c, i);
  if (v === null) return null;
  if (c.type === 'int64') return int64ToString(c.words[2 * i]!, c.words[2 * i + 1]!);
  if (c.type === 'float64') return jsonDouble(v as number);
  return v;
}

/** SELECT list reading a stream batch back in comparable form. */
function selectRaw(fields: readonly Field[]): string {
  return fields.map((f) => (f.type === 'int64' ? `"${f.name}"::VARCHAR` : f.type === 'timestamp' ? `epoch_ms("${f.name}")` : `"${f.name}"`)).join(', ');
}

function expectedRaw(batch: Batch): unknown[][] {
  const out: unknown[][] = [];
  for (let i = 0; i < batch.length; i++) out.push(batch.columns.map((c) => expectedValue(c, i)));
  return out;
}

const EVENTS_YAML = `
storage: { parquet: { every: 1m } }
streams:
  ev:
    schema: { k64: int64, k32: int32, s: string, b: bool, f: float64, ts: timestamp }
    eventTime: { column: ts }
    archive: true
pipelines:
  agg:
    from: ev
    window: { tumbling: 10s }
    groupBy: [k64, k32, s, b]
    select: { n: count(), total: sum(f), hi: max(f) }
`;

const EV_FIELDS: Field[] = [
  { name: 'k64', type: 'int64' }, { name: 'k32', type: 'int32' }, { name: 's', type: 'string' },
  { name: 'b', type: 'bool' }, { name: 'f', type: 'float64' }, { name: 'ts', type: 'timestamp' },
];

/** A WindowResult of `agg` with random keys (nulls, huge int64, unicode) and windows around 1970. */
function randomResult(rng: Rng, rows: number, windowAt?: (i: number) => number): WindowResult {
  const keySchema = makeSchema(EV_FIELDS.slice(0, 4));
  const keys = randomBatch(keySchema, rows, rng, { nullRate: 0.2 }).columns;
  const windowStart = new Float64Array(rows);
  const windowEnd = new Float64Array(rows);
  for (let i = 0; i < rows; i++) {
    windowStart[i] = windowAt !== undefined ? windowAt(i) : Math.floor((rng() * 2 - 1) * 1e8) * 10_000;
    windowEnd[i] = windowStart[i]! + 10_000;
  }
  const n = { values: new Float64Array(rows), valid: new Uint8Array(rows).fill(1) };
  const total = { values: new Float64Array(rows), valid: new Uint8Array(rows) };
  const hi = { values: new Float64Array(rows), valid: new Uint8Array(rows) };
  for (let i = 0; i < rows; i++) {
    n.values[i] = 1 + Math.floor(rng() * 1e6);
    if (rng() < 0.8) {
      total.valid[i] = 1;
      total.values[i] = (rng() - 0.5) * 10 ** Math.floor(rng() * 30 - 10);
    }
    if (rng() < 0.8) {
      hi.valid[i] = 1;
      hi.values[i] = rng() < 0.05 ? [NaN, Infinity, -Infinity][Math.floor(rng() * 3)]! : rng() * 1000;
    }
  }
  return { rows, windowStart, windowEnd, keys, values: [n, total, hi] };
}

const RESULT_SELECT = 'epoch_ms(window_start), epoch_ms(window_end), k64::VARCHAR, k32, s, b, n, total, hi';

function expectedResultRows(r: WindowResult): unknown[][] {
  const out: unknown[][] = [];
  for (let i = 0; i < r.rows; i++) {
    out.push([
      r.windowStart[i], r.windowEnd[i],
      ...r.keys.map((c) => expectedValue(c, i)),
      ...r.values.map((v, k) => (v.valid[i] === 0 ? null : k === 0 ? v.values[i] : jsonDouble(v.values[i]!))),
    ]);
  }
  return out;
}

function evBatch(rng: Rng, rows: number, opts: { nullRate?: number; ts?: (i: number) => number } = {}): Batch {
  const schema = makeSchema(EV_FIELDS);
  const b = randomBatch(schema, rows, rng, { nullRate: opts.nullRate ?? 0.1 });
  const ts = opts.ts;
  if (ts === undefined) return b;
  const values = new Float64Array(rows);
  for (let i = 0; i < rows; i++) values[i] = ts(i);
  return { ...b, columns: b.columns.map((c, j) => (j === 5 ? { type: 'timestamp', values, valid: null } : c)) };
}

// ---------------------------------------------------------------------------------------------
// tables from the config

test('configs/sluice.yaml: result and late tables have the columns of DESIGN.md A3', async (t) => {
  const dir = tempDir(t);
  const s = await Storage.open(loadConfig(join(repoRoot, 'configs', 'sluice.yaml'), { env: {}, overrides: { dataDir: dir } }));
  try {
    assert.equal(s.file, join(dir, 'sluice.duckdb'));
    assert.ok(existsSync(s.file));
    assert.deepEqual(await describe(s, 'bid_stats'), [
      ['window_start', 'TIMESTAMP'], ['window_end', 'TIMESTAMP'], ['auction', 'BIGINT'],
      ['bids', 'BIGINT'], ['max_price', 'DOUBLE'], ['avg_price', 'DOUBLE'], ['total', 'DOUBLE'],
    ]);
    assert.deepEqual(await describe(s, 'bid_stats__late'), [
      ['auction', 'BIGINT'], ['bidder', 'BIGINT'], ['price', 'DOUBLE'], ['channel', 'VARCHAR'], ['ts', 'TIMESTAMP'], ['reason', 'VARCHAR'],
    ]);
    // archive: false → no table named after the stream
    await expectRejects(s.query('DESCRIBE bids'), 'SLUICE_STORAGE_QUERY', /bids/);
    const tables = (await s.query("SELECT table_name FROM duckdb_tables() WHERE table_name LIKE 'sluice%' ORDER BY 1")).rows.map((r) => r[0]);
    assert.deepEqual(tables, ['sluice_checkpoint_parts', 'sluice_checkpoints', 'sluice_exports', 'sluice_meta', 'sluice_state_parts', 'sluice_touches']);
    assert.equal(s.checkpoint, null);
    assert.deepEqual([...s.fresh], ['bid_stats']);
  } finally {
    await s.close();
  }
});

const SQL_OF: Record<ColumnType, string> = { bool: 'BOOLEAN', int32: 'INTEGER', int64: 'BIGINT', float64: 'DOUBLE', string: 'VARCHAR', timestamp: 'TIMESTAMP' };

test('every example config gets its tables, with counts BIGINT and other aggregates DOUBLE', async (t) => {
  const examples = readdirSync(join(repoRoot, 'configs', 'examples')).filter((f) => /\.(ya?ml|json)$/.test(f));
  assert.ok(examples.length >= 4);
  for (const file of examples) {
    const dir = tempDir(t);
    const cfg = loadConfig(join(repoRoot, 'configs', 'examples', file), { env: {}, overrides: { dataDir: dir } });
    const s = await Storage.open(cfg);
    try {
      for (const [name, p] of Object.entries(cfg.pipelines)) {
        const stream = cfg.streams[p.from]!;
        const expected: [string, string][] = [['window_start', 'TIMESTAMP'], ['window_end', 'TIMESTAMP']];
        for (const k of p.groupBy) expected.push([k, SQL_OF[stream.schema[k]!]]);
        for (const [out, agg] of Object.entries(p.select)) expected.push([out, /^(count|approx_count_distinct)\(/.test(agg) ? 'BIGINT' : 'DOUBLE']);
        assert.deepEqual(await describe(s, name), expected, `${file}: ${name}`);
        const raw = Object.entries(stream.schema).map(([c, type]): [string, string] => [c, SQL_OF[type]]);
        assert.deepEqual(await describe(s, `${name}__late`), [...raw, ['reason', 'VARCHAR']], `${file}: ${name}__late`);
      }
      for (const [name, stream] of Object.entries(cfg.streams)) {
        if (!stream.archive) continue;
        assert.deepEqual(await describe(s, name), Object.entries(stream.schema).map(([c, type]) => [c, SQL_OF[type]]), `${file}: archive ${name}`);
      }
    } finally {
      await s.close();
    }
  }
});

// ---------------------------------------------------------------------------------------------
// commits

test('results and late rows read back exactly: null keys, int64 beyond 2^53, unicode, times before 1970', async (t) => {
  const dir = tempDir(t);
  const s = await Storage.open(config(EVENTS_YAML, dir));
  try {
    const rng = mulberry32(7);
    const r1 = randomResult(rng, 3000);
    const r2 = randomResult(rng, 5);
    const late = evBatch(rng, 2500, { nullRate: 0.15 });
    const reasons = Array.from({ length: late.length }, (_, i) => (i % 3 === 0 ? 'window closed' : i % 3 === 1 ? 'fenêtre fermée 窓' : ''));
    const out = await s.commit({ results: [{ pipeline: 'agg', result: r1 }, { pipeline: 'agg', result: r2 }], late: [{ pipeline: 'agg', rows: late, reasons: stringColumnOf(reasons) }], archive: [], checkpoint: null });
    assert.equal(out.rows, 3000 + 5 + 2500);
    assert.ok(out.ms >= 0);

    const got = (await s.query(`SELECT ${RESULT_SELECT} FROM agg ORDER BY rowid`)).rows;
    assert.deepEqual(got, [...expectedResultRows(r1), ...expectedResultRows(r2)]);
    const gotLate = (await s.query(`SELECT ${selectRaw(EV_FIELDS)}, reason FROM agg__late ORDER BY rowid`)).rows;
    assert.deepEqual(gotLate, expectedRaw(late).map((row, i) => [...row, reasons[i]]));
    // a string parameter is cast to the type its context needs
    const since1970 = r1.windowStart.filter((x) => x >= 0).length + r2.windowStart.filter((x) => x >= 0).length;
    assert.deepEqual((await s.query('SELECT count(*) FROM agg WHERE window_start >= $1', ['1970-01-01T00:00:00Z'])).rows, [[since1970]]);

    // the data has what the test claims to cover
    const k64 = r1.keys[0]!;
    assert.ok(k64.valid !== null && k64.valid.includes(0), 'null keys');
    assert.ok(got.some((row) => typeof row[2] === 'string' && Math.abs(Number(row[2])) > 2 ** 53), 'int64 beyond 2^53');
    assert.ok(got.some((row) => (row[0] as number) < 0), 'windows before 1970');
    assert.ok(gotLate.some((row) => typeof row[2] === 'string' && /[^\x00-\x7f]/.test(row[2])), 'non-ASCII strings');
  } finally {
    await s.close();
  }
});

test('DuckDB runs with storage.threads (auto: the cores the pool leaves), storage.walCheckpoint as its checkpoint_threshold and storage.memoryLimit as its memory_limit', async (t) => {
  const base = config(EVENTS_YAML, tempDir(t));
  const settings = async (storage: Partial<SluiceConfig['storage']>, workers: Partial<SluiceConfig['workers']> = {}): Promise<unknown[]> => {
    const s = await Storage.open({ ...base, storage: { ...base.storage, dir: tempDir(t), ...storage }, workers: { ...base.workers, ...workers } });
    try {
      const [threads, threshold, limit] = (await s.query("SELECT current_setting('threads')::BIGINT, current_setting('checkpoint_threshold'), current_setting('memory_limit')")).rows[0]!;
      // DuckDB's own default limit is a share of this host's memory: only the explicit one is known
      return storage.memoryLimit === undefined || storage.memoryLimit === 'auto' ? [threads, threshold] : [threads, threshold, limit];
    } finally {
      await s.close();
    }
  };
  assert.equal(base.storage.threads, 'auto');
  assert.deepEqual(await settings({}), [resolveStorageThreads(base), '64.0 MiB']);
  assert.deepEqual(await settings({ threads: 3, walCheckpoint: 32 * 2 ** 20 }), [3, '32.0 MiB']);
  assert.deepEqual(await settings({}, { threads: 1 }), [Math.max(1, availableParallelism() - 1), '64.0 MiB']);
  assert.deepEqual(await settings({ memoryLimit: 96 * 2 ** 20 }), [resolveStorageThreads(base), '64.0 MiB', '96.0 MiB']);
});

test('memoryBytes() is DuckDB\'s buffer pool: it grows with the blocks it caches and stays under memoryLimit', async (t) => {
  const base = config(EVENTS_YAML, tempDir(t));
  const s = await Storage.open({ ...base, storage: { ...base.storage, memoryLimit: 64 * 2 ** 20 } });
  try {
    const before = await s.memoryBytes();
    // 96 MB of doubles that do not compress, more than the limit, read back so that their blocks are cached
    await s.query('CREATE TABLE filler AS SELECT random() AS x, random() AS y FROM range(6000000)');
    await s.query('SELECT sum(x), sum(y) FROM filler');
    const after = await s.memoryBytes();
    assert.ok(after > before + (8 << 20), `DuckDB memory ${before} -> ${after} bytes for 96 MB of rows`);
    assert.ok(after <= 64 * 2 ** 20, `DuckDB memory ${after} bytes over the 64 MiB limit`);
  } finally {
    await s.close();
  }
});

test('query() gives JSON-ready values: big integers as strings, timestamps as ISO-8601, NaN as text', async (t) => {
  const dir = tempDir(t);
  const s = await Storage.open(config(EVENTS_YAML, dir));
  try {
    const r = await s.query(
      "SELECT 9007199254740993::BIGINT AS big, -42::BIGINT AS small, 'NaN'::DOUBLE AS nan, '-inf'::DOUBLE AS ninf, 1.5 AS dec, " +
      "sum(x) AS hsum, TIMESTAMP '1969-12-31 23:59:59.999' AS t1, TIMESTAMP '2024-05-01 12:00:00.123456' AS t2, " +
      "NULL::VARCHAR AS nothing, [1, 2]::BIGINT[] AS list, $1::VARCHAR AS p1, $2 + 1 AS p2, $3::BOOLEAN AS p3 " +
      'FROM (VALUES (1::BIGINT), (2::BIGINT)) v(x)', ['ünï', 41, true]);
    assert.deepEqual(r.columns.map((c) => c.name), ['big', 'small', 'nan', 'ninf', 'dec', 'hsum', 't1', 't2', 'nothing', 'list', 'p1', 'p2', 'p3']);
    assert.equal(r.columns[0]!.type, 'BIGINT');
    assert.equal(r.columns[6]!.type, 'TIMESTAMP');
    assert.deepEqual(r.rows, [['9007199254740993', -42, 'NaN', '-Infinity', 1.5, 3, '1969-12-31T23:59:59.999Z', '2024-05-01T12:00:00.123456Z', null, [1, 2], 'ünï', 42, true]]);
    // a timestamp parameter may be ISO text
    const w = await s.query('SELECT $1::TIMESTAMP < TIMESTAMP \'2024-01-01\' AS before', ['2023-12-31T23:00:00Z']);
    assert.deepEqual(w.rows, [[true]]);
    await expectRejects(s.query('SELEC 1'), 'SLUICE_STORAGE_QUERY', /syntax/i);
    await expectRejects(s.query('SELECT * FROM no_such_table'), 'SLUICE_STORAGE_QUERY', /no_such_table/);
    await expectRejects(s.query('SELECT $1', [{ a: 1 }]), 'SLUICE_STORAGE_QUERY', /parameter \$1/);
  } finally {
    await s.close();
  }
});

test('a commit that fails half way leaves nothing of itself, and the next commit works', async (t) => {
  const dir = tempDir(t);
  const s = await Storage.open(config(EVENTS_YAML, dir));
  const tables = ['agg', 'agg__late', 'ev', 'sluice_checkpoints', 'sluice_touches'];
  const counts = async (): Promise<number[]> => Promise.all(tables.map((x) => count(s, x)));
  try {
    const rng = mulberry32(11);
    // big enough that the appender flushes chunks into the transaction before the failure
    const big = randomResult(rng, 300_000, (i) => Math.floor(i / 1000) * 10_000);
    const late = evBatch(rng, 100);
    const good = evBatch(rng, 70_000);
    // the last archive batch has a float64 column where the stream has int64
    const bad: Batch = { ...good, columns: good.columns.map((c, j) => (j === 0 ? { type: 'float64', values: new Float64Array(good.length), valid: null } : c)) };
    const req: CommitRequest = {
      results: [{ pipeline: 'agg', result: big }],
      late: [{ pipeline: 'agg', rows: late, reasons: stringColumnOf(Array<string>(100).fill('x')) }],
      archive: [{ stream: 'ev', rows: good }, { stream: 'ev', rows: bad }],
      checkpoint: { state: new Uint8Array([1, 2, 3]), positions: { ev: { seq: 1 } } },
    };
    await expectRejects(s.commit(req), 'SLUICE_INTERNAL', /archive rows of stream 'ev' column 'k64' is float64/);
    assert.deepEqual(await counts(), [0, 0, 0, 0, 0]);
    assert.equal(s.checkpoint, null);

    // other malformed requests, each after good rows
    const cases: [CommitRequest, RegExp][] = [
      [{ ...EMPTY, results: [{ pipeline: 'agg', result: big }, { pipeline: 'nope', result: big }] }, /unknown pipeline 'nope'/],
      [{ ...EMPTY, archive: [{ stream: 'ev', rows: good }], late: [{ pipeline: 'agg', rows: late, reasons: stringColumnOf(['only one']) }] }, /1 reasons for 100 rows/],
      [{ ...EMPTY, archive: [{ stream: 'ev', rows: good }], results: [{ pipeline: 'agg', result: { ...big, keys: big.keys.slice(1) } }] }, /3 key columns, the pipeline 4/],
      [{ ...EMPTY, archive: [{ stream: 'ev', rows: good }], checkpoint: { state: new Uint8Array(0), positions: { n: 1n } } }, /positions are not JSON/],
    ];
    for (const [r, pattern] of cases) await expectRejects(s.commit(r), 'SLUICE_INTERNAL', pattern);
    assert.deepEqual(await counts(), [0, 0, 0, 0, 0]);

    // the storage is still usable
    const ok = await s.commit({ ...req, archive: [{ stream: 'ev', rows: good }] });
    assert.equal(ok.rows, 300_000 + 100 + 70_000);
    assert.deepEqual((await counts()).slice(0, 4), [300_000, 100, 70_000, 1]);

    // a failure inside DuckDB after every row was appended: the checkpoint table is gone
    await s.query('DROP TABLE sluice_checkpoints');
    const before = await counts().catch(() => null);
    assert.equal(before, null); // sluice_checkpoints no longer exists
    await expectRejects(s.commit({ ...req, archive: [{ stream: 'ev', rows: good }] }), 'SLUICE_STORAGE_IO', /nothing of it was stored/);
    assert.deepEqual(await Promise.all(['agg', 'agg__late', 'ev'].map((x) => count(s, x))), [300_000, 100, 70_000]);
  } finally {
    await s.close();
  }
});

// ---------------------------------------------------------------------------------------------
// checkpoints

test('checkpoints: stored with the rows, the latest few kept, restored at reopen', async (t) => {
  const dir = tempDir(t);
  const cfg = config(EVENTS_YAML, dir);
  const rng = mulberry32(3);
  const state = new Uint8Array(200_000);
  for (let i = 0; i < state.length; i++) state[i] = rng() < 0.3 ? 0 : Math.floor(rng() * 256);
  let s = await Storage.open(cfg);
  try {
    for (let i = 1; i <= 5; i++) {
      const positions = { ev: { seq: i * 10, maxEventTime: 1714564800000 + i, note: 'ü' } };
      await s.commit({ ...EMPTY, results: [{ pipeline: 'agg', result: randomResult(rng, 10) }], checkpoint: { state: i === 5 ? state : new Uint8Array([i]), positions } });
      assert.equal(s.checkpoint?.id, i);
    }
    // a commit without a checkpoint leaves it as it is
    await s.commit({ ...EMPTY, results: [{ pipeline: 'agg', result: randomResult(rng, 10) }] });
    assert.equal(s.checkpoint?.id, 5);
    assert.deepEqual((await s.query('SELECT id FROM sluice_checkpoints ORDER BY id')).rows, [[3], [4], [5]]);
  } finally {
    await s.close();
  }
  s = await Storage.open(cfg);
  try {
    const cp = s.checkpoint;
    assert.ok(cp !== null);
    assert.equal(cp.id, 5);
    assert.deepEqual(cp.positions, { ev: { seq: 50, maxEventTime: 1714564800005, note: 'ü' } });
    assert.ok(Buffer.from(cp.state).equals(Buffer.from(state)));
    assert.ok(Math.abs(cp.createdAt - Date.now()) < 60_000);
    assert.equal(s.fresh.size, 0);
    assert.equal(await count(s, 'agg'), 60);
    await s.commit({ ...EMPTY, checkpoint: { state: new Uint8Array([9]), positions: {} } });
    assert.equal(s.checkpoint?.id, 6);
  } finally {
    await s.close();
  }
});

test('checkpoint parts: new parts stored, unchanged ones referenced, the parts only dropped checkpoints used deleted; the latest reads back at reopen', async (t) => {
  const dir = tempDir(t);
  const cfg = config(EVENTS_YAML, dir);
  const rng = mulberry32(5);
  const bytesOf = (n: number): Uint8Array => Uint8Array.from({ length: n }, () => Math.floor(rng() * 256));
  const stored = new Map<number, Uint8Array>();
  const history: number[][] = [];
  let open: number[] = []; // the part ids of the "open windows"
  let s = await Storage.open(cfg);
  try {
    for (let i = 1; i <= 20; i++) {
      // one window closes, one opens, one changes; the others are referenced as they are
      if (open.length > 4) open = open.slice(1);
      const fresh: number[] = [s.allocatePartId()];
      if (open.length > 1) {
        const changed = Math.floor(rng() * open.length);
        fresh.push(s.allocatePartId());
        open[changed] = fresh[1]!;
      }
      open.push(fresh[0]!);
      const parts = open.map((id) => {
        if (!fresh.includes(id)) return { id, bytes: null };
        const bytes = bytesOf(100 + Math.floor(rng() * 5000));
        stored.set(id, bytes);
        return { id, bytes };
      });
      await s.commit({ ...EMPTY, checkpoint: { state: new Uint8Array([i]), positions: { ev: { seq: i } }, parts } });
      history.push([...open]);
      assert.deepEqual(s.checkpoint?.partIds, open);
      // exactly the parts the 3 kept checkpoints reference are stored
      const want = [...new Set(history.slice(-3).flat())].sort((a, b) => a - b);
      assert.deepEqual((await s.query('SELECT id FROM sluice_state_parts ORDER BY id')).rows.map((r) => Number(r[0])), want, `after checkpoint ${i}`);
    }
    // refused before anything is written: an unknown reference, an id not allocated, an id twice
    const cases: [CommitRequest['checkpoint'], RegExp][] = [
      [{ state: new Uint8Array([0]), positions: {}, parts: [{ id: 999, bytes: null }] }, /references state part 999, which is not stored/],
      [{ state: new Uint8Array([0]), positions: {}, parts: [{ id: 10_000, bytes: new Uint8Array(3) }] }, /part 10000 was not allocated/],
      [{ state: new Uint8Array([0]), positions: {}, parts: [{ id: open[0]!, bytes: new Uint8Array(3) }] }, /already stored/],
      [{ state: new Uint8Array([0]), positions: {}, parts: [{ id: open[0]!, bytes: null }, { id: open[0]!, bytes: null }] }, /listed twice/],
    ];
    for (const [checkpoint, pattern] of cases) await expectRejects(s.commit({ ...EMPTY, checkpoint }), 'SLUICE_INTERNAL', pattern);
    assert.equal(s.checkpoint?.id, 20);
  } finally {
    await s.close();
  }
  s = await Storage.open(cfg);
  try {
    const cp = s.checkpoint!;
    assert.equal(cp.id, 20);
    assert.deepEqual([...cp.partIds].sort((a, b) => a - b), [...open].sort((a, b) => a - b));
    const parts = await s.readParts(cp.partIds);
    for (const id of open) assert.ok(Buffer.from(parts.get(id)!).equals(Buffer.from(stored.get(id)!)), `part ${id}`);
    await expectRejects(s.readParts([999]), 'SLUICE_STORAGE_IO', /part 999 is missing/);
    // ids go on after the largest stored one
    assert.ok(s.allocatePartId() > Math.max(...history.flat()));
    // a checkpoint without parts: the parts of the 3 kept ones stay until they fall out
    await s.commit({ ...EMPTY, checkpoint: { state: new Uint8Array([1]), positions: {} } });
    assert.deepEqual(s.checkpoint?.partIds, []);
    for (let i = 0; i < 3; i++) await s.commit({ ...EMPTY, checkpoint: { state: new Uint8Array([1]), positions: {} } });
    assert.equal(await count(s, 'sluice_state_parts'), 0);
    assert.equal(await count(s, 'sluice_checkpoint_parts'), 0);
  } finally {
    await s.close();
  }
});

test('checkpoint parts: a commit whose last statements fail (the 16th checkpoint\'s table rebuild) stores nothing of itself, and the retry does', async (t) => {
  const dir = tempDir(t);
  const cfg = config(EVENTS_YAML, dir);
  const rng = mulberry32(9);
  const s = await Storage.open(cfg);
  try {
    let open: number[] = [];
    const next = (): CommitRequest['checkpoint'] & object => {
      // one window closes, one opens: a new part stored, one no kept checkpoint needs deleted
      const id = s.allocatePartId();
      open = [...open.slice(-2), id];
      return { state: new Uint8Array([id]), positions: { ev: { seq: id } }, parts: open.map((p) => ({ id: p, bytes: p === id ? new Uint8Array([p, 1, 2]) : null })) };
    };
    for (let i = 1; i <= 15; i++) await s.commit({ ...EMPTY, checkpoint: next() });
    const tables = ['agg', 'sluice_checkpoints', 'sluice_state_parts', 'sluice_checkpoint_parts'];
    const snapshot = async (): Promise<unknown[]> => [
      ...(await Promise.all(tables.map((x) => count(s, x)))),
      (await s.query('SELECT id FROM sluice_state_parts ORDER BY id')).rows,
      (await s.query('SELECT checkpoint_id, part_id FROM sluice_checkpoint_parts ORDER BY ALL')).rows,
    ];
    const before = await snapshot();
    // the rebuild's CREATE TABLE fails: its name is taken
    await s.query('CREATE TABLE sluice_state_parts_next (x INTEGER)');
    const result = randomResult(rng, 1000, (i) => i * 10_000);
    const openBefore = open;
    const failing = next();
    await expectRejects(s.commit({ ...EMPTY, results: [{ pipeline: 'agg', result }], checkpoint: failing }), 'SLUICE_STORAGE_IO', /nothing of it was stored/);
    assert.deepEqual(await snapshot(), before);
    assert.equal(s.checkpoint?.id, 15);
    await s.query('DROP TABLE sluice_state_parts_next');
    // the same checkpoint again: stored whole, the tables rebuilt with the kept rows
    open = openBefore;
    const retry = next();
    await s.commit({ ...EMPTY, results: [{ pipeline: 'agg', result }], checkpoint: retry });
    assert.equal(s.checkpoint?.id, 16);
    assert.equal(await count(s, 'agg'), 1000);
    assert.deepEqual((await s.query('SELECT id FROM sluice_checkpoints ORDER BY id')).rows, [[14], [15], [16]]);
    const kept = (await s.query('SELECT DISTINCT part_id FROM sluice_checkpoint_parts ORDER BY ALL')).rows.map((r) => Number(r[0]));
    assert.deepEqual((await s.query('SELECT id FROM sluice_state_parts ORDER BY id')).rows.map((r) => Number(r[0])), kept);
    assert.ok(kept.includes(open[2]!));
    const parts = await s.readParts(s.checkpoint!.partIds);
    assert.deepEqual(Array.from(parts.get(open[2]!)!), [open[2]!, 1, 2]);
  } finally {
    await s.close();
  }
});

test('checkpoint parts: 64 commits each writing two 512 KiB parts keep the file bounded (the parts table is rebuilt too)', async (t) => {
  const dir = tempDir(t);
  const cfg = config(EVENTS_YAML, dir);
  const rng = mulberry32(9);
  const big = Uint8Array.from({ length: 1 << 19 }, () => Math.floor(rng() * 256)); // incompressible
  let s = await Storage.open(cfg);
  const steady: number[] = [];
  let last: number[] = [];
  try {
    for (let i = 0; i < 4; i++) steady.push(s.allocatePartId());
    await s.commit({ ...EMPTY, checkpoint: { state: new Uint8Array([0]), positions: {}, parts: steady.map((id) => ({ id, bytes: big })) } });
    for (let i = 1; i <= 64; i++) {
      const a = s.allocatePartId();
      const b = s.allocatePartId();
      last = [a, b];
      big[0] = i;
      await s.commit({
        ...EMPTY,
        checkpoint: { state: new Uint8Array([i]), positions: {}, parts: [...steady.map((id) => ({ id, bytes: null })), { id: a, bytes: big }, { id: b, bytes: big }] },
      });
    }
  } finally {
    await s.close();
  }
  // 66 MB of parts went in, 5 MB are live
  const size = statSync(join(dir, 'sluice.duckdb')).size;
  assert.ok(size < 40 * 2 ** 20, `database file ${(size / 2 ** 20).toFixed(1)} MiB after 64 checkpoints writing 1 MiB of parts each`);
  s = await Storage.open(cfg);
  try {
    const parts = await s.readParts(s.checkpoint!.partIds);
    assert.deepEqual([...parts.keys()].sort((x, y) => x - y), [...steady, ...last]);
    assert.equal(parts.get(last[1]!)![0], 64);
  } finally {
    await s.close();
  }
});

test('checkpoints: 120 commits of a 1 MB state keep the file bounded (the table is rebuilt); the latest restores', async (t) => {
  const dir = tempDir(t);
  const cfg = config(EVENTS_YAML, dir);
  const rng = mulberry32(8);
  const state = new Uint8Array(1 << 20);
  for (let i = 0; i < state.length; i++) state[i] = Math.floor(rng() * 256); // incompressible
  let s = await Storage.open(cfg);
  try {
    for (let i = 1; i <= 120; i++) {
      state[0] = i;
      await s.commit({ ...EMPTY, checkpoint: { state, positions: { ev: { seq: i } } } });
    }
    assert.deepEqual((await s.query('SELECT id FROM sluice_checkpoints ORDER BY id')).rows, [[118], [119], [120]]);
  } finally {
    await s.close();
  }
  // 120 MB of states went in; without the rebuild the deleted blobs stayed in the file (~120 MB)
  const size = statSync(join(dir, 'sluice.duckdb')).size;
  assert.ok(size < 40 * 2 ** 20, `database file ${(size / 2 ** 20).toFixed(1)} MiB after 120 checkpoints of 1 MiB, 3 kept`);
  s = await Storage.open(cfg);
  try {
    assert.equal(s.checkpoint?.id, 120);
    assert.deepEqual(s.checkpoint?.positions, { ev: { seq: 120 } });
    assert.ok(Buffer.from(s.checkpoint!.state).equals(Buffer.from(state)));
    await s.commit({ ...EMPTY, checkpoint: { state: new Uint8Array([1]), positions: {} } });
    assert.equal(s.checkpoint?.id, 121);
  } finally {
    await s.close();
  }
});

// ---------------------------------------------------------------------------------------------
// definitions

test('a changed pipeline definition is a start-up error that names it, shows the change and the way out', async (t) => {
  const dir = tempDir(t);
  const a = config(EVENTS_YAML, dir);
  let s = await Storage.open(a);
  await s.commit({ ...EMPTY, results: [{ pipeline: 'agg', result: randomResult(mulberry32(1), 20) }] });
  await s.close();

  const changed = EVENTS_YAML
    .replace('tumbling: 10s', 'tumbling: 1m')
    .replace('total: sum(f)', 'total: sum(f * 2)')
    .replace('hi: max(f) }', 'hi: max(f), lo: min(f) }');
  const err = await expectRejects(Storage.open(config(changed, dir)), 'SLUICE_STORAGE_PIPELINE_CHANGED');
  for (const line of [
    "pipeline 'agg'",
    'window: tumbling 10s → tumbling 1m',
    'select.total: sum(f) → sum(f * 2)',
    'select.lo: added min(f)',
    'DROP TABLE IF EXISTS \\"agg\\"; DROP TABLE IF EXISTS \\"agg__late\\";',
    "DELETE FROM sluice_meta WHERE kind = 'pipeline' AND name = 'agg';",
    'new name',
    'storage.onPipelineChange: recreate',
  ]) assert.ok(err.message.includes(line), `message lacks ${line}:\n${err.message}`);

  // nothing was changed: the old config still opens, its rows are there
  s = await Storage.open(a);
  assert.equal(await count(s, 'agg'), 20);
  await s.close();

  // the SQL of the message does what it says
  const sql = /duckdb \S+ "(.*)"/.exec(err.message)![1]!.replaceAll('\\"', '"');
  const db = await DuckDBInstance.create(join(dir, 'sluice.duckdb'));
  const conn = await db.connect();
  await conn.run(sql);
  conn.closeSync();
  db.closeSync();
  s = await Storage.open(config(changed, dir));
  try {
    assert.deepEqual([...s.fresh], ['agg']);
    assert.equal(await count(s, 'agg'), 0);
    assert.deepEqual((await describe(s, 'agg')).map((c) => c[0]), ['window_start', 'window_end', 'k64', 'k32', 's', 'b', 'n', 'total', 'hi', 'lo']);
  } finally {
    await s.close();
  }
});

test('spelling changes and reordered select / groupBy are not changes, and values land in the right columns', async (t) => {
  const dir = tempDir(t);
  let s = await Storage.open(config(EVENTS_YAML, dir));
  const rng = mulberry32(5);
  const r = randomResult(rng, 500);
  await s.commit({ ...EMPTY, results: [{ pipeline: 'agg', result: r }] });
  await s.close();

  const respelled = EVENTS_YAML
    .replace('groupBy: [k64, k32, s, b]', 'groupBy: [b, s, k64, k32]')
    .replace('select: { n: count(), total: sum(f), hi: max(f) }', "select: { hi: 'max( f )', n: count(), total: sum(f) }");
  s = await Storage.open(config(respelled, dir));
  try {
    assert.equal(s.fresh.size, 0);
    // the result in the new config's order: keys b, s, k64, k32; values hi, n, total
    const k = r.keys;
    const v = r.values;
    const reordered: WindowResult = { ...r, keys: [k[3]!, k[2]!, k[0]!, k[1]!], values: [v[2]!, v[0]!, v[1]!] };
    await s.commit({ ...EMPTY, results: [{ pipeline: 'agg', result: reordered }] });
    const rows = (await s.query(`SELECT ${RESULT_SELECT} FROM agg ORDER BY rowid`)).rows;
    assert.deepEqual(rows, [...expectedResultRows(r), ...expectedResultRows(r)]);
  } finally {
    await s.close();
  }
});

test('a changed stream schema is a change of its archive table and of the late tables reading it', async (t) => {
  const dir = tempDir(t);
  await (await Storage.open(config(EVENTS_YAML, dir))).close();
  const wider = EVENTS_YAML.replace('ts: timestamp }', 'ts: timestamp, extra: string }');
  const err = await expectRejects(Storage.open(config(wider, dir)), 'SLUICE_STORAGE_PIPELINE_CHANGED', /2 definitions differ/);
  assert.match(err.message, /archived stream 'ev'/);
  assert.match(err.message, /columns: k64 BIGINT, .*ts TIMESTAMP → k64 BIGINT, .*extra VARCHAR/);
  assert.match(err.message, /pipeline 'agg'/);
  assert.match(err.message, /columns of stream 'ev' \(the late table\)/);
});

test('a table Sluice did not create is adopted when its columns fit, else refused', async (t) => {
  const dir = tempDir(t);
  const file = join(dir, 'sluice.duckdb');
  const db = await DuckDBInstance.create(file);
  const conn = await db.connect();
  await conn.run('CREATE TABLE agg (window_start TIMESTAMP, window_end TIMESTAMP, k64 BIGINT, k32 INTEGER, s VARCHAR, b BOOLEAN, n BIGINT, total DOUBLE, hi DOUBLE)');
  await conn.run('CREATE TABLE ev (k64 BIGINT, k32 INTEGER, s VARCHAR, b BOOLEAN, f DOUBLE, ts TIMESTAMP, note VARCHAR)');
  conn.closeSync();
  db.closeSync();
  const err = await expectRejects(Storage.open(config(EVENTS_YAML, dir)), 'SLUICE_STORAGE_PIPELINE_CHANGED', /archived stream 'ev': its existing table was not created by this configuration/);
  assert.match(err.message, /table ev has columns .*note VARCHAR; this configuration writes/);
  assert.doesNotMatch(err.message, /pipeline 'agg'/);
});

test('storage.onPipelineChange recreate: old tables dropped, Parquet folder moved aside', async (t) => {
  const dir = tempDir(t);
  let s = await Storage.open(config(EVENTS_YAML, dir));
  await s.commit({ ...EMPTY, results: [{ pipeline: 'agg', result: randomResult(mulberry32(2), 20, () => 0) }] });
  assert.equal((await s.exportParquet({ agg: Infinity })).files.length, 1);
  await s.close();
  const warnings: string[] = [];
  const logger: StorageLogger = { info() {}, warn: (m) => warnings.push(m) };
  s = await Storage.open(config(EVENTS_YAML.replace('tumbling: 10s', 'tumbling: 20s'), dir), { onPipelineChange: 'recreate', logger });
  try {
    assert.deepEqual([...s.fresh], ['agg']);
    assert.equal(await count(s, 'agg'), 0);
    assert.equal(await count(s, 'sluice_exports'), 0);
    const parquet = readdirSync(join(dir, 'parquet'));
    assert.equal(parquet.length, 1);
    assert.match(parquet[0]!, /^agg\.replaced-/);
    assert.ok(warnings.some((w) => w.includes("pipeline 'agg' changed")));
  } finally {
    await s.close();
  }
});

test('tables of pipelines no longer configured are left alone and logged', async (t) => {
  const dir = tempDir(t);
  let s = await Storage.open(config(EVENTS_YAML, dir));
  await s.commit({ ...EMPTY, results: [{ pipeline: 'agg', result: randomResult(mulberry32(2), 7) }] });
  await s.close();
  const infos: string[] = [];
  const without = EVENTS_YAML.replace(/pipelines:[\s\S]*$/, 'pipelines: {}\n');
  s = await Storage.open(config(without, dir), { logger: { info: (m) => infos.push(m), warn() {} } });
  try {
    assert.equal(await count(s, 'agg'), 7);
    assert.ok(infos.some((m) => m.includes("pipeline 'agg' is no longer configured")), infos.join('\n'));
  } finally {
    await s.close();
  }
  // and back: the same definition reopens its tables
  s = await Storage.open(config(EVENTS_YAML, dir));
  assert.equal(await count(s, 'agg'), 7);
  await s.close();
});

// ---------------------------------------------------------------------------------------------
// locking

test('a second opener of the same file gets SLUICE_STORAGE_LOCKED: same thread, another thread, another process', async (t) => {
  const dir = tempDir(t);
  const cfg = config(EVENTS_YAML, dir);
  const s = await Storage.open(cfg);
  try {
    await expectRejects(Storage.open(cfg), 'SLUICE_STORAGE_LOCKED', /already open in this process/);
    // the runtime opens storage in a worker thread: the same check holds across threads
    const fromWorker = await new Promise<{ code?: string; message?: string }>((done, fail) => {
      const code = `
        import { parentPort } from 'node:worker_threads';
        const { Storage } = await import(${JSON.stringify(new URL('../../engine/storage.js', import.meta.url).href)});
        const { parseConfig } = await import(${JSON.stringify(new URL('../../engine/config.js', import.meta.url).href)});
        try {
          await (await Storage.open(parseConfig(${JSON.stringify(EVENTS_YAML)}, { env: {}, overrides: { dataDir: ${JSON.stringify(dir)} } }))).close();
          parentPort.postMessage({});
        } catch (e) { parentPort.postMessage({ code: e.code, message: e.message }); }`;
      const w = new Worker(new URL(`data:text/javascript,${encodeURIComponent(code)}`));
      w.once('message', (m: { code?: string; message?: string }) => {
        done(m);
        void w.terminate();
      });
      w.once('error', fail);
    });
    assert.equal(fromWorker.code, 'SLUICE_STORAGE_LOCKED', fromWorker.message);
    assert.match(fromWorker.message!, /already open in this process/);
    const storageUrl = new URL('../../engine/storage.js', import.meta.url).href;
    const configUrl = new URL('../../engine/config.js', import.meta.url).href;
    const script = `
      const { Storage } = await import(${JSON.stringify(storageUrl)});
      const { parseConfig } = await import(${JSON.stringify(configUrl)});
      try {
        const s = await Storage.open(parseConfig(${JSON.stringify(EVENTS_YAML)}, { env: {}, overrides: { dataDir: ${JSON.stringify(dir)} } }));
        await s.close();
        console.log(JSON.stringify({ opened: true }));
      } catch (e) { console.log(JSON.stringify({ code: e.code, message: e.message })); }`;
    const child = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', cwd: fileURLToPath(new URL('.', import.meta.url)) });
    const out = JSON.parse(child.stdout.trim().split('\n').pop()!) as { code?: string; message?: string };
    assert.equal(out.code, 'SLUICE_STORAGE_LOCKED', child.stdout + child.stderr);
    assert.match(out.message!, new RegExp(`in use by another process \\(PID ${process.pid}\\)`));
  } finally {
    await s.close();
  }
  // closed: open again works, also over a lock file left by a killed process
  writeFileSync(join(dir, 'sluice.duckdb.lock'), '2147483646 proc:1\n');
  const again = await Storage.open(cfg);
  await again.close();
  assert.ok(!existsSync(join(dir, 'sluice.duckdb.lock')));
});

// ---------------------------------------------------------------------------------------------
// Parquet

const MIN = 60_000;
const T0 = Date.UTC(2024, 4, 1, 12, 0, 0);

test('Parquet: closed result ranges export to deterministic files that read_parquet reads back', async (t) => {
  const dir = tempDir(t);
  const s = await Storage.open(config(EVENTS_YAML, dir));
  try {
    const rng = mulberry32(21);
    // windows in the ranges starting at T0, T0 + 1m and T0 + 2m
    const r = randomResult(rng, 900, (i) => T0 + Math.floor(i / 300) * MIN + (i % 6) * 10_000);
    await s.commit({ ...EMPTY, results: [{ pipeline: 'agg', result: r }] });
    assert.deepEqual((await s.exportParquet({})).files, []);
    // windows starting before T0 + 2m are closed: two ranges are final, the third is not
    const first = await s.exportParquet({ agg: T0 + 2 * MIN });
    const folder = join(dir, 'parquet', 'agg');
    assert.deepEqual(first.files, [join(folder, '2024-05-01T12-00-00Z_1m.parquet'), join(folder, '2024-05-01T12-01-00Z_1m.parquet')]);
    assert.deepEqual((await s.exportParquet({ agg: T0 + 2 * MIN })).files, [], 'nothing changed, nothing exported');
    const last = await s.exportParquet({ agg: Infinity });
    assert.deepEqual(last.files, [join(folder, '2024-05-01T12-02-00Z_1m.parquet')]);
    assert.deepEqual(readdirSync(folder).sort(), ['2024-05-01T12-00-00Z_1m.parquet', '2024-05-01T12-01-00Z_1m.parquet', '2024-05-01T12-02-00Z_1m.parquet']);

    // same columns and types as the table, same rows
    const file = first.files[0]!;
    assert.deepEqual(await describe(s, `SELECT * FROM read_parquet('${file}')`), await describe(s, 'agg'));
    const fromFile = (await s.query(`SELECT ${RESULT_SELECT} FROM read_parquet('${file}')`)).rows;
    const fromTable = (await s.query(`SELECT ${RESULT_SELECT} FROM agg WHERE window_start < epoch_ms(${T0 + MIN}::BIGINT) ORDER BY window_start, window_end, k64, k32, s, b`)).rows;
    assert.equal(fromFile.length, 300);
    assert.deepEqual(fromFile, fromTable);

    // rows arriving for an exported range re-export it to the same file: no duplicates
    const extra = randomResult(rng, 10, () => T0 + 30_000);
    await s.commit({ ...EMPTY, results: [{ pipeline: 'agg', result: extra }] });
    assert.deepEqual((await s.exportParquet({ agg: Infinity })).files, [file]);
    assert.equal(await count(s, `read_parquet('${join(folder, '*.parquet')}')`), 910);
    assert.equal(await count(s, `read_parquet('${file}')`), 310);
    assert.equal(readdirSync(folder).length, 3);
    const book = (await s.query('SELECT range_start, exported_commit, file, rows FROM sluice_exports ORDER BY range_start')).rows;
    assert.deepEqual(book, [
      [T0, 2, '2024-05-01T12-00-00Z_1m.parquet', 310],
      [T0 + MIN, 1, '2024-05-01T12-01-00Z_1m.parquet', 300],
      [T0 + 2 * MIN, 1, '2024-05-01T12-02-00Z_1m.parquet', 300],
    ]);
    // every touch is covered by an export: the bookkeeping does not grow
    assert.equal(await count(s, 'sluice_touches'), 0);
  } finally {
    await s.close();
  }
});

test('Parquet: archive ranges are re-exported after a late event; times before 1970 too', async (t) => {
  const dir = tempDir(t);
  const s = await Storage.open(config(EVENTS_YAML, dir));
  try {
    const rng = mulberry32(33);
    const before1970 = -90_000; // 1969-12-31T23:58:30Z, in the range starting 23:58
    const a = evBatch(rng, 4000, { ts: (i) => (i < 1000 ? before1970 + (i % 50) : T0 + Math.floor(i / 1500) * MIN + (i % 50) * 1000) });
    await s.commit({ ...EMPTY, archive: [{ stream: 'ev', rows: a }] });
    const folder = join(dir, 'parquet', 'ev');
    const files = (await s.exportParquet({ ev: T0 + 2 * MIN })).files.map((f) => f.slice(folder.length + 1));
    assert.deepEqual(files, ['1969-12-31T23-58-00Z_1m.parquet', '2024-05-01T12-00-00Z_1m.parquet', '2024-05-01T12-01-00Z_1m.parquet']);

    const file = join(folder, '2024-05-01T12-00-00Z_1m.parquet');
    assert.deepEqual(await describe(s, `SELECT * FROM read_parquet('${file}')`), await describe(s, 'ev'));
    const rowsOf = async (from: string): Promise<unknown[][]> =>
      (await s.query(`SELECT ${selectRaw(EV_FIELDS)} FROM ${from} WHERE ts >= epoch_ms(${T0}::BIGINT) AND ts < epoch_ms(${T0 + MIN}::BIGINT)`)).rows;
    const expected = expectedRaw(a).filter((row) => (row[5] as number) >= T0 && (row[5] as number) < T0 + MIN);
    assert.deepEqual(await rowsOf(`read_parquet('${file}')`), expected);

    // a late event for 12:00 marks the range changed; the next export rewrites that file only
    const lateEvent = evBatch(rng, 1, { ts: () => T0 + 59_999 });
    await s.commit({ ...EMPTY, archive: [{ stream: 'ev', rows: lateEvent }] });
    assert.deepEqual((await s.exportParquet({ ev: T0 + 2 * MIN })).files, [file]);
    assert.deepEqual(await rowsOf(`read_parquet('${file}')`), [...expected, ...expectedRaw(lateEvent)]);
    assert.equal(await count(s, `read_parquet('${join(folder, '*.parquet')}')`), 4000 - 1000 + 1);
  } finally {
    await s.close();
  }
});

test('Parquet: a new storage.parquet.every replaces the old files with ranges of the new length', async (t) => {
  const dir = tempDir(t);
  let s = await Storage.open(config(EVENTS_YAML, dir));
  const rng = mulberry32(8);
  await s.commit({ ...EMPTY, results: [{ pipeline: 'agg', result: randomResult(rng, 600, (i) => T0 + (i % 6) * MIN) }] });
  assert.equal((await s.exportParquet({ agg: Infinity })).files.length, 6);
  await s.close();
  s = await Storage.open(config(EVENTS_YAML.replace('every: 1m', 'every: 5m'), dir));
  try {
    const folder = join(dir, 'parquet', 'agg');
    assert.deepEqual(readdirSync(folder), []);
    const files = (await s.exportParquet({ agg: Infinity })).files.map((f) => f.slice(folder.length + 1));
    assert.deepEqual(files, ['2024-05-01T12-00-00Z_5m.parquet', '2024-05-01T12-05-00Z_5m.parquet']);
    assert.equal(await count(s, `read_parquet('${join(folder, '*.parquet')}')`), 600);
  } finally {
    await s.close();
  }
});

test('Parquet file names and ranges', () => {
  assert.equal(parquetFileName(T0, MIN), '2024-05-01T12-00-00Z_1m.parquet');
  assert.equal(parquetFileName(T0 + 250, 250), '2024-05-01T12-00-00.250Z_250ms.parquet');
  assert.equal(parquetFileName(rangeStartOf(-1, MIN), MIN), '1969-12-31T23-59-00Z_1m.parquet');
  assert.equal(rangeStartOf(-MIN, MIN), -MIN);
  assert.equal(rangeStartOf(T0 + MIN - 1, MIN), T0);
});

// ---------------------------------------------------------------------------------------------
// throughput (reported, not asserted beyond sanity)

const BIDS_YAML = `
storage: { parquet: { every: 1m } }
streams:
  bids:
    schema: { auction: int64, bidder: int64, price: float64, channel: string, ts: timestamp }
    eventTime: { column: ts }
    archive: true
pipelines:
  bid_stats:
    from: bids
    window: { tumbling: 10s }
    groupBy: [auction]
    select: { bids: count(), max_price: max(price), avg_price: avg(price), total: sum(price) }
`;

test('commit throughput of 64K-row batches (results and archive rows of the bids schema)', async (t) => {
  const dir = tempDir(t);
  const s = await Storage.open(config(BIDS_YAML, dir));
  try {
    const N = 65_536;
    const rng = mulberry32(99);
    const auction = new Int32Array(2 * N);
    for (let i = 0; i < N; i++) auction[2 * i] = Math.floor(rng() * 1e6);
    const vals = (): { values: Float64Array; valid: Uint8Array } => {
      const v = new Float64Array(N);
      for (let i = 0; i < N; i++) v[i] = Math.floor(rng() * 1e6);
      return { values: v, valid: new Uint8Array(N).fill(1) };
    };
    const result = (k: number): WindowResult => ({
      rows: N,
      windowStart: new Float64Array(N).fill(T0 + k * 10_000),
      windowEnd: new Float64Array(N).fill(T0 + (k + 1) * 10_000),
      keys: [{ type: 'int64', words: auction, valid: null }],
      values: [vals(), vals(), vals(), vals()],
    });
    const schema = makeSchema([{ name: 'auction', type: 'int64' }, { name: 'bidder', type: 'int64' }, { name: 'price', type: 'float64' }, { name: 'channel', type: 'string' }, { name: 'ts', type: 'timestamp' }]);
    const bids = (k: number): Batch => {
      const ts = new Float64Array(N);
      const price = new Float64Array(N);
      const codes = new Int32Array(N);
      for (let i = 0; i < N; i++) {
        ts[i] = T0 + k * 1000 + (i % 1000);
        price[i] = rng() * 1000;
        codes[i] = i % 4;
      }
      return {
        schema, length: N, columns: [
          { type: 'int64', words: auction, valid: null }, { type: 'int64', words: auction, valid: null },
          { type: 'float64', values: price, valid: null }, { type: 'string', codes, dict: ['web', 'mobile', 'api', 'spam'], valid: null },
          { type: 'timestamp', values: ts, valid: null },
        ],
      };
    };
    const measure = async (label: string, make: (k: number) => CommitRequest): Promise<number> => {
      await s.commit(make(0)); // warm-up
      const reqs = Array.from({ length: 8 }, (_, k) => make(k + 1));
      const t0 = performance.now();
      let rows = 0;
      for (const r of reqs) rows += (await s.commit(r)).rows;
      const perSecond = rows / ((performance.now() - t0) / 1000);
      t.diagnostic(`${label}: ${(perSecond / 1e6).toFixed(2)} M rows/s (${rows} rows in 8 commits of ${N})`);
      return perSecond;
    };
    const results = await measure('result rows', (k) => ({ ...EMPTY, results: [{ pipeline: 'bid_stats', result: result(k) }] }));
    const archive = await measure('archive rows', (k) => ({ ...EMPTY, archive: [{ stream: 'bids', rows: bids(k) }] }));
    assert.ok(results > 100_000 && archive > 100_000, 'far below the expected millions of rows per second');
    assert.equal(await count(s, 'bid_stats'), 9 * N);
    assert.equal(await count(s, 'bids'), 9 * N);
  } finally {
    await s.close();
  }
});

test(':memory: databases work for tests', async () => {
  const s = await Storage.open(config(EVENTS_YAML, tmpdir()), { file: ':memory:' });
  try {
    assert.equal(s.file, ':memory:');
    await s.commit({ ...EMPTY, results: [{ pipeline: 'agg', result: randomResult(mulberry32(4), 3) }] });
    assert.equal(await count(s, 'agg'), 3);
  } finally {
    await s.close();
  }
  await expectRejects(s.commit(EMPTY), 'SLUICE_INTERNAL', /closed/);
});
