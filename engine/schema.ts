/**
 * Stream schemas and the in-memory columnar batch every decoder produces and every kernel reads.
 *
 * Layout rules (DESIGN.md B2), chosen so kernels are tight loops over typed arrays:
 * - int64 columns are NOT BigInt64Array: they are an Int32Array of 2·n words, little-endian
 *   pairs `[lo0, hi0, lo1, hi1, ...]` — exactly the bytes of an Arrow int64 buffer, so a
 *   decoder can hand out a view. Read a value as `hi * 2**32 + (lo >>> 0)`; hash the two words.
 * - timestamps are Float64Array of milliseconds since the Unix epoch (UTC). Every ms timestamp
 *   in the years ±285,000 is an exact double.
 * - strings are dictionary-encoded per batch: `codes[i]` indexes `dict`. A kernel that needs a
 *   property of a string computes it once per dictionary entry, never once per row.
 * - bool is one byte per row (0 / 1).
 * - `valid` is one byte per row (1 = value present, 0 = null), or null when no row is null.
 *   Values at null positions are unspecified (decoders write 0) and kernels must not read them.
 */

export const COLUMN_TYPES = ['bool', 'int32', 'int64', 'float64', 'string', 'timestamp'] as const;
export type ColumnType = (typeof COLUMN_TYPES)[number];

export interface Field {
  readonly name: string;
  readonly type: ColumnType;
}

export interface StreamSchema {
  readonly fields: readonly Field[];
  /** column name → position in `fields` */
  readonly index: ReadonlyMap<string, number>;
}

export function makeSchema(fields: readonly Field[]): StreamSchema {
  const index = new Map<string, number>();
  fields.forEach((f, i) => {
    if (index.has(f.name)) throw new Error(`duplicate column '${f.name}'`);
    index.set(f.name, i);
  });
  return Object.freeze({ fields: Object.freeze(fields.map((f) => Object.freeze({ ...f }))), index });
}

/** `{ auction: 'int64', ts: 'timestamp' }` (config form) → StreamSchema, in key order. */
export function schemaFromRecord(rec: Readonly<Record<string, ColumnType>>): StreamSchema {
  return makeSchema(Object.entries(rec).map(([name, type]) => ({ name, type })));
}

export interface BoolColumn {
  readonly type: 'bool';
  readonly values: Uint8Array;
  readonly valid: Uint8Array | null;
}
export interface Int32Column {
  readonly type: 'int32';
  readonly values: Int32Array;
  readonly valid: Uint8Array | null;
}
export interface Int64Column {
  readonly type: 'int64';
  /** 2·length words: [lo0, hi0, lo1, hi1, ...] */
  readonly words: Int32Array;
  readonly valid: Uint8Array | null;
}
export interface Float64Column {
  readonly type: 'float64';
  readonly values: Float64Array;
  readonly valid: Uint8Array | null;
}
export interface TimestampColumn {
  readonly type: 'timestamp';
  /** milliseconds since the Unix epoch, UTC */
  readonly values: Float64Array;
  readonly valid: Uint8Array | null;
}
export interface StringColumn {
  readonly type: 'string';
  readonly codes: Int32Array;
  readonly dict: readonly string[];
  readonly valid: Uint8Array | null;
}

export type Column = BoolColumn | Int32Column | Int64Column | Float64Column | TimestampColumn | StringColumn;

/** A decoded batch: one column per schema field, in schema order, all of `length` rows. */
export interface Batch {
  readonly schema: StreamSchema;
  readonly length: number;
  readonly columns: readonly Column[];
}

/** Largest number of rows one batch may carry (selection vectors and row ids are int32). */
export const MAX_BATCH_ROWS = 1 << 24;

const TWO_32 = 4294967296;

/** The int64 at row i as a double (exact when |v| < 2^53). */
export function int64At(words: Int32Array, i: number): number {
  return words[2 * i + 1]! * TWO_32 + (words[2 * i]! >>> 0);
}

/** Store a safe integer as row i of an int64 column's words, without allocating. */
export function setInt64At(words: Int32Array, i: number, v: number): void {
  const hi = Math.floor(v / TWO_32);
  words[2 * i] = (v - hi * TWO_32) | 0;
  words[2 * i + 1] = hi | 0;
}

/** The exact decimal text of an int64 given as two words (for output and error messages only). */
export function int64ToString(lo: number, hi: number): string {
  return ((BigInt(hi) << 32n) | BigInt(lo >>> 0)).toString();
}

/** Is the value at row i present? */
export function isValid(col: Column, i: number): boolean {
  return col.valid === null || col.valid[i] === 1;
}

/** One row's value as a plain JS value (edges and tests only: int64 beyond 2^53 becomes a string). */
export function valueAt(col: Column, i: number): boolean | number | string | null {
  if (!isValid(col, i)) return null;
  switch (col.type) {
    case 'bool': return col.values[i] === 1;
    case 'int32': return col.values[i]!;
    case 'float64': return col.values[i]!;
    case 'timestamp': return col.values[i]!;
    case 'string': return col.dict[col.codes[i]!]!;
    case 'int64': {
      const v = int64At(col.words, i);
      return Number.isSafeInteger(v) ? v : int64ToString(col.words[2 * i]!, col.words[2 * i + 1]!);
    }
  }
}

/** Rows [from, to) of a column as views (no copy; string columns share the dictionary). */
export function sliceColumn(col: Column, from: number, to: number): Column {
  const valid = col.valid === null ? null : col.valid.subarray(from, to);
  switch (col.type) {
    case 'int64': return { type: 'int64', words: col.words.subarray(2 * from, 2 * to), valid };
    case 'string': return { type: 'string', codes: col.codes.subarray(from, to), dict: col.dict, valid };
    case 'bool': return { type: 'bool', values: col.values.subarray(from, to), valid };
    case 'int32': return { type: 'int32', values: col.values.subarray(from, to), valid };
    case 'float64': return { type: 'float64', values: col.values.subarray(from, to), valid };
    case 'timestamp': return { type: 'timestamp', values: col.values.subarray(from, to), valid };
  }
}

/** Rows [from, to) of a batch as views. */
export function sliceBatch(batch: Batch, from: number, to: number): Batch {
  return { schema: batch.schema, length: to - from, columns: batch.columns.map((c) => sliceColumn(c, from, to)) };
}
