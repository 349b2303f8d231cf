/**
 * Concatenation of columns and batches: several small batches coalesced into one task become
 * one batch (one pass of every kernel instead of one per batch), and closed windows of several
 * buckets become one result. O(rows) copies, done once per task — not per event per kernel.
 */

import type { Batch, Column } from '../engine/schema.js';

/** Concatenate columns of one type (string dictionaries are merged). */
export function concatColumns(cols: readonly Column[]): Column {
  if (cols.length === 1) return cols[0]!;
  const type = cols[0]?.type ?? 'int32';
  let n = 0;
  for (const c of cols) n += columnLength(c);
  const anyNull = cols.some((c) => c.valid !== null);
  const valid = anyNull ? new Uint8Array(n).fill(1) : null;
  let o = 0;
  if (valid !== null) {
    for (const c of cols) {
      if (c.valid !== null) valid.set(c.valid, o);
      o += columnLength(c);
    }
    o = 0;
  }
  switch (type) {
    case 'string': {
      const dict: string[] = [];
      const ids = new Map<string, number>();
      const codes = new Int32Array(n);
      for (const c of cols) {
        if (c.type !== 'string') throw new Error('concat of mixed types');
        const map = c.dict.map((s) => {
          let id = ids.get(s);
          if (id === undefined) { id = dict.length; dict.push(s); ids.set(s, id); }
          return id;
        });
        for (let i = 0; i < c.codes.length; i++) codes[o + i] = map[c.codes[i]!]!;
        o += c.codes.length;
      }
      return { type: 'string', codes, dict, valid };
    }
    case 'int64': {
      const words = new Int32Array(2 * n);
      for (const c of cols) {
        if (c.type !== 'int64') throw new Error('concat of mixed types');
        words.set(c.words, 2 * o);
        o += c.words.length >> 1;
      }
      return { type: 'int64', words, valid };
    }
    case 'int32': {
      const values = new Int32Array(n);
      for (const c of cols) {
        if (c.type !== 'int32') throw new Error('concat of mixed types');
        values.set(c.values, o);
        o += c.values.length;
      }
      return { type: 'int32', values, valid };
    }
    case 'bool': {
      const values = new Uint8Array(n);
      for (const c of cols) {
        if (c.type !== 'bool') throw new Error('concat of mixed types');
        values.set(c.values, o);
        o += c.values.length;
      }
      return { type: 'bool', values, valid };
    }
    case 'float64':
    case 'timestamp': {
      const values = new Float64Array(n);
      for (const c of cols) {
        if (c.type !== 'float64' && c.type !== 'timestamp') throw new Error('concat of mixed types');
        values.set(c.values, o);
        o += c.values.length;
      }
      return type === 'float64' ? { type, values, valid } : { type, values, valid };
    }
  }
}

export function columnLength(c: Column): number {
  switch (c.type) {
    case 'int64': return c.words.length >> 1;
    case 'string': return c.codes.length;
    default: return c.values.length;
  }
}


/** Concatenate batches of one schema, in order (a single batch is returned as is). */
export function concatBatches(batches: readonly Batch[]): Batch {
  if (batches.length === 1) return batches[0]!;
  const first = batches[0];
  if (first === undefined) throw new Error('concat of no batches');
  let length = 0;
  for (const b of batches) length += b.length;
  return {
    schema: first.schema,
    length,
    columns: first.columns.map((_, j) => concatColumns(batches.map((b) => b.columns[j]!))),
  };
}
