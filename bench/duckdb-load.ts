/** Load a Batch into a DuckDB table through data chunks (the same path the DuckDB sink uses). */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';
import type { Batch } from '../engine/schema.js';
import { ChunkWriter, SQL_TYPE_OF } from '../engine/duckdb-append.js';

/** The bids schema as a DuckDB `columns = {...}` struct literal for read_json / read_ndjson. */
export const BIDS_SQL_COLUMNS = "{auction: 'BIGINT', bidder: 'BIGINT', price: 'DOUBLE', channel: 'VARCHAR', ts: 'BIGINT'}";

/** CREATE TABLE (timestamps as BIGINT ms, as the kernels see them) and append every row. */
export async function loadIntoDuckDB(conn: DuckDBConnection, table: string, batch: Batch): Promise<void> {
  const types = batch.schema.fields.map((f) => (f.type === 'timestamp' ? 'DOUBLE' : SQL_TYPE_OF[f.type]));
  await conn.run(`CREATE OR REPLACE TABLE ${table} (${batch.schema.fields.map((f, i) => `"${f.name}" ${types[i]}`).join(', ')})`);
  const appender = await conn.createAppender(table);
  const writer = new ChunkWriter(types);
  const columns = batch.columns.map((c) => (c.type === 'timestamp' ? { type: 'values' as const, values: c.values, valid: c.valid } : c));
  writer.append(appender, columns, 0, batch.length);
  appender.closeSync();
  // ms as BIGINT so `ts // 10000` is integer arithmetic, as in the kernels
  await conn.run(`ALTER TABLE ${table} ALTER ts TYPE BIGINT`);
}

/** `fn` with a connection to a fresh DuckDB file in a temporary directory, removed afterwards. */
export async function withTempDuckDB<T>(fn: (conn: DuckDBConnection) => Promise<T>): Promise<T> {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-bench-duck-'));
  try {
    const instance = await DuckDBInstance.create(join(dir, 'bench.duckdb'));
    const conn = await instance.connect();
    try {
      return await fn(conn);
    } finally {
      conn.closeSync();
      instance.closeSync();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
