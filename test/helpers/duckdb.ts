/**
 * DuckDB as the independent oracle: load a Batch row by row (per-value appender — slow and
 * obviously correct, which is the point here) and read query results as plain JS values.
 */
import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';
import type { Batch } from '../../engine/schema.js';
import { int64ToString, isValid } from '../../engine/schema.js';

export async function openMemory(): Promise<{ instance: DuckDBInstance; conn: DuckDBConnection; close(): void }> {
  const instance = await DuckDBInstance.create(':memory:');
  const conn = await instance.connect();
  return {
    instance,
    conn,
    close() {
      conn.closeSync();
      instance.closeSync();
    },
  };
}

const SQL_TYPE = { bool: 'BOOLEAN', int32: 'INTEGER', int64: 'BIGINT', float64: 'DOUBLE', string: 'VARCHAR', timestamp: 'BIGINT' } as const;

/**
 * Create `table` with the batch's columns (timestamps as BIGINT milliseconds) plus `rid`, the
 * row's position in arrival order, and append every row.
 */
export async function loadBatch(conn: DuckDBConnection, table: string, batch: Batch): Promise<void> {
  const cols = batch.schema.fields.map((f) => `"${f.name}" ${SQL_TYPE[f.type]}`);
  await conn.run(`CREATE TABLE ${table} (${cols.join(', ')}, rid BIGINT)`);
  const app = await conn.createAppender(table);
  for (let r = 0; r < batch.length; r++) {
    batch.columns.forEach((c) => {
      if (!isValid(c, r)) return app.appendNull();
      switch (c.type) {
        case 'bool': return app.appendBoolean(c.values[r] === 1);
        case 'int32': return app.appendInteger(c.values[r]!);
        case 'int64': return app.appendBigInt(BigInt(int64ToString(c.words[2 * r]!, c.words[2 * r + 1]!)));
        case 'float64': return app.appendDouble(c.values[r]!);
        case 'timestamp': return app.appendBigInt(BigInt(c.values[r]!));
        case 'string': return app.appendVarchar(c.dict[c.codes[r]!]!);
      }
    });
    app.appendBigInt(BigInt(r));
    app.endRow();
  }
  app.closeSync();
}

export type JsValue = null | boolean | number | bigint | string;

export async function queryRows(conn: DuckDBConnection, sql: string): Promise<JsValue[][]> {
  const reader = await conn.runAndReadAll(sql);
  return reader.getRowsJS() as JsValue[][];
}
