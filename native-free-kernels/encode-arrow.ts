/**
 * Batch → Arrow IPC stream (schema message + one record batch), written by apache-arrow so the
 * decoder is tested against an independent writer. Used by tests, the benchmark and the load
 * generator. Types: bool → Bool, int32 → Int32, int64 → Int64, float64 → Float64,
 * timestamp → Timestamp[ms] (fractions of a ms are floored), string → Utf8 (or, with
 * encodeArrowDictionary, Dictionary<Utf8, Int32> carrying the batch dictionary as is).
 */
import {
  Bool, Dictionary, Field as ArrowField, Float64, Int32, Int64, RecordBatch, Schema as ArrowSchema, Struct, Table,
  TimestampMillisecond, Utf8, makeData, makeVector, tableToIPC,
} from 'apache-arrow';
import type { Data } from 'apache-arrow';
import type { Batch, Column, StringColumn } from '../engine/schema.js';

const TWO_32 = 4294967296;
const encoder = new TextEncoder();

/** Batch → Arrow IPC stream bytes; string columns as plain Utf8. */
export function encodeArrow(batch: Batch): Uint8Array {
  return encode(batch, false);
}

/** Batch → Arrow IPC stream bytes; string columns dictionary-encoded (int32 indices). */
export function encodeArrowDictionary(batch: Batch): Uint8Array {
  return encode(batch, true);
}

function encode(batch: Batch, dictionary: boolean): Uint8Array {
  const n = batch.length;
  const children: Data[] = [];
  const fields: ArrowField[] = [];
  batch.schema.fields.forEach((f, i) => {
    const data = columnData(batch.columns[i]!, n, dictionary, i);
    children.push(data);
    fields.push(new ArrowField(f.name, data.type, true));
  });
  const schema = new ArrowSchema(fields);
  const struct = makeData({ type: new Struct(fields), length: n, nullCount: 0, children });
  return tableToIPC(new Table([new RecordBatch(schema, struct)]), 'stream');
}

/** valid bytes → Arrow bitmap (LSB first) and null count. */
function nullBitmap(valid: Uint8Array | null, n: number): { nullBitmap: Uint8Array; nullCount: number } {
  if (valid === null) return { nullBitmap: new Uint8Array(0), nullCount: 0 };
  const bits = new Uint8Array((n + 7) >>> 3);
  let nulls = 0;
  for (let i = 0; i < n; i++) {
    if (valid[i] === 1) bits[i >>> 3]! |= 1 << (i & 7);
    else nulls++;
  }
  return { nullBitmap: bits, nullCount: nulls };
}

/** 2·n int64 words as a BigInt64Array (a view when 8-byte aligned, else a copy). */
function bigInt64Of(words: Int32Array, n: number): BigInt64Array {
  if (words.byteOffset % 8 === 0) return new BigInt64Array(words.buffer, words.byteOffset, n);
  return new BigInt64Array(new Int32Array(words.subarray(0, 2 * n)).buffer);
}

function columnData(col: Column, n: number, dictionary: boolean, id: number): Data {
  const nb = nullBitmap(col.valid, n);
  switch (col.type) {
    case 'bool': {
      const bits = new Uint8Array((n + 7) >>> 3);
      for (let i = 0; i < n; i++) if (col.values[i] === 1) bits[i >>> 3]! |= 1 << (i & 7);
      return makeData({ type: new Bool(), length: n, ...nb, data: bits });
    }
    case 'int32':
      return makeData({ type: new Int32(), length: n, ...nb, data: col.values.subarray(0, n) });
    case 'int64':
      return makeData({ type: new Int64(), length: n, ...nb, data: bigInt64Of(col.words, n) });
    case 'float64':
      return makeData({ type: new Float64(), length: n, ...nb, data: col.values.subarray(0, n) });
    case 'timestamp': {
      const words = new Int32Array(2 * n);
      for (let i = 0; i < n; i++) {
        if (col.valid !== null && col.valid[i] === 0) continue;
        const v = Math.floor(col.values[i]!);
        const hi = Math.floor(v / TWO_32);
        words[2 * i] = (v - hi * TWO_32) | 0;
        words[2 * i + 1] = hi | 0;
      }
      return makeData({ type: new TimestampMillisecond(), length: n, ...nb, data: new BigInt64Array(words.buffer) });
    }
    case 'string':
      if (dictionary) {
        const type = new Dictionary(new Utf8(), new Int32(), id);
        const dict = makeVector(utf8Data(col.dict, null, col.dict.length, { nullBitmap: new Uint8Array(0), nullCount: 0 }));
        return makeData({ type, length: n, ...nb, data: col.codes.subarray(0, n), dictionary: dict });
      }
      return utf8Data(col.dict, col, n, nb);
  }
}

/**
 * Utf8 data of the rows of `col` (or of the dictionary itself when col is null). Each entry is
 * encoded once, when a row first uses it: a slice of a batch shares the whole dictionary of its
 * source, most of which its rows do not use.
 */
function utf8Data(dict: readonly string[], col: StringColumn | null, n: number,
  nb: { nullBitmap: Uint8Array; nullCount: number }): Data<Utf8> {
  const encoded: (Uint8Array | undefined)[] = new Array(dict.length);
  const offsets = new Int32Array(n + 1);
  let size = 0;
  for (let i = 0; i < n; i++) {
    if (col === null || col.valid === null || col.valid[i] === 1) {
      const c = col === null ? i : col.codes[i]!;
      size += (encoded[c] ??= encoder.encode(dict[c]!)).length;
    }
    offsets[i + 1] = size;
  }
  const data = new Uint8Array(size);
  for (let i = 0; i < n; i++) {
    if (offsets[i + 1] === offsets[i]) continue;
    data.set(encoded[col === null ? i : col.codes[i]!]!, offsets[i]!);
  }
  return makeData({ type: new Utf8(), length: n, ...nb, valueOffsets: offsets, data });
}
