/**
 * Batch → NDJSON / JSON array of row objects. Used by tests, the benchmark and the load generator.
 *
 * Nulls are written as `null`; int64 within ±(2^53 − 1) as numbers, beyond as decimal strings
 * (the form the decoder needs to keep them exact); timestamps as ms numbers; NaN and ±Infinity,
 * which JSON cannot carry, as `null` (as JSON.stringify does). Each dictionary string is escaped
 * once per batch, not once per row.
 */
import type { Batch, Column } from '../engine/schema.js';
import { int64ToString } from '../engine/schema.js';

const TWO_32 = 4294967296;
const encoder = new TextEncoder();

/** The JSON text of row i of a column. */
type Formatter = (i: number) => string;

function formatterOf(col: Column): Formatter {
  const valid = col.valid;
  let f: Formatter;
  switch (col.type) {
    case 'bool': {
      const v = col.values;
      f = (i) => (v[i] === 1 ? 'true' : 'false');
      break;
    }
    case 'int32':
    case 'timestamp': {
      const v = col.values;
      f = (i) => String(v[i]);
      break;
    }
    case 'float64': {
      const v = col.values;
      f = (i) => (Number.isFinite(v[i]) ? String(v[i]) : 'null');
      break;
    }
    case 'int64': {
      const w = col.words;
      f = (i) => {
        const v = w[2 * i + 1]! * TWO_32 + (w[2 * i]! >>> 0);
        return Number.isSafeInteger(v) ? String(v) : `"${int64ToString(w[2 * i]!, w[2 * i + 1]!)}"`;
      };
      break;
    }
    case 'string': {
      const quoted = col.dict.map((s) => JSON.stringify(s));
      const codes = col.codes;
      f = (i) => quoted[codes[i]!]!;
      break;
    }
  }
  return valid === null ? f : (i) => (valid[i] === 1 ? f(i) : 'null');
}

/** The JSON object text of every row. */
function rowTexts(batch: Batch): string[] {
  const keys = batch.schema.fields.map((fd, c) => `${c === 0 ? '{' : ','}${JSON.stringify(fd.name)}:`);
  const formats = batch.columns.map(formatterOf);
  const out = new Array<string>(batch.length);
  for (let i = 0; i < batch.length; i++) {
    let s = '';
    for (let c = 0; c < keys.length; c++) s += keys[c]! + formats[c]!(i);
    out[i] = keys.length === 0 ? '{}' : `${s}}`;
  }
  return out;
}

/** One JSON object per line, each line ending in \n. */
export function encodeNdjson(batch: Batch): Uint8Array {
  const rows = rowTexts(batch);
  return encoder.encode(rows.length === 0 ? '' : `${rows.join('\n')}\n`);
}

/** A JSON array of row objects. */
export function encodeJson(batch: Batch): Uint8Array {
  return encoder.encode(`[${rowTexts(batch).join(',')}]`);
}
