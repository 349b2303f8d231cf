/**
 * A decoded batch (or some of its rows) as one run of bytes: how a worker hands archived events
 * and late events to the storage thread without a structured clone (in its shared outbox,
 * engine/outbox.ts).
 *
 *   u32 magic 'SLB1' | u32 header bytes | header (JSON: length, column types, string
 *   dictionaries, the distinct notes) | pad | per column: valid u8[n] (when present) |
 *   values (u8 / i32 / f64 / i64 words) | with notes: i32[n] each row's note in the header's
 *   list; each section 8-byte aligned
 *
 * Notes (late events' reasons, ~100 bytes each) come dictionary-encoded: the rows of a late
 * window share one, so a batch of 64 K late rows carries a few of them instead of ~7 MB of JSON.
 *
 * String columns carry only the dictionary entries their rows use (remapped codes), so a few
 * late rows of a batch do not drag its whole dictionary along.
 */

import type { Batch, Column, StreamSchema, StringColumn } from '../engine/schema.js';
import { compactDictionary, gatherColumn } from './gather.js';

const MAGIC = 0x31424c53; // 'SLB1'
const encoder = new TextEncoder();
const decoder = new TextDecoder();

interface Header {
  length: number;
  columns: { type: Column['type']; valid: boolean; dict?: string[] }[];
  /** the distinct notes; each row's index into them follows the columns */
  notes?: string[];
}

function align8(n: number): number {
  return (n + 7) & ~7;
}

function bytesOf(c: Column, n: number): number {
  switch (c.type) {
    case 'int64':
    case 'float64':
    case 'timestamp':
      return 8 * n;
    case 'bool':
      return n;
    default:
      return 4 * n;
  }
}

/**
 * Serialize rows `rows[0..count)` of the batch (every row when `rows` is null), with optional
 * per-row notes (late events carry their reason): one per serialized row, no nulls, each
 * distinct note once in its dictionary.
 */
export function serializeRows(
  batch: Batch,
  rows: Int32Array | null,
  count: number,
  notes?: StringColumn,
  alloc: (size: number) => Uint8Array = (size) => new Uint8Array(size),
): Uint8Array {
  const n = rows === null ? batch.length : count;
  if (notes !== undefined && (notes.codes.length !== n || notes.valid !== null)) throw new Error(`column batch: ${notes.codes.length} notes for ${n} rows (or nulls among them)`);
  const cols = batch.columns.map((c) => compactDictionary(rows === null ? c : gatherColumn(c, rows.subarray(0, count))));
  const header: Header = {
    length: n,
    columns: cols.map((c) => ({ type: c.type, valid: c.valid !== null, ...(c.type === 'string' ? { dict: [...c.dict] } : {}) })),
    ...(notes !== undefined ? { notes: [...notes.dict] } : {}),
  };
  const head = encoder.encode(JSON.stringify(header));
  let size = align8(8 + head.length);
  for (const c of cols) size += (c.valid !== null ? align8(n) : 0) + align8(bytesOf(c, n));
  if (notes !== undefined) size += align8(4 * n);
  const u8 = alloc(size);
  const buf = u8.buffer;
  const base = u8.byteOffset;
  const dv = new DataView(buf, base, size);
  dv.setUint32(0, MAGIC, true);
  dv.setUint32(4, head.length, true);
  u8.set(head, 8);
  let off = align8(8 + head.length);
  for (const c of cols) {
    if (c.valid !== null) {
      u8.set(c.valid.subarray(0, n), off);
      off += align8(n);
    }
    switch (c.type) {
      case 'bool': u8.set(c.values.subarray(0, n), off); break;
      case 'int32': new Int32Array(buf, base + off, n).set(c.values.subarray(0, n)); break;
      case 'string': new Int32Array(buf, base + off, n).set(c.codes.subarray(0, n)); break;
      case 'int64': new Int32Array(buf, base + off, 2 * n).set(c.words.subarray(0, 2 * n)); break;
      case 'float64':
      case 'timestamp': new Float64Array(buf, base + off, n).set(c.values.subarray(0, n)); break;
    }
    off += align8(bytesOf(c, n));
  }
  if (notes !== undefined) new Int32Array(buf, base + off, n).set(notes.codes);
  return u8;
}

/** Inverse of serializeRows; columns are views over `bytes`, which must start 8-byte aligned. */
export function deserializeRows(bytes: Uint8Array, schema: StreamSchema): { batch: Batch; notes: StringColumn | null } {
  const buf = bytes.buffer;
  const base = bytes.byteOffset;
  if (base % 8 !== 0) throw new Error('column batch: bytes not 8-byte aligned');
  const dv = new DataView(buf, base, bytes.byteLength);
  if (bytes.byteLength < 8 || dv.getUint32(0, true) !== MAGIC) throw new Error('column batch: bad magic');
  const headLen = dv.getUint32(4, true);
  const header = JSON.parse(decoder.decode(bytes.subarray(8, 8 + headLen))) as Header;
  const n = header.length;
  if (header.columns.length !== schema.fields.length) throw new Error('column batch: column count differs from the schema');
  let off = align8(8 + headLen);
  const columns: Column[] = header.columns.map((h, j) => {
    if (h.type !== schema.fields[j]!.type) throw new Error(`column batch: column ${j} is ${h.type}, the schema says ${schema.fields[j]!.type}`);
    let valid: Uint8Array | null = null;
    if (h.valid) {
      valid = new Uint8Array(buf, base + off, n);
      off += align8(n);
    }
    const at = base + off;
    let col: Column;
    switch (h.type) {
      case 'bool': col = { type: 'bool', values: new Uint8Array(buf, at, n), valid }; off += align8(n); break;
      case 'int32': col = { type: 'int32', values: new Int32Array(buf, at, n), valid }; off += align8(4 * n); break;
      case 'string': col = { type: 'string', codes: new Int32Array(buf, at, n), dict: h.dict ?? [], valid }; off += align8(4 * n); break;
      case 'int64': col = { type: 'int64', words: new Int32Array(buf, at, 2 * n), valid }; off += 8 * n; break;
      case 'float64': col = { type: 'float64', values: new Float64Array(buf, at, n), valid }; off += 8 * n; break;
      case 'timestamp': col = { type: 'timestamp', values: new Float64Array(buf, at, n), valid }; off += 8 * n; break;
    }
    return col;
  });
  let notes: StringColumn | null = null;
  if (header.notes !== undefined) {
    const dict = header.notes;
    const codes = new Int32Array(buf, base + off, n);
    for (let i = 0; i < n; i++) {
      if (codes[i]! < 0 || codes[i]! >= dict.length) throw new Error(`column batch: row ${i} refers to note ${codes[i]}, the batch has ${dict.length}`);
    }
    notes = { type: 'string', codes, dict, valid: null };
  }
  return { batch: { schema, length: n, columns }, notes };
}
