/**
 * MessagePack batches: an array of row maps, or a map column name → array of values.
 *
 * msgpackr builds the JS values (`int64AsType: 'auto'`: exact numbers up to 2^53, BigInt beyond,
 * so BigInt appears only for the rare values that need it); the value sinks of decode.ts check
 * them against the schema. msgpackr replaces invalid UTF-8 with U+FFFD instead of failing, so a
 * decoded string holding U+FFFD triggers a strict re-scan of the raw bytes (rare: only then do
 * we pay for it) that tells a genuine U+FFFD from a broken encoding.
 */
import { Unpackr } from 'msgpackr';
import { sluiceError } from '../engine/errors.js';
import type { Batch, StreamSchema } from '../engine/schema.js';
import type { DecodeOptions, ValueRules } from './decode.js';
import { checkRowCount, scratchOf, describeValue, finishBatch, guardDecode, isRowObject, makeValueSinks, rowLabel, setRow } from './decode.js';

const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true });
// msgpackr implements int64AsType 'auto' (unpack.js) but its .d.ts union lacks it; the
// constructor only copies options onto the instance, so assigning afterwards is the same.
Object.assign(unpackr, { int64AsType: 'auto' });

const MSGPACK_RULES: ValueRules = {
  maxIntNumber: 2 ** 53,
  bigIntHint: ' beyond ±2^53 as a float: send it as a MessagePack int64',
};

/**
 * msgpackr's native string extractor (msgpackr-extract 3.0.4, the version every platform has
 * a prebuilt binary for) reads the wrong memory when the input is a view over a
 * SharedArrayBuffer: garbage keys, and sometimes SIGSEGV, which takes the whole process down.
 * Batches arrive in shared slabs, so copy them out first; the copy costs well under 1 % of a
 * MessagePack decode.
 */
function unshared(bytes: Uint8Array): Uint8Array {
  return bytes.buffer instanceof SharedArrayBuffer ? bytes.slice() : bytes;
}

export function decodeMsgpack(bytes: Uint8Array, schema: StreamSchema, opts?: DecodeOptions): Batch {
  return guardDecode('MessagePack batch', () => {
    let doc: unknown;
    try {
      doc = unpackr.unpack(unshared(bytes));
    } catch (err) {
      throw sluiceError('BATCH_MALFORMED', `MessagePack batch: ${err instanceof Error ? err.message : String(err)}`, err);
    }
    let batch: Batch;
    if (Array.isArray(doc)) batch = fromRows(doc, schema, opts);
    else if (isRowObject(doc)) batch = fromColumns(doc, schema, opts);
    else {
      throw sluiceError('BATCH_MALFORMED',
        `MessagePack batch: expected an array of row maps or a map of column arrays, got ${describeValue(doc)}`);
    }
    checkReplacementChars(batch, bytes);
    return batch;
  });
}

function fromRows(rows: unknown[], schema: StreamSchema, opts: DecodeOptions | undefined): Batch {
  const n = rows.length;
  checkRowCount(n, opts);
  const sinks = makeValueSinks(schema, n, MSGPACK_RULES, rowLabel, scratchOf(opts));
  for (let row = 0; row < n; row++) {
    const obj = rows[row];
    if (!isRowObject(obj)) {
      throw sluiceError('BATCH_MALFORMED', `MessagePack batch row ${row}: expected a map, got ${describeValue(obj)}`);
    }
    setRow(sinks, schema, row, obj, rowLabel);
  }
  return finishBatch(schema, n, sinks.map((s) => s.finish()), opts);
}

function fromColumns(doc: Record<string, unknown>, schema: StreamSchema, opts: DecodeOptions | undefined): Batch {
  for (const key in doc) {
    if (!schema.index.has(key)) {
      throw sluiceError('BATCH_UNKNOWN_COLUMN', `MessagePack column map: '${key}' is not a column of the stream schema`);
    }
  }
  const arrays: unknown[][] = [];
  let n = -1;
  let first = '';
  for (const f of schema.fields) {
    if (!Object.prototype.hasOwnProperty.call(doc, f.name)) {
      throw sluiceError('BATCH_MISSING_COLUMN', `MessagePack column map lacks column '${f.name}'`);
    }
    const values = doc[f.name];
    if (!Array.isArray(values)) {
      throw sluiceError('BATCH_MALFORMED', `MessagePack column map: column '${f.name}' must be an array, got ${describeValue(values)}`);
    }
    if (n < 0) {
      n = values.length;
      first = f.name;
    } else if (values.length !== n) {
      throw sluiceError('BATCH_MALFORMED',
        `MessagePack column map: column '${f.name}' has ${values.length} values but column '${first}' has ${n}`);
    }
    arrays.push(values);
  }
  if (n < 0) n = 0;
  checkRowCount(n, opts);
  const sinks = makeValueSinks(schema, n, MSGPACK_RULES, rowLabel, scratchOf(opts));
  for (let c = 0; c < sinks.length; c++) {
    const sink = sinks[c]!;
    const values = arrays[c]!;
    for (let row = 0; row < n; row++) sink.set(row, values[row]);
  }
  return finishBatch(schema, n, sinks.map((s) => s.finish()), opts);
}

/** If any decoded string holds U+FFFD, make sure the bytes really were valid UTF-8. */
function checkReplacementChars(batch: Batch, bytes: Uint8Array): void {
  for (const col of batch.columns) {
    if (col.type !== 'string') continue;
    for (const s of col.dict) {
      if (s.includes('\uFFFD')) {
        const at = firstInvalidUtf8String(bytes);
        if (at >= 0) throw sluiceError('BATCH_MALFORMED', `MessagePack batch: invalid UTF-8 in the string at byte ${at}`);
        return;
      }
    }
  }
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** Offset of the first MessagePack str whose payload is not valid UTF-8, or -1. */
export function firstInvalidUtf8String(bytes: Uint8Array): number {
  try {
    return scanStrings(bytes);
  } catch {
    // a DataView read past the end; msgpackr accepted these bytes, so this does not happen
    return -1;
  }
}

/**
 * Walks the items in byte order: every header is self-delimiting, so container counts need not
 * be tracked (which also copes with msgpackr's record extension). A read past the end gives
 * undefined, turning `pos` into NaN, which ends the loop.
 */
function scanStrings(bytes: Uint8Array): number {
  const n = bytes.length;
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let pos = 0;
  while (pos < n) {
    const at = pos;
    const t = bytes[pos++]!;
    let strLen = -1;
    if (t <= 0x9f || t >= 0xe0) continue; // fixint, fixmap, fixarray, negative fixint: header only
    if (t <= 0xbf) strLen = t & 0x1f;
    else {
      switch (t) {
        case 0xc4: pos += 1 + bytes[pos]!; break;
        case 0xc5: pos += 2 + dv.getUint16(pos); break;
        case 0xc6: pos += 4 + dv.getUint32(pos); break;
        case 0xc7: pos += 2 + bytes[pos]!; break;
        case 0xc8: pos += 3 + dv.getUint16(pos); break;
        case 0xc9: pos += 5 + dv.getUint32(pos); break;
        case 0xca: case 0xce: case 0xd2: pos += 4; break;
        case 0xcb: case 0xcf: case 0xd3: pos += 8; break;
        case 0xcc: case 0xd0: pos += 1; break;
        case 0xcd: case 0xd1: pos += 2; break;
        case 0xd4: pos += 2; break;
        case 0xd5: pos += 3; break;
        case 0xd6: pos += 5; break;
        case 0xd7: pos += 9; break;
        case 0xd8: pos += 17; break;
        case 0xd9: strLen = bytes[pos]!; pos += 1; break;
        case 0xda: strLen = dv.getUint16(pos); pos += 2; break;
        case 0xdb: strLen = dv.getUint32(pos); pos += 4; break;
        case 0xdc: case 0xde: pos += 2; break;
        case 0xdd: case 0xdf: pos += 4; break;
        default: break; // nil, never-used, false, true
      }
    }
    if (strLen >= 0) {
      const end = pos + strLen;
      if (end > n) return -1;
      for (let i = pos; i < end; i++) {
        if (bytes[i]! >= 0x80) {
          try {
            strictUtf8.decode(bytes.subarray(pos, end));
          } catch {
            return at;
          }
          break;
        }
      }
      pos = end;
    }
  }
  return -1;
}
