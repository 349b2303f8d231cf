/**
 * NDJSON (one JSON object per line) and JSON array-of-objects batches.
 *
 * These are the edge formats where row objects are unavoidable (JSON.parse builds them); each
 * row is spread into typed columns at once through one specialised sink per column. int64 comes
 * as a safe-integer number or as decimal text (parsed exactly); timestamps as ms or ISO-8601.
 */
import { sluiceError } from '../engine/errors.js';
import type { Batch, StreamSchema } from '../engine/schema.js';
import type { DecodeOptions, RowLabel, ValueRules } from './decode.js';
import { checkRowCount, scratchOf, describeValue, finishBatch, guardDecode, isRowObject, makeValueSinks, rowLabel, setRow } from './decode.js';

const JSON_RULES: ValueRules = {
  maxIntNumber: Number.MAX_SAFE_INTEGER,
  bigIntHint: ' beyond ±(2^53 − 1), which a JSON number cannot carry exactly: send it as a decimal string',
};

// A leading byte-order mark is dropped (RFC 8259 lets a parser ignore it); fatal: bad bytes throw.
const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Decodes the whole text; on invalid UTF-8 finds the first bad line for the message. */
function decodeText(bytes: Uint8Array, what: string): string {
  try {
    return utf8.decode(bytes);
  } catch {
    let line = 1;
    let start = 0;
    for (let i = 0; i <= bytes.length; i++) {
      if (i === bytes.length || bytes[i] === 0x0a) {
        try {
          utf8.decode(bytes.subarray(start, i));
        } catch {
          throw sluiceError('BATCH_MALFORMED', `${what} line ${line}: invalid UTF-8`);
        }
        line++;
        start = i + 1;
      }
    }
    throw sluiceError('BATCH_MALFORMED', `${what}: invalid UTF-8`);
  }
}

function isBlank(text: string, start: number, end: number): boolean {
  for (let i = start; i < end; i++) {
    const c = text.charCodeAt(i);
    if (c !== 0x20 && c !== 0x09 && c !== 0x0d) return false;
  }
  return true;
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** One JSON object per line; blank lines are skipped; errors name the 1-based line. */
export function decodeNdjson(bytes: Uint8Array, schema: StreamSchema, opts?: DecodeOptions): Batch {
  return guardDecode('NDJSON batch', () => {
    const text = decodeText(bytes, 'NDJSON batch');
    // First pass: count the rows so that every column is allocated once at its final size.
    let rows = 0;
    for (let start = 0; start <= text.length;) {
      let end = text.indexOf('\n', start);
      if (end < 0) end = text.length;
      if (!isBlank(text, start, end)) rows++;
      start = end + 1;
    }
    checkRowCount(rows, opts);
    const lineOf = new Int32Array(rows); // row → 1-based line, for messages
    const label: RowLabel = (row) => `line ${lineOf[row]}`;
    let line = 0;
    const sinks = makeValueSinks(schema, rows, JSON_RULES, label, scratchOf(opts));
    let row = 0;
    for (let start = 0; start <= text.length;) {
      let end = text.indexOf('\n', start);
      if (end < 0) end = text.length;
      line++;
      if (!isBlank(text, start, end)) {
        let obj: unknown;
        try {
          obj = JSON.parse(text.slice(start, end));
        } catch (err) {
          throw sluiceError('BATCH_MALFORMED', `NDJSON line ${line}: invalid JSON: ${errorText(err)}`);
        }
        if (!isRowObject(obj)) {
          throw sluiceError('BATCH_MALFORMED', `NDJSON line ${line}: expected a JSON object, got ${describeValue(obj)}`);
        }
        lineOf[row] = line;
        setRow(sinks, schema, row, obj, label);
        row++;
      }
      start = end + 1;
    }
    return finishBatch(schema, rows, sinks.map((s) => s.finish()), opts, label);
  });
}

/** A JSON array of row objects. Errors name the 0-based row (the array index). */
export function decodeJson(bytes: Uint8Array, schema: StreamSchema, opts?: DecodeOptions): Batch {
  return guardDecode('JSON batch', () => {
    const text = decodeText(bytes, 'JSON batch');
    let doc: unknown;
    try {
      doc = JSON.parse(text);
    } catch (err) {
      throw sluiceError('BATCH_MALFORMED', `JSON batch: invalid JSON: ${errorText(err)}`);
    }
    if (!Array.isArray(doc)) {
      throw sluiceError('BATCH_MALFORMED', `JSON batch: expected an array of row objects, got ${describeValue(doc)}`);
    }
    const rows = doc.length;
    checkRowCount(rows, opts);
    const sinks = makeValueSinks(schema, rows, JSON_RULES, rowLabel, scratchOf(opts));
    for (let row = 0; row < rows; row++) {
      const obj: unknown = doc[row];
      if (!isRowObject(obj)) {
        throw sluiceError('BATCH_MALFORMED', `JSON batch row ${row}: expected an object, got ${describeValue(obj)}`);
      }
      setRow(sinks, schema, row, obj, rowLabel);
    }
    return finishBatch(schema, rows, sinks.map((s) => s.finish()), opts, rowLabel);
  });
}
