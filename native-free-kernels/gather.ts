/**
 * Gather: a new column holding rows idx[0..] of a column (used to build partial results and
 * emitted windows, O(groups) — never on the per-event path).
 */

import type { Column } from '../engine/schema.js';

export function gatherColumn(col: Column, idx: Int32Array): Column {
  const n = idx.length;
  let valid: Uint8Array | null = null;
  if (col.valid !== null) {
    valid = new Uint8Array(n);
    for (let i = 0; i < n; i++) valid[i] = col.valid[idx[i]!]!;
  }
  switch (col.type) {
    case 'int32': {
      const values = new Int32Array(n);
      for (let i = 0; i < n; i++) values[i] = col.values[idx[i]!]!;
      return { type: 'int32', values, valid };
    }
    case 'bool': {
      const values = new Uint8Array(n);
      for (let i = 0; i < n; i++) values[i] = col.values[idx[i]!]!;
      return { type: 'bool', values, valid };
    }
    case 'string': {
      const codes = new Int32Array(n);
      for (let i = 0; i < n; i++) codes[i] = col.codes[idx[i]!]!;
      return { type: 'string', codes, dict: col.dict, valid };
    }
    case 'int64': {
      const words = new Int32Array(2 * n);
      for (let i = 0; i < n; i++) {
        words[2 * i] = col.words[2 * idx[i]!]!;
        words[2 * i + 1] = col.words[2 * idx[i]! + 1]!;
      }
      return { type: 'int64', words, valid };
    }
    case 'float64':
    case 'timestamp': {
      const values = new Float64Array(n);
      for (let i = 0; i < n; i++) values[i] = col.values[idx[i]!]!;
      return { type: col.type, values, valid };
    }
  }
}

/**
 * A string column whose dictionary holds only the entries its rows use (other types are
 * returned as they are): a partial of 10 groups must not carry a batch's 50 000-entry
 * dictionary to every merge.
 */
export function compactDictionary(col: Column): Column {
  if (col.type !== 'string') return col;
  const n = col.codes.length;
  const remap = new Int32Array(col.dict.length).fill(-1);
  const dict: string[] = [];
  const codes = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    if (col.valid !== null && col.valid[i] === 0) continue;
    const old = col.codes[i]!;
    let code = remap[old]!;
    if (code < 0) {
      code = dict.length;
      remap[old] = code;
      dict.push(col.dict[old]!);
    }
    codes[i] = code;
  }
  return { type: 'string', codes, dict, valid: col.valid };
}
