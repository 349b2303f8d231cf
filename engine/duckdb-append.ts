/**
 * Columns → DuckDB through data chunks (DESIGN.md B2: `appendDataChunk`, never the per-value
 * appender or INSERT). Fixed-width columns are copied into the chunk's vectors as raw bytes
 * (`copy_data_to_vector`): an int64 column's word pairs are exactly DuckDB's BIGINT layout,
 * float64 is DOUBLE. Timestamps become TIMESTAMP (int64 microseconds) through 32-bit words,
 * never a BigInt per row. Strings of at most 12 UTF-8 bytes are written as DuckDB's inlined
 * `duckdb_string_t` (length + the bytes, zero-padded: 16 bytes, no pointer), built once per
 * dictionary entry and copied per row like a fixed-width column; a longer string is assigned once
 * per chunk (`vector_assign_string_element`, a native call — ~4x the cost of the whole row of a
 * 5-column archive, measured) and the rows repeating it get a copy of its string_t. Only result
 * keys, archived raw strings and late rows' reasons are strings.
 */

import duckdb from '@duckdb/node-bindings';
import {
  DuckDBBigIntType,
  DuckDBBooleanType,
  DuckDBDataChunk,
  DuckDBDoubleType,
  DuckDBIntegerType,
  DuckDBTimestampType,
  DuckDBVarCharType,
  type DuckDBAppender,
  type DuckDBType,
} from '@duckdb/node-api';
import { setInt64At, type Column, type ColumnType } from './schema.js';

export type SqlType = 'BOOLEAN' | 'INTEGER' | 'BIGINT' | 'DOUBLE' | 'VARCHAR' | 'TIMESTAMP';

export const SQL_TYPE_OF: Readonly<Record<ColumnType, SqlType>> = {
  bool: 'BOOLEAN',
  int32: 'INTEGER',
  int64: 'BIGINT',
  float64: 'DOUBLE',
  string: 'VARCHAR',
  timestamp: 'TIMESTAMP',
};

function duckType(t: SqlType): DuckDBType {
  switch (t) {
    case 'BOOLEAN': return DuckDBBooleanType.instance;
    case 'INTEGER': return DuckDBIntegerType.instance;
    case 'BIGINT': return DuckDBBigIntType.instance;
    case 'DOUBLE': return DuckDBDoubleType.instance;
    case 'VARCHAR': return DuckDBVarCharType.instance;
    case 'TIMESTAMP': return DuckDBTimestampType.instance;
  }
}

/** DuckDB's vector size: the most rows one data chunk holds. */
export const CHUNK_ROWS = duckdb.vector_size();

/** integral |ms| below this: ms × 1000 is an exact double (until the year 2255) */
const FAST_MS = 9_000_000_000_000;
const TWO_32 = 4294967296;

/**
 * A timestamp in ms (a double, possibly with a µs fraction) as int64 µs in two 32-bit words
 * (`out[at]` low, `out[at + 1]` high): the integral ms × 1000 plus the µs fraction rounded, exactly,
 * for every |ms| < 2^53.
 */
export function msToMicrosWords(ms: number, out: Int32Array, at: number): void {
  const whole = Math.floor(ms);
  if (whole === ms && ms < FAST_MS && ms > -FAST_MS) {
    const us = ms * 1000;
    const hi = Math.floor(us / TWO_32);
    out[at] = (us - hi * TWO_32) | 0;
    out[at + 1] = hi | 0;
    return;
  }
  // a µs fraction (Arrow µs / ns timestamps), or beyond 2255: the fraction and the two 32-bit
  // halves separately, each step exact (Math.round(ms * 1000) is off by 1 µs for some fractions)
  const fracUs = Math.round((ms - whole) * 1000);
  const mh = Math.floor(whole / TWO_32);
  const ml = whole - mh * TWO_32; // [0, 2^32)
  const p = ml * 1000 + fracUs; // < 2^42: exact
  const carry = Math.floor(p / TWO_32);
  out[at] = (p - carry * TWO_32) | 0;
  out[at + 1] = (mh * 1000 + carry) | 0;
}

/**
 * Writes columns to an appender. One instance per (appender, column types); reuses its chunk
 * and scratch buffers between calls.
 */
export class ChunkWriter {
  private readonly types: readonly SqlType[];
  private readonly chunk: DuckDBDataChunk;
  private readonly words = new Int32Array(2 * CHUNK_ROWS);
  private readonly mask = new Uint8Array(CHUNK_ROWS / 8);
  /** a chunk of inlined duckdb_string_t, 4 words each */
  private readonly strings = new Int32Array(4 * CHUNK_ROWS);
  /**
   * A column's bytes for one chunk when they sit in a SharedArrayBuffer (the pool's outbox),
   * which DuckDB's copy does not take: copied here first, never into a fresh ArrayBuffer per
   * chunk (the state isolate counted those as external memory and collected for them).
   */
  private readonly plain = new Uint8Array(16 * CHUNK_ROWS);
  /** the rows of a chunk whose strings are too long to inline */
  private readonly longRows = new Int32Array(CHUNK_ROWS);
  /** per dictionary code, the chunk row that got its long string first (−1: none yet) */
  private firstRow = new Int32Array(0);

  constructor(types: readonly SqlType[]) {
    this.types = types;
    this.chunk = DuckDBDataChunk.create(types.map(duckType));
  }

  /**
   * Append rows [from, to) of `columns` (one per type, same order) to `appender`.
   * `columns` entries may be Column or a bare Float64Array + validity for result values.
   */
  append(appender: DuckDBAppender, columns: readonly AppendColumn[], from: number, to: number): void {
    if (columns.length !== this.types.length) throw new Error(`expected ${this.types.length} columns, got ${columns.length}`);
    for (let start = from; start < to; start += CHUNK_ROWS) {
      const count = Math.min(CHUNK_ROWS, to - start);
      const raw = this.chunk.chunk;
      duckdb.data_chunk_reset(raw);
      for (let j = 0; j < columns.length; j++) this.fill(duckdb.data_chunk_get_vector(raw, j), this.types[j]!, columns[j]!, start, count);
      duckdb.data_chunk_set_size(raw, count);
      appender.appendDataChunk(this.chunk);
    }
  }

  /**
   * The rows in longRows[0 .. nLong) hold strings too long to inline. The first row of each
   * distinct string in this chunk gets it with a native call (DuckDB copies it into the
   * vector's string heap and writes a string_t pointing there); the rows that repeat it get a
   * copy of that string_t: 16 bytes, the pointer into the same heap, which lives until the
   * chunk is reset. Late rows share a reason per window: one native call per window and chunk
   * instead of one per row.
   */
  private assignLong(vector: duckdb.Vector, col: Extract<Column, { type: 'string' }>, start: number, count: number, nLong: number): void {
    const codes = col.codes;
    const longRows = this.longRows;
    if (this.firstRow.length < col.dict.length) this.firstRow = new Int32Array(Math.max(col.dict.length, 2 * this.firstRow.length)).fill(-1);
    const firstRow = this.firstRow;
    let repeats = 0;
    for (let j = 0; j < nLong; j++) {
      const i = longRows[j]!;
      const c = codes[start + i]!;
      if (firstRow[c] === -1) {
        firstRow[c] = i;
        duckdb.vector_assign_string_element(vector, i, col.dict[c]!);
      } else {
        repeats++;
      }
    }
    if (repeats > 0) {
      // the chunk's string_t's as DuckDB holds them now (read out as a copy; `strings` is free
      // again, its inlined entries already copied in), the repeats filled in, written back
      const data = this.strings;
      new Uint8Array(data.buffer, 0, 16 * count).set(duckdb.vector_get_data(vector, 16 * count));
      for (let j = 0; j < nLong; j++) {
        const i = longRows[j]!;
        const f = firstRow[codes[start + i]!]!;
        if (f === i) continue;
        data[4 * i] = data[4 * f]!; data[4 * i + 1] = data[4 * f + 1]!; data[4 * i + 2] = data[4 * f + 2]!; data[4 * i + 3] = data[4 * f + 3]!;
      }
      duckdb.copy_data_to_vector(vector, 0, data.buffer, 0, 16 * count);
    }
    for (let j = 0; j < nLong; j++) firstRow[codes[start + longRows[j]!]!] = -1;
  }

  /** One chunk of a column's fixed-width values (at most 16 bytes a row) into `vector`. */
  private copy(vector: duckdb.Vector, view: ArrayBufferView): void {
    const n = view.byteLength;
    if (view.buffer instanceof ArrayBuffer) {
      duckdb.copy_data_to_vector(vector, 0, view.buffer, view.byteOffset, n);
      return;
    }
    this.plain.set(new Uint8Array(view.buffer, view.byteOffset, n));
    duckdb.copy_data_to_vector(vector, 0, this.plain.buffer, 0, n);
  }

  private fill(vector: duckdb.Vector, type: SqlType, col: AppendColumn, start: number, count: number): void {
    switch (type) {
      case 'DOUBLE': {
        const v = valuesOf(col, 'float64');
        this.copy(vector, v.subarray(start, start + count));
        break;
      }
      case 'BIGINT': {
        if (col.type === 'int64') {
          this.copy(vector, col.words.subarray(2 * start, 2 * (start + count)));
        } else if (col.type === 'values') {
          // result counts arrive as (exact, integral) doubles
          const v = col.values;
          const w = this.words;
          for (let i = 0; i < count; i++) setInt64At(w, i, v[start + i]!);
          this.copy(vector, w.subarray(0, 2 * count));
        } else {
          throw new Error(`BIGINT column from ${col.type}`);
        }
        break;
      }
      case 'INTEGER': {
        if (col.type !== 'int32') throw new Error(`INTEGER column from ${col.type}`);
        this.copy(vector, col.values.subarray(start, start + count));
        break;
      }
      case 'BOOLEAN': {
        if (col.type !== 'bool') throw new Error(`BOOLEAN column from ${col.type}`);
        this.copy(vector, col.values.subarray(start, start + count));
        break;
      }
      case 'TIMESTAMP': {
        const v = valuesOf(col, 'timestamp');
        const w = this.words;
        for (let i = 0; i < count; i++) msToMicrosWords(v[start + i]!, w, 2 * i);
        this.copy(vector, w.subarray(0, 2 * count));
        break;
      }
      case 'VARCHAR': {
        if (col.type !== 'string') throw new Error(`VARCHAR column from ${col.type}`);
        const valid = col.valid;
        const codes = col.codes;
        const inl = inlinedStrings(col.dict);
        const w = inl.words;
        const out = this.strings;
        const longRows = this.longRows;
        let nLong = 0;
        for (let i = 0; i < count; i++) {
          const at = 4 * i;
          const c = codes[start + i]!;
          if ((valid !== null && valid[start + i] === 0) || !inl.fits(c)) {
            // null, or assigned below: an empty inlined string meanwhile
            out[at] = 0; out[at + 1] = 0; out[at + 2] = 0; out[at + 3] = 0;
            if (valid === null || valid[start + i] !== 0) longRows[nLong++] = i;
            continue;
          }
          const k = 4 * c;
          out[at] = w[k]!; out[at + 1] = w[k + 1]!; out[at + 2] = w[k + 2]!; out[at + 3] = w[k + 3]!;
        }
        this.copy(vector, out.subarray(0, 4 * count));
        if (nLong > 0) this.assignLong(vector, col, start, count, nLong);
        break;
      }
    }
    const valid = col.valid;
    if (valid !== null) {
      // DuckDB validity: a bitmask in uint64 words, bit set = valid
      const mask = this.mask;
      const bytes = Math.ceil(count / 64) * 8;
      mask.fill(0, 0, bytes);
      for (let i = 0; i < count; i++) if (valid[start + i] !== 0) mask[i >> 3]! |= 1 << (i & 7);
      duckdb.vector_ensure_validity_writable(vector);
      duckdb.copy_data_to_vector_validity(vector, 0, mask.buffer, 0, bytes);
    }
  }
}

/** A column to append: a batch Column, or a result value column (doubles with validity). */
export type AppendColumn = Column | { readonly type: 'values'; readonly values: Float64Array; readonly valid: Uint8Array | null };

function valuesOf(col: AppendColumn, what: 'float64' | 'timestamp'): Float64Array {
  if (col.type === 'values' || col.type === 'float64' || col.type === 'timestamp') return col.values;
  throw new Error(`${what} values from ${col.type}`);
}

/** Strings of at most this many UTF-8 bytes live inside DuckDB's 16-byte string_t. */
const INLINE_BYTES = 12;
const utf8 = new TextEncoder();
const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

/**
 * A dictionary's entries as inlined duckdb_string_t (little-endian: uint32 length, then the
 * bytes, zero-padded to 12), made on first use of each entry. Cached per dictionary array: a
 * batch's dictionary is shared by all its rows and chunks.
 */
class InlinedStrings {
  readonly words: Int32Array;
  /** per entry: 0 not made yet, 1 inlined in `words`, 2 too long */
  private readonly state: Uint8Array;
  private readonly bytes = new Uint8Array(4 * INLINE_BYTES);

  constructor(private readonly dict: readonly string[]) {
    this.words = new Int32Array(4 * dict.length);
    this.state = new Uint8Array(dict.length);
  }

  fits(c: number): boolean {
    const st = this.state[c];
    if (st === 1) return true;
    if (st === 2) return false;
    const s = this.dict[c]!;
    // UTF-8 takes at least a byte per UTF-16 unit; the layout is little-endian only; a NUL
    // keeps the per-row path, which passes a C string (as before inlining existed)
    if (s.length > INLINE_BYTES || !LITTLE_ENDIAN || s.includes('\u0000')) return this.mark(c, 2);
    const { written } = utf8.encodeInto(s, this.bytes);
    if (written > INLINE_BYTES) return this.mark(c, 2);
    const k = 4 * c;
    this.words[k] = written;
    const b = this.bytes;
    b.fill(0, written, INLINE_BYTES);
    for (let j = 0; j < 3; j++) this.words[k + 1 + j] = b[4 * j]! | (b[4 * j + 1]! << 8) | (b[4 * j + 2]! << 16) | (b[4 * j + 3]! << 24);
    return this.mark(c, 1);
  }

  private mark(c: number, st: 1 | 2): boolean {
    this.state[c] = st;
    return st === 1;
  }
}

const inlinedCache = new WeakMap<readonly string[], InlinedStrings>();

function inlinedStrings(dict: readonly string[]): InlinedStrings {
  let v = inlinedCache.get(dict);
  if (v === undefined || v.words.length !== 4 * dict.length) inlinedCache.set(dict, (v = new InlinedStrings(dict)));
  return v;
}

