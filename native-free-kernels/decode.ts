/**
 * Batch decoding entry points and the pieces every decoder shares.
 *
 * A decoder turns the bytes of one batch into a `Batch` (engine/schema.ts) or throws a
 * SluiceError with a SLUICE_BATCH_* code; it never returns part of a batch and never lets a
 * raw TypeError / RangeError from a library escape. Arrow IPC hands out typed-array views over
 * the received bytes; the row forms (JSON, NDJSON, MessagePack row maps) go through the
 * value sinks below, one specialised sink per schema column chosen before the first row.
 *
 * Error messages name the column and the row: `column 'price' row 17: expected float64, got
 * string "abc"` (rows count from 0; NDJSON says `line 18` instead, counting lines from 1).
 */
import { sluiceError, SluiceError } from '../engine/errors.js';
import type { Batch, Column, ColumnType, Field, StreamSchema } from '../engine/schema.js';
import { MAX_BATCH_ROWS } from '../engine/schema.js';
import { decodeArrow } from './decode-arrow.js';
import { decodeJson, decodeNdjson } from './decode-json.js';
import { decodeMsgpack } from './decode-msgpack.js';
import { parseIsoTimestamp } from './iso-time.js';

export type BatchFormat = 'arrow' | 'msgpack' | 'ndjson' | 'json';

export interface DecodeOptions {
  /** index of the event-time column: a null there rejects the batch with SLUICE_BATCH_BAD_TIMESTAMP */
  eventTime?: number;
  /** max rows (default MAX_BATCH_ROWS from engine/schema.ts) → SLUICE_BATCH_TOO_MANY_ROWS */
  maxRows?: number;
  /**
   * Where the decoders put every array they build — columns and validity; Arrow columns it can
   * take as views of the input stay views — instead of fresh ArrayBuffers: the caller's arena,
   * which it reuses once nothing decoded is in use (TaskRunner: per task). The arrays come
   * zeroed. Decoders take it through scratchOf.
   */
  scratch?: DecodeScratch;
}

/** Zeroed typed arrays that live until the owner's next reset (engine/task-runner.ts TaskArena). */
export interface DecodeScratch {
  f64(n: number): Float64Array;
  i32(n: number): Int32Array;
  u8(n: number): Uint8Array;
}

/** Fresh zeroed arrays: what a decoder allocates from without DecodeOptions.scratch. */
const FRESH: DecodeScratch = {
  f64: (n) => new Float64Array(n),
  i32: (n) => new Int32Array(n),
  u8: (n) => new Uint8Array(n),
};

/** Where a decoder takes the arrays it builds: the caller's scratch, else fresh ones. */
export function scratchOf(opts: DecodeOptions | undefined): DecodeScratch {
  return opts?.scratch ?? FRESH;
}

/**
 * Arrow IPC stream or MessagePack, told apart by the first bytes (DESIGN.md A5): an IPC stream
 * opens with the continuation marker 0xFFFFFFFF, a MessagePack batch with an array or map header.
 */
export function detectBinaryFormat(bytes: Uint8Array): 'arrow' | 'msgpack' {
  if (bytes.length === 0) throw sluiceError('BATCH_UNKNOWN_FORMAT', 'empty binary batch');
  const b = bytes[0]!;
  if (b === 0xff) {
    if (bytes.length >= 4 && bytes[1] === 0xff && bytes[2] === 0xff && bytes[3] === 0xff) return 'arrow';
  } else if ((b >= 0x80 && b <= 0x9f) || b === 0xdc || b === 0xdd || b === 0xde || b === 0xdf) {
    return 'msgpack';
  }
  throw sluiceError('BATCH_UNKNOWN_FORMAT',
    `binary batch starts with 0x${hexPrefix(bytes)}: neither an Arrow IPC stream (0xFFFFFFFF) nor a MessagePack array or map`);
}

function hexPrefix(bytes: Uint8Array): string {
  let s = '';
  for (let i = 0; i < Math.min(4, bytes.length); i++) s += bytes[i]!.toString(16).padStart(2, '0');
  return s;
}

export function decodeBatch(bytes: Uint8Array, format: BatchFormat, schema: StreamSchema, opts?: DecodeOptions): Batch {
  switch (format) {
    case 'arrow': return decodeArrow(bytes, schema, opts);
    case 'msgpack': return decodeMsgpack(bytes, schema, opts);
    case 'ndjson': return decodeNdjson(bytes, schema, opts);
    case 'json': return decodeJson(bytes, schema, opts);
    default: throw sluiceError('BATCH_UNKNOWN_FORMAT', `unknown batch format '${String(format)}'`);
  }
}

// --- shared by every decoder ---------------------------------------------------------------

const TWO_32 = 4294967296;
/** ECMAScript's Date range: every timestamp outside ±8.64e15 ms is rejected by every decoder. */
export const MAX_TIMESTAMP_MS = 8.64e15;

/** Labels a row for error messages: `row 17`, or `line 18` for NDJSON. */
export type RowLabel = (row: number) => string;
export const rowLabel: RowLabel = (row) => `row ${row}`;

export function checkRowCount(rows: number, opts: DecodeOptions | undefined): void {
  const max = opts?.maxRows ?? MAX_BATCH_ROWS;
  if (rows > max) throw sluiceError('BATCH_TOO_MANY_ROWS', `batch has ${rows} rows, more than the limit of ${max}; split it`);
}

/**
 * Runs a decoder body: SluiceErrors pass through, anything else (a library's TypeError, a stack
 * overflow on absurd nesting) becomes SLUICE_BATCH_MALFORMED with `what` in front.
 */
export function guardDecode<T>(what: string, body: () => T): T {
  try {
    return body();
  } catch (err) {
    if (err instanceof SluiceError) throw err;
    const msg = err instanceof Error ? err.message : String(err);
    throw sluiceError('BATCH_MALFORMED', `${what}: ${msg}`, err);
  }
}

/** The final checks every decoder runs: event-time nulls. Returns the Batch. */
export function finishBatch(schema: StreamSchema, length: number, columns: Column[], opts: DecodeOptions | undefined,
  label: RowLabel = rowLabel): Batch {
  const et = opts?.eventTime;
  if (et !== undefined) {
    const col = columns[et];
    if (col === undefined) throw sluiceError('INTERNAL', `eventTime index ${et} is outside the schema`);
    const valid = col.valid;
    if (valid !== null) {
      const row = valid.indexOf(0);
      if (row >= 0 && row < length) {
        throw sluiceError('BATCH_BAD_TIMESTAMP',
          `column '${schema.fields[et]!.name}' ${label(row)}: null in the event-time column`);
      }
    }
  }
  return { schema, length, columns };
}

/** Short description of a JS value for error messages: `string "abc"`, `number 1.5`, `object`. */
export function describeValue(v: unknown): string {
  switch (typeof v) {
    case 'string': {
      const s = v.length > 40 ? `${v.slice(0, 40)}…` : v;
      return `string ${JSON.stringify(s)}`;
    }
    case 'number': return `number ${String(v)}`;
    case 'bigint': return `integer ${v.toString()}`;
    case 'boolean': return `boolean ${String(v)}`;
    case 'undefined': return 'undefined';
    case 'object':
      if (v === null) return 'null';
      if (Array.isArray(v)) return 'array';
      if (v instanceof Date) return `timestamp ${Number.isNaN(v.getTime()) ? 'Invalid Date' : v.toISOString()}`;
      if (ArrayBuffer.isView(v)) return 'binary';
      return 'object';
    default: return typeof v;
  }
}

// --- int64 text and BigInt → words ---------------------------------------------------------

/**
 * Parses a decimal integer string exactly into int64 words (written at words[2·row], [2·row+1]).
 * Returns false when the text is not `-?[0-9]+` or the value is outside the int64 range.
 * Works on 32-bit halves, so values beyond 2^53 never pass through a double.
 */
export function parseInt64Decimal(s: string, words: Int32Array, row: number): boolean {
  const n = s.length;
  let i = 0;
  let neg = false;
  if (n > 0 && s.charCodeAt(0) === 45 /* - */) {
    neg = true;
    i = 1;
  }
  if (i >= n) return false;
  let hi = 0; // magnitude = hi·2^32 + lo, both non-negative doubles
  let lo = 0;
  for (; i < n; i++) {
    const d = s.charCodeAt(i) - 48;
    if (d < 0 || d > 9) return false;
    const l = lo * 10 + d; // < 2^36: exact
    const carry = Math.floor(l / TWO_32);
    lo = l - carry * TWO_32;
    hi = hi * 10 + carry;
    if (hi > 0x80000000) return false; // beyond 2^63 already; digits only make it larger
  }
  if (hi === 0x80000000 && !(neg && lo === 0)) return false; // only -2^63 has hi = 2^31
  if (neg && (hi !== 0 || lo !== 0)) {
    // two's complement of the magnitude
    if (lo === 0) {
      hi = -hi;
    } else {
      lo = TWO_32 - lo;
      hi = -hi - 1;
    }
  }
  words[2 * row] = lo | 0;
  words[2 * row + 1] = hi | 0;
  return true;
}

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

/** A BigInt into int64 words; false when outside the int64 range. */
export function bigintToWords(v: bigint, words: Int32Array, row: number): boolean {
  if (v < INT64_MIN || v > INT64_MAX) return false;
  words[2 * row] = Number(BigInt.asIntN(32, v));
  words[2 * row + 1] = Number(BigInt.asIntN(32, v >> 32n));
  return true;
}

// --- ISO-8601 timestamps -------------------------------------------------------------------

export { parseIsoTimestamp };

// --- value sinks: JS values (JSON, MessagePack) into columns -------------------------------

/** Differences between the JS-value formats. */
export interface ValueRules {
  /**
   * Largest |integer| an int64 column takes as a plain JS number. JSON: 2^53 − 1 (a longer
   * literal was already rounded by JSON.parse). MessagePack: 2^53 (msgpackr's `int64AsType:
   * 'auto'` hands out exact numbers up to 2^53 and BigInt beyond).
   */
  readonly maxIntNumber: number;
  /** Text for the error when an int64 number is beyond maxIntNumber. */
  readonly bigIntHint: string;
}

/** One column being filled from JS values. `set` is called at most once per row. */
export interface ValueSink {
  /** Store the value of `row`; null and undefined are nulls. Throws a SluiceError on a bad value. */
  set(row: number, v: unknown): void;
  finish(): Column;
}

abstract class SinkBase {
  protected readonly valid: Uint8Array;
  protected present = 0;
  constructor(protected readonly name: string, protected readonly label: RowLabel, length: number, scratch: DecodeScratch) {
    this.valid = scratch.u8(length);
  }
  protected finalValid(): Uint8Array | null {
    return this.present === this.valid.length ? null : this.valid;
  }
  protected mismatch(row: number, expected: string, v: unknown, hint = ''): SluiceError {
    return sluiceError('BATCH_TYPE_MISMATCH',
      `column '${this.name}' ${this.label(row)}: expected ${expected}, got ${describeValue(v)}${hint}`);
  }
}

class BoolSink extends SinkBase implements ValueSink {
  private readonly values: Uint8Array;
  constructor(name: string, label: RowLabel, length: number, scratch: DecodeScratch) {
    super(name, label, length, scratch);
    this.values = scratch.u8(length);
  }
  set(row: number, v: unknown): void {
    if (v === null || v === undefined) return;
    if (v === true) this.values[row] = 1;
    else if (v !== false) throw this.mismatch(row, 'bool (true or false)', v);
    this.valid[row] = 1;
    this.present++;
  }
  finish(): Column {
    return { type: 'bool', values: this.values, valid: this.finalValid() };
  }
}

class Int32Sink extends SinkBase implements ValueSink {
  private readonly values: Int32Array;
  constructor(name: string, label: RowLabel, length: number, scratch: DecodeScratch) {
    super(name, label, length, scratch);
    this.values = scratch.i32(length);
  }
  set(row: number, v: unknown): void {
    if (v === null || v === undefined) return;
    if (typeof v !== 'number' || (v | 0) !== v) {
      if (typeof v === 'number' && Number.isInteger(v)) throw this.mismatch(row, 'int32', v, ' outside the int32 range');
      throw this.mismatch(row, 'int32', v);
    }
    this.values[row] = v;
    this.valid[row] = 1;
    this.present++;
  }
  finish(): Column {
    return { type: 'int32', values: this.values, valid: this.finalValid() };
  }
}

class Int64Sink extends SinkBase implements ValueSink {
  private readonly words: Int32Array;
  constructor(name: string, label: RowLabel, length: number, private readonly rules: ValueRules, scratch: DecodeScratch) {
    super(name, label, length, scratch);
    this.words = scratch.i32(2 * length);
  }
  set(row: number, v: unknown): void {
    if (v === null || v === undefined) return;
    if (typeof v === 'number') {
      if (!Number.isInteger(v)) throw this.mismatch(row, 'int64', v);
      if (Math.abs(v) > this.rules.maxIntNumber) throw this.mismatch(row, 'int64', v, this.rules.bigIntHint);
      const hi = Math.floor(v / TWO_32);
      this.words[2 * row] = (v - hi * TWO_32) | 0;
      this.words[2 * row + 1] = hi | 0;
    } else if (typeof v === 'string') {
      if (!parseInt64Decimal(v, this.words, row)) {
        if (/^-?\d+$/.test(v)) throw this.mismatch(row, 'int64', v, ' outside the int64 range');
        throw this.mismatch(row, 'int64 (an integer, or its decimal digits as a string)', v);
      }
    } else if (typeof v === 'bigint') {
      if (!bigintToWords(v, this.words, row)) throw this.mismatch(row, 'int64', v, ' outside the int64 range');
    } else {
      throw this.mismatch(row, 'int64', v);
    }
    this.valid[row] = 1;
    this.present++;
  }
  finish(): Column {
    return { type: 'int64', words: this.words, valid: this.finalValid() };
  }
}

class Float64Sink extends SinkBase implements ValueSink {
  private readonly values: Float64Array;
  constructor(name: string, label: RowLabel, length: number, scratch: DecodeScratch) {
    super(name, label, length, scratch);
    this.values = scratch.f64(length);
  }
  set(row: number, v: unknown): void {
    if (v === null || v === undefined) return;
    if (typeof v === 'number') this.values[row] = v;
    else if (typeof v === 'bigint') this.values[row] = Number(v);
    else throw this.mismatch(row, 'float64', v);
    this.valid[row] = 1;
    this.present++;
  }
  finish(): Column {
    return { type: 'float64', values: this.values, valid: this.finalValid() };
  }
}

class TimestampSink extends SinkBase implements ValueSink {
  private readonly values: Float64Array;
  constructor(name: string, label: RowLabel, length: number, scratch: DecodeScratch) {
    super(name, label, length, scratch);
    this.values = scratch.f64(length);
  }
  set(row: number, v: unknown): void {
    if (v === null || v === undefined) return;
    let ms: number;
    // whole milliseconds everywhere: fractions are floored, as for Arrow µs / ns and ISO text
    if (typeof v === 'number') ms = Math.floor(v);
    else if (typeof v === 'string') ms = parseIsoTimestamp(v);
    else if (v instanceof Date) ms = v.getTime();
    else ms = NaN;
    // NaN fails this test too
    if (!(Math.abs(ms) <= MAX_TIMESTAMP_MS)) {
      throw sluiceError('BATCH_BAD_TIMESTAMP', `column '${this.name}' ${this.label(row)}: expected a timestamp ` +
        `(ms since the epoch within ±8.64e15, or ISO-8601 text), got ${describeValue(v)}`);
    }
    this.values[row] = ms;
    this.valid[row] = 1;
    this.present++;
  }
  finish(): Column {
    return { type: 'timestamp', values: this.values, valid: this.finalValid() };
  }
}

/** Strings into a per-batch dictionary keyed by the JS string (first occurrence order). */
class StringSink extends SinkBase implements ValueSink {
  private readonly codes: Int32Array;
  private readonly dict: string[] = [];
  private readonly ids = new Map<string, number>();
  constructor(name: string, label: RowLabel, length: number, scratch: DecodeScratch) {
    super(name, label, length, scratch);
    this.codes = scratch.i32(length);
  }
  set(row: number, v: unknown): void {
    if (v === null || v === undefined) return;
    if (typeof v !== 'string') throw this.mismatch(row, 'string', v);
    let code = this.ids.get(v);
    if (code === undefined) {
      code = this.dict.length;
      this.ids.set(v, code);
      this.dict.push(v);
    }
    this.codes[row] = code;
    this.valid[row] = 1;
    this.present++;
  }
  finish(): Column {
    return { type: 'string', codes: this.codes, dict: this.dict, valid: this.finalValid() };
  }
}

function makeValueSink(field: Field, length: number, rules: ValueRules, label: RowLabel, scratch: DecodeScratch): ValueSink {
  const t: ColumnType = field.type;
  switch (t) {
    case 'bool': return new BoolSink(field.name, label, length, scratch);
    case 'int32': return new Int32Sink(field.name, label, length, scratch);
    case 'int64': return new Int64Sink(field.name, label, length, rules, scratch);
    case 'float64': return new Float64Sink(field.name, label, length, scratch);
    case 'timestamp': return new TimestampSink(field.name, label, length, scratch);
    case 'string': return new StringSink(field.name, label, length, scratch);
  }
}

/** One sink per schema column, in schema order, their arrays from `scratch` (scratchOf). */
export function makeValueSinks(schema: StreamSchema, length: number, rules: ValueRules, label: RowLabel, scratch: DecodeScratch): ValueSink[] {
  return schema.fields.map((f) => makeValueSink(f, length, rules, label, scratch));
}

/** Is `v` a plain row object (not null, an array, a Date, a Map, binary)? */
export function isRowObject(v: unknown): v is Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false;
  const proto: unknown = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

/**
 * Stores one row object into the sinks. An absent key is a null; a key outside the schema
 * rejects the batch.
 */
export function setRow(sinks: readonly ValueSink[], schema: StreamSchema, row: number, obj: Record<string, unknown>,
  label: RowLabel): void {
  for (const key in obj) {
    const col = schema.index.get(key);
    if (col === undefined) {
      throw sluiceError('BATCH_UNKNOWN_COLUMN', `${label(row)}: key '${key}' is not a column of the stream schema`);
    }
    sinks[col]!.set(row, obj[key]);
  }
}
