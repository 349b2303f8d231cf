/**
 * A query result (JSON-ready values, DuckDB type names) as an Arrow IPC stream, for
 * `POST /v1/sql` with `Accept: application/vnd.apache.arrow.stream`. Results are bounded by
 * server.sql.maxRows, so building them with apache-arrow's vector builders is fine here.
 *
 * DuckDB type → Arrow: BOOLEAN → Bool; TINYINT / SMALLINT / INTEGER / UTINYINT / USMALLINT →
 * Int32; BIGINT / UINTEGER → Int64; FLOAT / DOUBLE / DECIMAL / UBIGINT / HUGEINT → Float64
 * (sum() over BIGINT is a HUGEINT in DuckDB: a double reads naturally; cast to VARCHAR for exact
 * digits beyond 2^53); TIMESTAMP (any unit, with or without time zone) → Timestamp[ms]; DATE →
 * Date32; anything else → Utf8 (strings as they are, other values as JSON text).
 */

import {
  Bool, DateDay, Field, Float64, Int32, Int64, RecordBatch, Schema, Struct, Table, TimestampMillisecond, Utf8, makeData, tableToIPC,
  vectorFromArray, type Data, type DataType,
} from 'apache-arrow';
import type { QueryResult } from '../engine/runtime.js';
import { setInt64At } from '../engine/schema.js';

type Kind = 'bool' | 'int32' | 'int64' | 'float64' | 'timestamp' | 'date' | 'utf8';

function kindOf(duckType: string): Kind {
  const t = duckType.toUpperCase();
  if (t === 'BOOLEAN') return 'bool';
  if (t === 'TINYINT' || t === 'SMALLINT' || t === 'INTEGER' || t === 'UTINYINT' || t === 'USMALLINT') return 'int32';
  if (t === 'BIGINT' || t === 'UINTEGER') return 'int64';
  if (t === 'FLOAT' || t === 'DOUBLE' || t.startsWith('DECIMAL') || t === 'UBIGINT' || t === 'HUGEINT' || t === 'UHUGEINT') return 'float64';
  if (t.startsWith('TIMESTAMP')) return 'timestamp';
  if (t === 'DATE') return 'date';
  return 'utf8';
}

function toNumber(v: unknown): number | null {
  if (v === null) return null;
  if (typeof v === 'number') return v;
  if (typeof v === 'string') {
    const n = Number(v);
    return Number.isNaN(n) && v !== 'NaN' ? null : n;
  }
  return null;
}

function toTime(v: unknown): number | null {
  if (typeof v !== 'string') return typeof v === 'number' ? v : null;
  const ms = Date.parse(v);
  return Number.isNaN(ms) ? null : ms;
}

/**
 * Per kind: the Arrow type, and a JSON-ready value (never undefined) as apache-arrow takes it.
 * int64 is built by int64Column.
 */
const KINDS: Readonly<Record<Exclude<Kind, 'int64'>, { readonly type: () => DataType; readonly value: (v: unknown) => unknown }>> = {
  bool: { type: () => new Bool(), value: (v) => (v === null ? null : Boolean(v)) },
  int32: { type: () => new Int32(), value: toNumber },
  float64: { type: () => new Float64(), value: toNumber },
  timestamp: { type: () => new TimestampMillisecond(), value: toTime },
  date: {
    type: () => new DateDay(),
    value: (v) => {
      const ms = toTime(v);
      return ms === null ? null : new Date(ms);
    },
  },
  utf8: { type: () => new Utf8(), value: (v) => (v === null ? null : typeof v === 'string' ? v : JSON.stringify(v)) },
};

/** Column j of the rows as a vector of `kind`. */
function column(kind: Kind, rows: readonly (readonly unknown[])[], j: number): Data {
  if (kind === 'int64') return int64Column(rows, j);
  const k = KINDS[kind];
  // vectorFromArray builds one chunk
  return vectorFromArray(rows.map((r) => k.value(r[j] ?? null)), k.type()).data[0]!;
}

/**
 * An int64 column written as two 32-bit words per row, without a BigInt per row (DESIGN.md B2):
 * the values arrive as numbers, exact below 2^53; only a decimal string (beyond 2^53) goes
 * through BigInt.
 */
function int64Column(rows: readonly (readonly unknown[])[], j: number): Data {
  const n = rows.length;
  const words = new Int32Array(2 * n);
  const values = new BigInt64Array(words.buffer);
  const valid = new Uint8Array((n + 7) >> 3);
  let nulls = 0;
  for (let i = 0; i < n; i++) {
    const v = rows[i]![j] ?? null;
    if (v === null) {
      nulls++;
      continue;
    }
    valid[i >> 3]! |= 1 << (i & 7);
    if (typeof v === 'string') values[i] = BigInt(v);
    else setInt64At(words, i, Math.trunc(v as number));
  }
  return makeData({ type: new Int64(), length: n, nullCount: nulls, nullBitmap: nulls === 0 ? null : valid, data: values });
}

/**
 * The IPC stream of a result. Columns keep /v1/sql's names, except that a repeated name gets a
 * suffix no other column has (`SELECT 1 AS a, 'x' AS a` → a, a_1): apache-arrow's RecordBatch
 * merges fields by name (Schema.assign), which would give both columns the type of the last.
 * The schema is built from Fields, not from an object of named vectors, so `__proto__` is a
 * name like any other (as an object key it set the prototype and the column vanished).
 */
export function queryResultArrow(result: QueryResult): Uint8Array {
  const taken = new Set(result.columns.map((c) => c.name));
  const seen = new Set<string>();
  const fields: Field[] = [];
  const children: Data[] = [];
  result.columns.forEach((c, j) => {
    let name = c.name;
    if (seen.has(name)) {
      let k = 1;
      while (taken.has(`${c.name}_${k}`)) k++;
      name = `${c.name}_${k}`;
      taken.add(name);
    }
    seen.add(name);
    const data = column(kindOf(c.type), result.rows, j);
    fields.push(new Field(name, data.type as DataType, true));
    children.push(data);
  });
  const data = makeData({ type: new Struct(fields), length: result.rows.length, nullCount: 0, children });
  return tableToIPC(new Table([new RecordBatch(new Schema(fields), data)]), 'stream');
}
