/**
 * `POST /v1/sql` over a real socket (DESIGN.md A4): values of every type the result and archive
 * tables use, as JSON and as Arrow IPC, checked against the events that were sent (not against
 * DuckDB's own reading of them); positional parameters; the read-only guard (engine/sql-guard.ts)
 * refusing every statement that writes, changes settings, reads files or loads code, with the
 * database, its settings and the file system unchanged afterwards; the row limit, the
 * interrupting timeout, and malformed requests.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tableFromIPC, type Table } from 'apache-arrow';
import { BIDS_COLUMNS, encodeBatches, freshDir, makeEvents, removeFreshDirs } from '../helpers/oracle.js';
import { testServer } from '../helpers/server.js';
import { assertError, call, json, type Answer } from '../helpers/http.js';
import type { SluiceServer } from '../../server/app.js';
import { valueAt, type Batch } from '../../engine/schema.js';

const ARROW = 'application/vnd.apache.arrow.stream';
const MAX_ROWS = 1000;
/** 600 events over 30 s of event time, disorder within maxOutOfOrder: none late */
const EVENTS = makeEvents({ seed: 11, n: 600, step: 50, disorder: 1000 });

interface SqlAnswer {
  columns: { name: string; type: string }[];
  rows: unknown[][];
  truncated?: boolean;
}

function sqlBody(sql: string, params?: unknown[]): string {
  return JSON.stringify(params === undefined ? { sql } : { sql, params });
}

async function post(server: SluiceServer, body: string | Uint8Array, headers: Record<string, string> = { 'content-type': 'application/json' }): Promise<Answer> {
  return call(server, '/v1/sql', { method: 'POST', headers, body });
}

/** A query that must succeed; its JSON answer. */
async function query(server: SluiceServer, sql: string, params?: unknown[]): Promise<SqlAnswer> {
  const a = await post(server, sqlBody(sql, params));
  assert.equal(a.status, 200, `${sql}: ${a.text.slice(0, 400)}`);
  return json(a) as SqlAnswer;
}

/** The same query as Arrow IPC. */
async function queryArrow(server: SluiceServer, sql: string, params?: unknown[]): Promise<{ answer: Answer; table: Table }> {
  const answer = await post(server, sqlBody(sql, params), { 'content-type': 'application/json', accept: ARROW });
  assert.equal(answer.status, 200, `${sql}: ${answer.text.slice(0, 400)}`);
  assert.equal(answer.headers.get('content-type'), ARROW);
  return { answer, table: tableFromIPC(answer.body) };
}

/** Row r of an Arrow table as plain values (Int64 as bigint, Timestamp[ms] as ms). */
function arrowRow(t: Table, r: number): unknown[] {
  return t.schema.fields.map((_, j) => t.getChildAt(j)!.get(r) as unknown);
}

async function ingest(server: SluiceServer, events: Batch): Promise<void> {
  for (const p of encodeBatches(events, 150, 'arrow')) {
    const a = await call(server, '/v1/streams/bids/ingest', { method: 'POST', headers: { 'content-type': ARROW }, body: p.bytes });
    assert.equal(a.status, 200, a.text);
  }
  const flushed = await call(server, '/v1/flush', { method: 'POST' });
  assert.equal(flushed.status, 200, flushed.text);
}

/** What the archive row of event i must read as in JSON: the /v1/sql conventions (docs/storage.md). */
function expectedRow(events: Batch, i: number): unknown[] {
  return Object.keys(BIDS_COLUMNS).map((name, j) => {
    const v = valueAt(events.columns[j]!, i);
    return name === 'ts' && typeof v === 'number' ? new Date(v).toISOString() : v;
  });
}

/** One column of the events, by the same JSON conventions. */
function columnValues(batch: Batch, column: string): unknown[] {
  const j = batch.schema.index.get(column)!;
  return Array.from({ length: batch.length }, (_, i) => valueAt(batch.columns[j]!, i));
}

let server: SluiceServer;
let dir: string;

before(async () => {
  dir = freshDir();
  server = await testServer({ archive: true, server: { sql: { maxRows: MAX_ROWS } } });
  await ingest(server, EVENTS);
});

after(async () => {
  await server?.close();
  removeFreshDirs();
});

describe('POST /v1/sql: values', () => {
  test('the archive reads back as the events that were sent, every column type rendered by the JSON conventions', async () => {
    const r = await query(server, 'SELECT id, auction, bidder, price, channel, qty, flag, ts FROM bids ORDER BY id');
    assert.deepEqual(r.columns, [
      { name: 'id', type: 'BIGINT' }, { name: 'auction', type: 'BIGINT' }, { name: 'bidder', type: 'BIGINT' },
      { name: 'price', type: 'DOUBLE' }, { name: 'channel', type: 'VARCHAR' }, { name: 'qty', type: 'INTEGER' },
      { name: 'flag', type: 'BOOLEAN' }, { name: 'ts', type: 'TIMESTAMP' },
    ]);
    assert.equal(r.rows.length, EVENTS.length);
    assert.equal(r.truncated, undefined);
    // ids are 2^60 + i: in arrival order, and all beyond 2^53 (strings)
    for (let i = 0; i < EVENTS.length; i++) assert.deepEqual(r.rows[i], expectedRow(EVENTS, i), `event ${i}`);
    // the data exercises what it should: exact big integers, negatives, nulls, non-ASCII text, int32 limits
    const flat = r.rows.flat();
    assert.ok(flat.includes('9007199254740993') && flat.includes('-36028797018963965'), 'int64 beyond 2^53 as exact strings');
    assert.ok(flat.includes('ünïcødé ✓') && flat.includes('quote "x"') && flat.includes(''));
    assert.ok(r.rows.some((row) => (row[5] as number) > 2147483600) && r.rows.some((row) => (row[5] as number) < -2147483600), 'int32 limits');
    for (let j = 1; j < 7; j++) assert.ok(r.rows.some((row) => row[j] === null), `a null in column ${r.columns[j]!.name}`);
  });

  test('the result table has the types of DESIGN.md A3', async () => {
    const r = await query(server, 'SELECT * FROM tumble ORDER BY window_start, auction LIMIT 3');
    assert.deepEqual(r.columns, [
      { name: 'window_start', type: 'TIMESTAMP' }, { name: 'window_end', type: 'TIMESTAMP' }, { name: 'auction', type: 'BIGINT' },
      { name: 'n', type: 'BIGINT' }, { name: 'total', type: 'DOUBLE' }, { name: 'top', type: 'DOUBLE' },
    ]);
    for (const row of r.rows) {
      assert.match(row[0] as string, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d0\.000Z$/);
      assert.equal(Date.parse(row[1] as string) - Date.parse(row[0] as string), 10_000);
    }
  });

  test('HUGEINT, DECIMAL, sub-millisecond timestamps, non-finite doubles and NULL', async () => {
    const sum = (columnValues(EVENTS, 'id') as string[]).reduce((s, v) => s + BigInt(v), 0n);
    const r = await query(server,
      "SELECT sum(id) AS s, 2::HUGEINT AS h, 1.25::DECIMAL(4,2) AS d1, 12345678901234567.89::DECIMAL(19,2) AS d2, " +
      "TIMESTAMP '2024-05-01 12:00:00.123456' AS t, 'NaN'::DOUBLE AS nan, 'Infinity'::DOUBLE AS inf, '-Infinity'::DOUBLE AS ninf, " +
      'NULL::BIGINT AS nb, NULL::TIMESTAMP AS nt, NULL AS n FROM bids');
    assert.deepEqual(r.columns.map((c) => c.type), ['HUGEINT', 'HUGEINT', 'DECIMAL(4,2)', 'DECIMAL(19,2)', 'TIMESTAMP', 'DOUBLE', 'DOUBLE', 'DOUBLE', 'BIGINT', 'TIMESTAMP', 'INTEGER']);
    assert.deepEqual(r.rows, [[sum.toString(), 2, 1.25, '12345678901234567.89', '2024-05-01T12:00:00.123456Z', 'NaN', 'Infinity', '-Infinity', null, null, null]]);

    const { table } = await queryArrow(server,
      "SELECT sum(id) AS s, 2::HUGEINT AS h, 1.25::DECIMAL(4,2) AS d1, 12345678901234567.89::DECIMAL(19,2) AS d2, " +
      "TIMESTAMP '2024-05-01 12:00:00.123456' AS t, 'NaN'::DOUBLE AS nan, 'Infinity'::DOUBLE AS inf, '-Infinity'::DOUBLE AS ninf, " +
      'NULL::BIGINT AS nb, NULL::TIMESTAMP AS nt FROM bids');
    assert.deepEqual(table.schema.fields.map((f) => String(f.type)), ['Float64', 'Float64', 'Float64', 'Float64', 'Timestamp<MILLISECOND>', 'Float64', 'Float64', 'Float64', 'Int64', 'Timestamp<MILLISECOND>']);
    assert.deepEqual(arrowRow(table, 0), [Number(sum), 2, 1.25, 12345678901234567.89, Date.UTC(2024, 4, 1, 12, 0, 0, 123), NaN, Infinity, -Infinity, null, null]);
  });

  test('Arrow IPC carries the same values as JSON, with the mapped types', async () => {
    const sql = 'SELECT id, auction, bidder, price, channel, qty, flag, ts FROM bids ORDER BY id';
    const { rows } = await query(server, sql);
    const { table } = await queryArrow(server, sql);
    assert.deepEqual(table.schema.fields.map((f) => `${f.name}:${String(f.type)}`), [
      'id:Int64', 'auction:Int64', 'bidder:Int64', 'price:Float64', 'channel:Utf8', 'qty:Int32', 'flag:Bool', 'ts:Timestamp<MILLISECOND>',
    ]);
    assert.equal(table.numRows, rows.length);
    for (let i = 0; i < rows.length; i++) {
      const a = arrowRow(table, i);
      const j = rows[i]!;
      const same = [
        a[0] === null ? null : String(a[0]), a[1] === null ? null : String(a[1]), a[2] === null ? null : String(a[2]),
        a[3], a[4], a[5], a[6], a[7] === null ? null : new Date(a[7] as number).toISOString(),
      ];
      const want = [j[0] === null ? null : String(j[0]), j[1] === null ? null : String(j[1]), j[2] === null ? null : String(j[2]), ...j.slice(3)];
      assert.deepEqual(same, want, `row ${i}`);
    }
  });

  test('Arrow BIGINT: negatives, 32-bit boundaries, beyond 2^53 and the int64 extremes, exact', async () => {
    const values = ['-1', '-4294967296', '4294967295', '4294967296', '-9007199254740993', '9007199254740993', '-9223372036854775808', '9223372036854775807'];
    const sql = `SELECT ${values.map((v, i) => `'${v}'::BIGINT AS v${i}`).join(', ')}, NULL::BIGINT AS n`;
    const { table } = await queryArrow(server, sql);
    assert.deepEqual(arrowRow(table, 0), [...values.map((v) => BigInt(v)), null]);
  });

  test('Arrow keeps column names apart: repeated names get a suffix, __proto__ is a column', async () => {
    const { table } = await queryArrow(server, `SELECT 1 AS a, 'x' AS a, 2 AS "__proto__", 3 AS a_1`);
    assert.deepEqual(table.schema.fields.map((f) => `${f.name}:${String(f.type)}`), ['a:Int32', 'a_2:Utf8', '__proto__:Int32', 'a_1:Int32']);
    assert.deepEqual(arrowRow(table, 0), [1, 'x', 2, 3]);
    const r = await query(server, `SELECT 1 AS a, 'x' AS a, 2 AS "__proto__"`);
    assert.deepEqual(r.columns.map((c) => c.name), ['a', 'a', '__proto__']);
  });

  test('an empty result has its columns', async () => {
    const r = await query(server, 'SELECT id, ts FROM bids WHERE false');
    assert.deepEqual(r, { columns: [{ name: 'id', type: 'BIGINT' }, { name: 'ts', type: 'TIMESTAMP' }], rows: [] });
    const { table } = await queryArrow(server, 'SELECT id, ts FROM bids WHERE false');
    assert.equal(table.numRows, 0);
    assert.deepEqual(table.schema.names, ['id', 'ts']);
  });
});

describe('POST /v1/sql: parameters', () => {
  test('? and $n bind positionally: exact int64 strings, booleans, numbers, strings, null', async () => {
    const key = '1152921504606846983'; // 2^60 + 7: not a double
    const auction = columnValues(EVENTS, 'auction');
    const want = columnValues(EVENTS, 'id').filter((_, i) => auction[i] === key);
    assert.ok(want.length > 0, 'the data has the key');
    const q1 = await query(server, 'SELECT id FROM bids WHERE auction = ?::BIGINT ORDER BY id', [key]);
    assert.deepEqual(q1.rows.map((r) => r[0]), want);
    const q2 = await query(server, 'SELECT id FROM bids WHERE auction = $1::BIGINT ORDER BY id', [key]);
    assert.deepEqual(q2.rows, q1.rows);

    const channel = columnValues(EVENTS, 'channel'), flag = columnValues(EVENTS, 'flag'), price = columnValues(EVENTS, 'price');
    const n = channel.filter((c, i) => c === 'ünïcødé ✓' && flag[i] === true && (price[i] as number) > 100).length;
    const q3 = await query(server, 'SELECT count(*) FROM bids WHERE channel = $1 AND flag = $2 AND price > $3', ['ünïcødé ✓', true, 100]);
    assert.deepEqual(q3.rows, [[n]]);
    const q4 = await query(server, 'SELECT count(*) FROM bids WHERE channel = ? AND flag = ? AND price > ?', ['ünïcødé ✓', true, 100]);
    assert.deepEqual(q4.rows, [[n]]);

    const q5 = await query(server, 'SELECT $1 IS NULL AS a, $2 AS b, $3 AS c, $4 AS d, $5::INTEGER + $5::INTEGER AS e', [null, "it's; -- not SQL", 1.5, false, 21]);
    assert.deepEqual(q5.rows, [[true, "it's; -- not SQL", 1.5, false, 42]]);
  });

  test('parameters and placeholders must match; a parameter is a scalar', async () => {
    assertError(await post(server, sqlBody('SELECT $1, $2', [1])), 400, 'SLUICE_STORAGE_QUERY');
    assertError(await post(server, sqlBody('SELECT ?', [1, 2])), 400, 'SLUICE_STORAGE_QUERY');
    assertError(await post(server, sqlBody('SELECT $1', [{ a: 1 }])), 400, 'SLUICE_STORAGE_QUERY');
    assertError(await post(server, sqlBody('SELECT $1', [[1]])), 400, 'SLUICE_STORAGE_QUERY');
  });
});

/** Everything a refused statement could have changed: tables, catalog, settings, extensions. */
async function fingerprint(s: SluiceServer): Promise<string> {
  const parts: unknown[] = [];
  for (const sql of [
    'SELECT * FROM tumble ORDER BY ALL',
    'SELECT * FROM tumble__late ORDER BY ALL',
    'SELECT * FROM bids ORDER BY ALL',
    'SELECT database_name, schema_name, table_name, column_count FROM duckdb_tables() ORDER BY ALL',
    'SELECT database_name, schema_name, view_name FROM duckdb_views() WHERE NOT internal ORDER BY ALL',
    'SELECT database_name, schema_name, sequence_name FROM duckdb_sequences() ORDER BY ALL',
    'SELECT function_name FROM duckdb_functions() WHERE NOT internal ORDER BY ALL',
    'SELECT database_name, path, readonly FROM duckdb_databases() ORDER BY ALL',
    'SELECT schema_name, type_name FROM duckdb_types() WHERE NOT internal ORDER BY ALL',
    'SELECT extension_name, loaded, installed FROM duckdb_extensions() ORDER BY ALL',
    'SELECT name, value FROM duckdb_settings() ORDER BY name',
  ]) parts.push((await s.engine.query(sql)).rows);
  return JSON.stringify(parts);
}

describe('POST /v1/sql: read-only', () => {
  test('statements that are not SELECT / WITH / EXPLAIN / DESCRIBE / SHOW / SUMMARIZE are 400 and change nothing', async () => {
    const out = join(dir, 'out');
    const csv = join(dir, 'in.csv');
    // a file COPY FROM would load (tumble's columns), and a directory IMPORT DATABASE would run
    writeFileSync(csv, 'window_start,window_end,auction,n,total,top\n2000-01-01 00:00:00,2000-01-01 00:00:10,1,1,1,1\n');
    const imp = join(dir, 'import');
    mkdirSync(imp);
    writeFileSync(join(imp, 'schema.sql'), 'CREATE TABLE pwned (a INTEGER);\n');
    writeFileSync(join(imp, 'load.sql'), 'INSERT INTO pwned VALUES (1);\n');
    const newDb = join(dir, 'attached.duckdb');
    const before = await fingerprint(server);

    const refused: [string, string][] = [
      ['INSERT INTO tumble SELECT * FROM tumble', 'SLUICE_SQL_NOT_READ_ONLY'],
      ["INSERT INTO tumble VALUES ('2000-01-01', '2000-01-01 00:00:10', 1, 1, 1, 1) RETURNING *", 'SLUICE_SQL_NOT_READ_ONLY'],
      ['UPDATE tumble SET n = n + 1', 'SLUICE_SQL_NOT_READ_ONLY'],
      ['DELETE FROM tumble', 'SLUICE_SQL_NOT_READ_ONLY'],
      ['TRUNCATE tumble', 'SLUICE_SQL_NOT_READ_ONLY'],
      ['CREATE TABLE x (a INTEGER)', 'SLUICE_SQL_NOT_READ_ONLY'],
      ['CREATE OR REPLACE TABLE tumble AS SELECT 1 AS a', 'SLUICE_SQL_NOT_READ_ONLY'],
      ['CREATE VIEW v AS SELECT 1', 'SLUICE_SQL_NOT_READ_ONLY'],
      ['CREATE MACRO m(a) AS a + 1', 'SLUICE_SQL_NOT_READ_ONLY'],
      ['CREATE SEQUENCE s', 'SLUICE_SQL_NOT_READ_ONLY'],
      ["CREATE TYPE mood AS ENUM ('a')", 'SLUICE_SQL_NOT_READ_ONLY'],
      ['CREATE SCHEMA s2', 'SLUICE_SQL_NOT_READ_ONLY'],
      ["CREATE SECRET s (TYPE s3, KEY_ID 'x', SECRET 'y')", 'SLUICE_SQL_NOT_READ_ONLY'],
      ['DROP TABLE tumble', 'SLUICE_SQL_NOT_READ_ONLY'],
      ['ALTER TABLE tumble ADD COLUMN z INTEGER', 'SLUICE_SQL_NOT_READ_ONLY'],
      ['ALTER TABLE tumble RENAME TO t2', 'SLUICE_SQL_NOT_READ_ONLY'],
      ['COMMENT ON TABLE tumble IS \'x\'', 'SLUICE_SQL_NOT_READ_ONLY'],
      [`COPY tumble TO '${out}.csv'`, 'SLUICE_SQL_NOT_READ_ONLY'],
      [`COPY (SELECT * FROM tumble) TO '${out}.parquet' (FORMAT parquet)`, 'SLUICE_SQL_NOT_READ_ONLY'],
      [`COPY tumble FROM '${csv}'`, 'SLUICE_SQL_NOT_READ_ONLY'],
      [`ATTACH '${newDb}' AS a2`, 'SLUICE_SQL_NOT_READ_ONLY'],
      ["ATTACH ':memory:' AS m", 'SLUICE_SQL_NOT_READ_ONLY'],
      ['DETACH sluice', 'SLUICE_SQL_NOT_READ_ONLY'],
      ['INSTALL httpfs', 'SLUICE_SQL_NOT_READ_ONLY'],
      ['LOAD httpfs', 'SLUICE_SQL_NOT_READ_ONLY'],
      ['FORCE INSTALL json', 'SLUICE_SQL_NOT_READ_ONLY'],
      ['UPDATE EXTENSIONS', 'SLUICE_SQL_NOT_READ_ONLY'],
      // PRAGMA is refused even where it only reads: A4 allows SELECT / WITH / EXPLAIN /
      // DESCRIBE / SHOW / SUMMARIZE, and the catalog functions read the same things
      ['PRAGMA version', 'SLUICE_SQL_NOT_READ_ONLY'],
      ['PRAGMA show_tables', 'SLUICE_SQL_NOT_READ_ONLY'],
      ["PRAGMA table_info('tumble')", 'SLUICE_SQL_NOT_READ_ONLY'],
      ['PRAGMA database_size', 'SLUICE_SQL_NOT_READ_ONLY'],
      ['PRAGMA enable_profiling', 'SLUICE_SQL_NOT_READ_ONLY'],
      ['SET threads = 1', 'SLUICE_SQL_NOT_READ_ONLY'],
      ["SET GLOBAL memory_limit = '1GB'", 'SLUICE_SQL_NOT_READ_ONLY'],
      ['SET VARIABLE v = 1', 'SLUICE_SQL_NOT_READ_ONLY'],
      ['RESET threads', 'SLUICE_SQL_NOT_READ_ONLY'],
      ['CALL pragma_version()', 'SLUICE_SQL_NOT_READ_ONLY'],
      ['CALL checkpoint()', 'SLUICE_SQL_NOT_READ_ONLY'],
      [`EXPORT DATABASE '${out}-export'`, 'SLUICE_SQL_NOT_READ_ONLY'],
      [`IMPORT DATABASE '${imp}'`, 'SLUICE_SQL_NOT_READ_ONLY'],
      ['CHECKPOINT', 'SLUICE_SQL_NOT_READ_ONLY'],
      ['FORCE CHECKPOINT', 'SLUICE_SQL_NOT_READ_ONLY'],
      ['VACUUM', 'SLUICE_SQL_NOT_READ_ONLY'],
      ['ANALYZE', 'SLUICE_SQL_NOT_READ_ONLY'],
      ['USE memory', 'SLUICE_SQL_NOT_READ_ONLY'],
      ['BEGIN', 'SLUICE_SQL_NOT_READ_ONLY'],
      ['BEGIN TRANSACTION', 'SLUICE_SQL_NOT_READ_ONLY'],
      ['COMMIT', 'SLUICE_SQL_NOT_READ_ONLY'],
      ['ROLLBACK', 'SLUICE_SQL_NOT_READ_ONLY'],
      ['PREPARE p AS SELECT 1', 'SLUICE_SQL_NOT_READ_ONLY'],
      ['EXECUTE p', 'SLUICE_SQL_NOT_READ_ONLY'],
      ['DEALLOCATE p', 'SLUICE_SQL_NOT_READ_ONLY'],
      // several statements, however the separator hides
      ['SELECT 1; DROP TABLE tumble', 'SLUICE_SQL_NOT_READ_ONLY'],
      ['SELECT 1; SELECT 2', 'SLUICE_SQL_NOT_READ_ONLY'],
      ["SELECT ';'; DELETE FROM tumble", 'SLUICE_SQL_NOT_READ_ONLY'],
      ["SELECT 'a'';b'; DELETE FROM tumble", 'SLUICE_SQL_NOT_READ_ONLY'],
      ['SELECT 1 -- x\n; DELETE FROM tumble', 'SLUICE_SQL_NOT_READ_ONLY'],
      ['/* ; */ SELECT 1; /* ; */ DELETE FROM tumble', 'SLUICE_SQL_NOT_READ_ONLY'],
      ['SELECT "a;b" FROM (SELECT 1 AS "a;b"); UPDATE tumble SET n = 0', 'SLUICE_SQL_NOT_READ_ONLY'],
      [`SELECT 1; IMPORT DATABASE '${imp}'`, 'SLUICE_SQL_NOT_READ_ONLY'],
      ['SELECT 1; PRAGMA version', 'SLUICE_SQL_NOT_READ_ONLY'],
      // a read form around a write
      ['EXPLAIN ANALYZE DELETE FROM tumble', 'SLUICE_SQL_NOT_READ_ONLY'],
      ['EXPLAIN DELETE FROM tumble', 'SLUICE_SQL_NOT_READ_ONLY'],
      [`EXPLAIN COPY tumble TO '${out}-explain.csv'`, 'SLUICE_SQL_NOT_READ_ONLY'],
      ['EXPLAIN (FORMAT JSON) DELETE FROM tumble', 'SLUICE_SQL_NOT_READ_ONLY'],
      ['(DELETE FROM tumble)', 'SLUICE_STORAGE_QUERY'], // not SQL
      ['/* SELECT */ DELETE FROM tumble', 'SLUICE_SQL_NOT_READ_ONLY'],
      ['/* /* nested */ SELECT */ DELETE FROM tumble', 'SLUICE_SQL_NOT_READ_ONLY'],
      // DuckDB has no writable CTE: the parser refuses it
      ['WITH d AS (DELETE FROM tumble RETURNING *) SELECT * FROM d', 'SLUICE_STORAGE_QUERY'],
      ['WITH i AS (INSERT INTO tumble SELECT * FROM tumble RETURNING *) SELECT count(*) FROM i', 'SLUICE_STORAGE_QUERY'],
      // a PIVOT without IN (...) is a CREATE TYPE plus a SELECT
      ['PIVOT tumble ON auction USING sum(n)', 'SLUICE_SQL_NOT_READ_ONLY'],
      // reading files, URLs, other databases; dynamic SQL; functions with effects
      ["SELECT * FROM read_csv('/etc/passwd')", 'SLUICE_SQL_NOT_READ_ONLY'],
      ["SELECT * FROM read_csv_auto('/etc/passwd')", 'SLUICE_SQL_NOT_READ_ONLY'],
      ["SELECT content FROM read_text('/etc/hostname')", 'SLUICE_SQL_NOT_READ_ONLY'],
      ["FROM read_blob('/etc/hostname')", 'SLUICE_SQL_NOT_READ_ONLY'],
      ["SELECT * FROM read_json_auto('/etc/passwd')", 'SLUICE_SQL_NOT_READ_ONLY'],
      ["SELECT * FROM read_parquet('/etc/passwd')", 'SLUICE_SQL_NOT_READ_ONLY'],
      ["SELECT * FROM parquet_metadata('/etc/passwd')", 'SLUICE_SQL_NOT_READ_ONLY'],
      ["SELECT * FROM sniff_csv('/etc/passwd')", 'SLUICE_SQL_NOT_READ_ONLY'],
      ["SELECT * FROM glob('/etc/*')", 'SLUICE_SQL_NOT_READ_ONLY'],
      [`SELECT * FROM read_duckdb('${join(dir, 'x.duckdb')}')`, 'SLUICE_SQL_NOT_READ_ONLY'],
      ["SELECT * FROM '/etc/passwd'", 'SLUICE_SQL_NOT_READ_ONLY'],
      [`SELECT * FROM '${csv}'`, 'SLUICE_SQL_NOT_READ_ONLY'],
      [`FROM "${csv}"`, 'SLUICE_SQL_NOT_READ_ONLY'],
      [`DESCRIBE '${csv}'`, 'SLUICE_SQL_NOT_READ_ONLY'],
      [`SUMMARIZE '${csv}'`, 'SLUICE_SQL_NOT_READ_ONLY'],
      [`SHOW '${csv}'`, 'SLUICE_SQL_NOT_READ_ONLY'],
      ['SELECT * FROM probe.csv', 'SLUICE_SQL_NOT_READ_ONLY'],
      ["SELECT * FROM 'https://example.com/x.csv'", 'SLUICE_SQL_NOT_READ_ONLY'],
      ["SELECT * FROM read_csv('https://example.com/x.csv')", 'SLUICE_SQL_NOT_READ_ONLY'],
      [`SELECT * FROM tumble WHERE auction IN (SELECT size FROM read_blob('${csv}'))`, 'SLUICE_SQL_NOT_READ_ONLY'],
      [`SELECT (SELECT content FROM read_text('${csv}'))`, 'SLUICE_SQL_NOT_READ_ONLY'],
      [`WITH f AS MATERIALIZED (SELECT * FROM read_text('${csv}')) SELECT * FROM f`, 'SLUICE_SQL_NOT_READ_ONLY'],
      [`EXPLAIN SELECT * FROM read_text('${csv}')`, 'SLUICE_SQL_NOT_READ_ONLY'],
      [`EXPLAIN ANALYZE (SELECT * FROM read_text('${csv}'))`, 'SLUICE_SQL_NOT_READ_ONLY'],
      [`EXPLAIN (FORMAT JSON) SELECT * FROM read_text('${csv}')`, 'SLUICE_SQL_NOT_READ_ONLY'],
      ["SELECT * FROM query('DELETE FROM tumble')", 'SLUICE_SQL_NOT_READ_ONLY'],
      ["SELECT * FROM query_table('tumble')", 'SLUICE_SQL_NOT_READ_ONLY'],
      ["SELECT * FROM json_execute_serialized_sql(json_serialize_sql('SELECT 1'))", 'SLUICE_SQL_NOT_READ_ONLY'],
      ['SELECT * FROM checkpoint()', 'SLUICE_SQL_NOT_READ_ONLY'],
      ['SELECT * FROM force_checkpoint()', 'SLUICE_SQL_NOT_READ_ONLY'],
      ['SELECT * FROM enable_logging()', 'SLUICE_SQL_NOT_READ_ONLY'],
      ['SELECT * FROM enable_profiling()', 'SLUICE_SQL_NOT_READ_ONLY'],
      ['SELECT * FROM duckdb_logs()', 'SLUICE_SQL_NOT_READ_ONLY'],
      ['SELECT * FROM arrow_scan(1, 2, 3)', 'SLUICE_SQL_NOT_READ_ONLY'],
      ["SELECT write_log('x')", 'SLUICE_SQL_NOT_READ_ONLY'],
      // extensions are not loaded (nor downloaded) by a query
      ['SELECT ST_Point(1, 2)', 'SLUICE_STORAGE_QUERY'],
      ["SELECT '127.0.0.1'::INET", 'SLUICE_STORAGE_QUERY'],
      ["SELECT * FROM sqlite_scan('/x.db', 't')", 'SLUICE_SQL_NOT_READ_ONLY'],
      // no statement at all
      ['-- only a comment', 'SLUICE_SQL_NOT_READ_ONLY'],
      [';', 'SLUICE_SQL_NOT_READ_ONLY'],
    ];
    // twice: a refused text is checked again, never remembered as passed
    for (let round = 0; round < 2; round++) {
      for (const [sql, code] of refused) {
        const started = Date.now();
        assertError(await post(server, sqlBody(sql)), 400, code, sql);
        // refused without a download attempt or a file read
        assert.ok(Date.now() - started < 5000, `${sql} answered quickly`);
      }
    }
    assert.equal(await fingerprint(server), before, 'the database, its settings and extensions are unchanged');
    for (const f of [`${out}.csv`, `${out}.parquet`, `${out}-export`, `${out}-explain.csv`, newDb]) assert.ok(!existsSync(f), `${f} was not written`);
    // and the server still answers
    assert.deepEqual((await query(server, 'SELECT count(*) FROM tumble')).rows.length, 1);
  });

  test('allowed: SELECT, WITH, FROM, VALUES, TABLE, EXPLAIN, DESCRIBE, SHOW, SUMMARIZE, PIVOT ... IN, comments, a trailing semicolon', async () => {
    const n = EVENTS.length;
    const windows = (await server.engine.query('SELECT count(*) FROM tumble')).rows[0]![0];
    const cases: [string, (r: SqlAnswer) => void][] = [
      ['SELECT 42 AS x', (r) => assert.deepEqual(r.rows, [[42]])],
      ['SELECT 42 AS x;', (r) => assert.deepEqual(r.rows, [[42]])],
      ['SELECT 42 AS x ;  \n', (r) => assert.deepEqual(r.rows, [[42]])],
      ['SELECT 42 AS x; -- done', (r) => assert.deepEqual(r.rows, [[42]])],
      ['-- a comment; with a semicolon\n/* and ; a block */ SELECT 42 AS x', (r) => assert.deepEqual(r.rows, [[42]])],
      ['/* /* nested */ DELETE */ SELECT 42 AS x', (r) => assert.deepEqual(r.rows, [[42]])],
      ["SELECT ';' AS s, 'a--b' AS t, '/*' AS u, 'DROP TABLE tumble;' AS v", (r) => assert.deepEqual(r.rows, [[';', 'a--b', '/*', 'DROP TABLE tumble;']])],
      ['(SELECT count(*) FROM bids)', (r) => assert.deepEqual(r.rows, [[n]])],
      ['WITH w AS (SELECT count(*) AS c FROM bids) SELECT c FROM w', (r) => assert.deepEqual(r.rows, [[n]])],
      ['WITH RECURSIVE r(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM r WHERE i < 3) SELECT sum(i) FROM r', (r) => assert.deepEqual(r.rows, [[6]])],
      ['FROM bids SELECT count(*)', (r) => assert.deepEqual(r.rows, [[n]])],
      ['VALUES (1, 2)', (r) => assert.deepEqual(r.rows, [[1, 2]])],
      ['TABLE tumble', (r) => assert.equal(r.rows.length, windows)],
      ['SELECT count(*) FROM main.bids', (r) => assert.deepEqual(r.rows, [[n]])],
      ['SELECT count(*) FROM sluice.main.bids', (r) => assert.deepEqual(r.rows, [[n]])],
      ["SELECT table_name FROM information_schema.tables WHERE table_name = 'tumble'", (r) => assert.deepEqual(r.rows, [['tumble']])],
      ["SELECT table_name FROM duckdb_tables() WHERE table_name = 'bids'", (r) => assert.deepEqual(r.rows, [['bids']])],
      ['SELECT sum(range) FROM range(5)', (r) => assert.deepEqual(r.rows, [[10]])],
      ['SELECT count(*) FROM generate_series(1, 10)', (r) => assert.deepEqual(r.rows, [[10]])],
      ['SELECT list_sum([x * 2 FOR x IN [1, 2, 3]]), lower(channel), row_number() OVER () FROM bids LIMIT 1', (r) => assert.equal(r.rows.length, 1)],
      ['EXPLAIN SELECT count(*) FROM bids', (r) => assert.deepEqual(r.columns.map((c) => c.name), ['explain_key', 'explain_value'])],
      ['EXPLAIN ANALYZE SELECT count(*) FROM bids', (r) => assert.deepEqual(r.columns.map((c) => c.name), ['explain_key', 'explain_value'])],
      ['EXPLAIN (FORMAT JSON) SELECT 1', (r) => assert.equal(r.rows.length, 1)],
      ['EXPLAIN (SELECT 1)', (r) => assert.equal(r.rows.length, 1)],
      ['DESCRIBE bids', (r) => assert.deepEqual(r.rows.map((x) => x[0]), Object.keys(BIDS_COLUMNS))],
      ['DESC tumble', (r) => assert.deepEqual(r.rows.map((x) => x[0]), ['window_start', 'window_end', 'auction', 'n', 'total', 'top'])],
      ['SHOW TABLES', (r) => assert.ok(r.rows.some((x) => x[0] === 'tumble') && r.rows.some((x) => x[0] === 'bids'))],
      ['SHOW ALL TABLES', (r) => assert.ok(r.rows.length >= 3)],
      ['SHOW tumble', (r) => assert.equal(r.rows.length, 6)],
      ['SUMMARIZE bids', (r) => assert.deepEqual(r.rows.map((x) => x[0]), Object.keys(BIDS_COLUMNS))],
      ['PIVOT (SELECT flag FROM bids) ON flag IN (true, false) USING count(*)', (r) => assert.deepEqual(r.columns.map((c) => c.name), ['true', 'false'])],
    ];
    // twice: the second time the text skips the parser and reference checks it passed
    for (const round of [1, 2]) {
      for (const [sql, check] of cases) {
        const r = await query(server, sql);
        try {
          check(r);
        } catch (err) {
          assert.fail(`${sql} (round ${round}): ${err instanceof Error ? err.message : String(err)}`);
        }
      }
    }
  });

  test('bad SQL is a 400 with DuckDB\'s message', async () => {
    assert.match(assertError(await post(server, sqlBody('SELEC 1')), 400, 'SLUICE_STORAGE_QUERY'), /syntax error/i);
    assert.match(assertError(await post(server, sqlBody('SELECT 1 +')), 400, 'SLUICE_STORAGE_QUERY'), /syntax error/i);
    assert.match(assertError(await post(server, sqlBody("SELECT 'unterminated")), 400, 'SLUICE_STORAGE_QUERY'), /unterminated/i);
    assert.match(assertError(await post(server, sqlBody('SELECT * FROM nosuch')), 400, 'SLUICE_STORAGE_QUERY'), /Catalog Error.*nosuch/);
    assert.match(assertError(await post(server, sqlBody('SELECT nosuch FROM bids')), 400, 'SLUICE_STORAGE_QUERY'), /Binder Error.*nosuch/);
    assert.match(assertError(await post(server, sqlBody('SELECT nosuch(1)')), 400, 'SLUICE_STORAGE_QUERY'), /nosuch/);
    // as JSON, also when Arrow was asked for
    const a = await post(server, sqlBody('SELEC 1'), { 'content-type': 'application/json', accept: ARROW });
    assertError(a, 400, 'SLUICE_STORAGE_QUERY');
  });
});

describe('POST /v1/sql: limits', () => {
  test('server.sql.maxRows cuts a result: truncated: true and Sluice-Truncated, in JSON and Arrow', async () => {
    const full = await post(server, sqlBody(`SELECT * FROM range(${MAX_ROWS})`));
    assert.equal(full.status, 200);
    assert.equal(full.headers.get('sluice-truncated'), null);
    const fullBody = json(full) as SqlAnswer;
    assert.equal(fullBody.rows.length, MAX_ROWS);
    assert.ok(!('truncated' in fullBody));

    const cut = await post(server, sqlBody(`SELECT * FROM range(${MAX_ROWS + 1})`));
    assert.equal(cut.status, 200);
    assert.equal(cut.headers.get('sluice-truncated'), 'true');
    const cutBody = json(cut) as SqlAnswer;
    assert.equal(cutBody.truncated, true);
    assert.deepEqual(cutBody.rows, fullBody.rows);

    const { answer, table } = await queryArrow(server, 'SELECT * FROM range(1000000000)');
    assert.equal(answer.headers.get('sluice-truncated'), 'true');
    assert.equal(table.numRows, MAX_ROWS);
    assert.equal(table.getChildAt(0)!.get(MAX_ROWS - 1), BigInt(MAX_ROWS - 1));
  });

  // without the interrupt these queries run for minutes: fail instead
  test('server.sql.timeout interrupts a slow query quickly with SLUICE_SQL_TIMEOUT; the server keeps answering', { timeout: 60_000 }, async () => {
    const slow = await testServer({ server: { sql: { timeout: '300ms' } } });
    try {
      for (const sql of [
        'SELECT count(*) FROM range(1000000000000)',
        'SELECT count(*) FROM range(10000000) a, range(10000000) b',
        'SELECT sum(a.range * b.range) FROM range(1000000) a, range(1000000) b',
      ]) {
        const started = Date.now();
        const a = await post(slow, sqlBody(sql));
        const ms = Date.now() - started;
        assert.match(assertError(a, 400, 'SLUICE_SQL_TIMEOUT', sql), /300ms/);
        assert.ok(ms >= 250 && ms < 5000, `${sql}: answered after ${ms} ms`);
        const started2 = Date.now();
        assert.deepEqual((await query(slow, 'SELECT 42')).rows, [[42]]);
        // the interrupted query is not still running on the cores
        assert.ok(Date.now() - started2 < 2000, `the next query waited ${Date.now() - started2} ms`);
      }
      const a = await post(slow, sqlBody('SELECT count(*) FROM range(1000000000000)'), { 'content-type': 'application/json', accept: ARROW });
      assertError(a, 400, 'SLUICE_SQL_TIMEOUT');
    } finally {
      await slow.close();
    }
  });
});

describe('POST /v1/sql: request bodies', () => {
  test('malformed JSON bodies are 400 SLUICE_BAD_REQUEST', async () => {
    const bad: [string, RegExp][] = [
      ['SELECT 1', /not JSON/],
      ['{"sql": "SELECT 1"', /not JSON/],
      ['{}', /"sql"/],
      ['{"sql": ""}', /"sql"/],
      ['{"sql": 1}', /"sql"/],
      ['{"sql": ["SELECT 1"]}', /"sql"/],
      ['[]', /JSON object/],
      ['"SELECT 1"', /JSON object/],
      ['null', /JSON object/],
      ['{"sql": "SELECT 1", "params": {}}', /"params"/],
      ['{"sql": "SELECT 1", "params": "1"}', /"params"/],
      ['{"sql": "SELECT 1", "parms": [1]}', /parms/],
      ['', /not JSON/],
    ];
    for (const [body, message] of bad) assert.match(assertError(await post(server, body), 400, 'SLUICE_BAD_REQUEST', body), message, body);
  });

  test('text/plain (and no Content-Type): the JSON object, or the SQL text itself', async () => {
    for (const type of ['text/plain', 'text/plain; charset=utf-8', 'application/x-www-form-urlencoded']) {
      const raw = await post(server, 'SELECT 41 + 1 AS x', { 'content-type': type });
      assert.equal(raw.status, 200, raw.text);
      assert.deepEqual(json(raw), { columns: [{ name: 'x', type: 'INTEGER' }], rows: [[42]] });
      const obj = await post(server, sqlBody('SELECT $1::INTEGER + 1 AS x', [41]), { 'content-type': type });
      assert.deepEqual(json(obj), { columns: [{ name: 'x', type: 'INTEGER' }], rows: [[42]] });
      assertError(await post(server, 'DROP TABLE tumble', { 'content-type': type }), 400, 'SLUICE_SQL_NOT_READ_ONLY');
      assertError(await post(server, '  \n', { 'content-type': type }), 400, 'SLUICE_BAD_REQUEST');
      assertError(await post(server, '{"sql": 1}', { 'content-type': type }), 400, 'SLUICE_BAD_REQUEST');
    }
    // fetch sends a string body as text/plain unless told otherwise
    const implicit = await call(server, '/v1/sql', { method: 'POST', body: sqlBody('SELECT 42 AS x') });
    assert.deepEqual((json(implicit) as SqlAnswer).rows, [[42]]);
    const none = await call(server, '/v1/sql', { method: 'POST', body: new TextEncoder().encode('SELECT 42 AS x') });
    assert.deepEqual((json(none) as SqlAnswer).rows, [[42]]);
  });

  test('other Content-Types are 415', async () => {
    for (const type of ['application/xml', 'application/msgpack', ARROW]) {
      assertError(await post(server, sqlBody('SELECT 1'), { 'content-type': type }), 415, 'SLUICE_UNSUPPORTED_MEDIA_TYPE', type);
    }
  });

  test('a body over 1 MiB is 413, with or without Content-Length; up to it is read', async () => {
    const limit = 1 << 20;
    const atLimit = `{"sql": "SELECT 7 AS x${' '.repeat(limit - 24)}"}`;
    assert.equal(Buffer.byteLength(atLimit), limit);
    assert.deepEqual((json(await post(server, atLimit)) as SqlAnswer).rows, [[7]]);
    const over = `${atLimit} `;
    assert.match(assertError(await post(server, over), 413, 'SLUICE_PAYLOAD_TOO_LARGE'), /1048576/);
    // chunked: no Content-Length, the limit is found while reading
    const chunks = [new TextEncoder().encode(over.slice(0, limit / 2)), new TextEncoder().encode(over.slice(limit / 2))];
    const stream = new ReadableStream<Uint8Array>({
      pull(controller) {
        const c = chunks.shift();
        if (c === undefined) controller.close();
        else controller.enqueue(c);
      },
    });
    const init = { method: 'POST', headers: { 'content-type': 'application/json' }, body: stream, duplex: 'half' } as RequestInit;
    assertError(await call(server, '/v1/sql', init), 413, 'SLUICE_PAYLOAD_TOO_LARGE');
    assert.deepEqual((await query(server, 'SELECT 1 AS x')).rows, [[1]]);
  });
});
