/**
 * Batch → MessagePack, in the two shapes the decoder accepts. Used by tests, the benchmark and the
 * load generator. Nulls are written as nil; int64 values within ±2^53 as numbers and beyond as
 * int64 (a BigInt only for those values); timestamps as ms numbers; -0 becomes 0 (msgpackr writes
 * integral doubles as integers).
 */
import { Packr } from 'msgpackr';
import type { Batch, Column } from '../engine/schema.js';

// Plain maps (no msgpackr record extension), so any MessagePack decoder reads the output.
const packr = new Packr({ useRecords: false });
const TWO_32 = 4294967296;

type Value = boolean | number | bigint | string | null;

/** A row's value as msgpackr should write it. */
function valueOf(col: Column, i: number): Value {
  if (col.valid !== null && col.valid[i] === 0) return null;
  switch (col.type) {
    case 'bool': return col.values[i] === 1;
    case 'int32':
    case 'float64':
    case 'timestamp': return col.values[i]!;
    case 'string': return col.dict[col.codes[i]!]!;
    case 'int64': {
      const lo = col.words[2 * i]!;
      const hi = col.words[2 * i + 1]!;
      // exact as a double iff the value lies in [-2^53, 2^53): decide on the words, since the
      // double itself is already rounded outside that range
      return hi >= -0x200000 && hi < 0x200000 ? hi * TWO_32 + (lo >>> 0) : (BigInt(hi) << 32n) | BigInt(lo >>> 0);
    }
  }
}

/** An array of row maps: `[{col: value, ...}, ...]`. */
export function encodeMsgpackRows(batch: Batch): Uint8Array {
  const names = batch.schema.fields.map((f) => f.name);
  const rows = new Array<Record<string, Value>>(batch.length);
  for (let i = 0; i < batch.length; i++) {
    const row: Record<string, Value> = {};
    for (let c = 0; c < names.length; c++) row[names[c]!] = valueOf(batch.columns[c]!, i);
    rows[i] = row;
  }
  return packr.pack(rows);
}

/** A map of column name → array of values. */
export function encodeMsgpackColumns(batch: Batch): Uint8Array {
  const doc: Record<string, Value[]> = {};
  batch.schema.fields.forEach((f, c) => {
    const col = batch.columns[c]!;
    const values = new Array<Value>(batch.length);
    for (let i = 0; i < batch.length; i++) values[i] = valueOf(col, i);
    doc[f.name] = values;
  });
  return packr.pack(doc);
}
