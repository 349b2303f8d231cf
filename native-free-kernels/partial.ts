/**
 * A partial aggregate: what one batch (or one worker task) contributes to a pipeline's windows.
 * Small — one entry per (window, group) present in the batch, not per row — and serializable
 * into one ArrayBuffer so it crosses threads by transfer, never by structured clone, and can
 * be written into a checkpoint.
 *
 * Binary layout (little-endian, every section 8-byte aligned):
 *
 *   u32 magic 'SLP1' | u32 header bytes | header (JSON, UTF-8) | pad
 *   f64[groups] windowStart | f64[groups] windowEnd
 *   per key column:   valid u8[groups] (when present) | values (i32 / u8 / f64 / i64 words)
 *   per aggregate:    f64[groups] per state field | sketches (u32 length + bytes each)
 *
 * The header carries counts, types and string dictionaries — O(groups), never O(rows).
 */

import type { Column, ColumnType } from '../engine/schema.js';
import { AggState } from './aggregate-state.js';
import { HyperLogLog } from './hyperloglog.js';
import { QuantileSketch } from './quantile-sketch.js';

export interface Partial {
  /** number of (window, group) entries */
  readonly groups: number;
  readonly windowStart: Float64Array;
  readonly windowEnd: Float64Array;
  /** groupBy columns, `groups` rows each */
  readonly keys: readonly Column[];
  /** one per aggregate of the plan, `groups` entries used */
  readonly states: readonly AggState[];
  /** rows in the input batch, rows that passed the filter */
  readonly rowsIn: number;
  readonly rowsSelected: number;
  /** smallest and largest event time in the batch (±Infinity when empty) */
  readonly minEventTime: number;
  readonly maxEventTime: number;
}

interface Header {
  groups: number;
  rowsIn: number;
  rowsSelected: number;
  minEventTime: number | null;
  maxEventTime: number | null;
  keys: { type: ColumnType; valid: boolean; dict?: string[] }[];
  states: { fields: number; inits: (number | string)[]; sketch: 'hll' | 'qs' | null }[];
}

const MAGIC = 0x31504c53; // 'SLP1'
const encoder = new TextEncoder();
const decoder = new TextDecoder();

function align8(n: number): number {
  return (n + 7) & ~7;
}

function finiteOrNull(v: number): number | null {
  return Number.isFinite(v) ? v : null;
}

/** Serialize into one exactly sized ArrayBuffer (transferable). */
export function serializePartial(p: Partial): ArrayBuffer {
  const G = p.groups;
  const header: Header = {
    groups: G,
    rowsIn: p.rowsIn,
    rowsSelected: p.rowsSelected,
    minEventTime: finiteOrNull(p.minEventTime),
    maxEventTime: finiteOrNull(p.maxEventTime),
    keys: p.keys.map((c) => ({ type: c.type, valid: c.valid !== null, ...(c.type === 'string' ? { dict: [...c.dict] } : {}) })),
    states: p.states.map((s) => ({
      fields: s.f.length,
      // JSON has no NaN / Infinity
      inits: s.inits.map((v) => (Number.isNaN(v) ? 'NaN' : v === Infinity ? 'Inf' : v === -Infinity ? '-Inf' : v)),
      sketch: s.hll !== null ? 'hll' : s.qs !== null ? 'qs' : null,
    })),
  };
  const head = encoder.encode(JSON.stringify(header));
  const sketchBytes: Uint8Array[][] = p.states.map((s) => {
    const out: Uint8Array[] = [];
    const arr = s.hll ?? s.qs;
    if (arr !== null) for (let g = 0; g < G; g++) out.push(arr[g]?.serialize() ?? new Uint8Array(0));
    return out;
  });

  let size = align8(8 + head.length) + 16 * G;
  for (const c of p.keys) {
    if (c.valid !== null) size += align8(G);
    size += align8(c.type === 'int64' || c.type === 'float64' || c.type === 'timestamp' ? 8 * G : c.type === 'bool' ? G : 4 * G);
  }
  p.states.forEach((s, k) => {
    size += 8 * G * s.f.length;
    for (const b of sketchBytes[k]!) size += align8(4 + b.length);
  });

  const buf = new ArrayBuffer(size);
  const u8 = new Uint8Array(buf);
  const dv = new DataView(buf);
  dv.setUint32(0, MAGIC, true);
  dv.setUint32(4, head.length, true);
  u8.set(head, 8);
  let off = align8(8 + head.length);
  const putF64 = (a: Float64Array): void => {
    new Float64Array(buf, off, G).set(a.subarray(0, G));
    off += 8 * G;
  };
  putF64(p.windowStart);
  putF64(p.windowEnd);
  for (const c of p.keys) {
    if (c.valid !== null) {
      u8.set(c.valid.subarray(0, G), off);
      off += align8(G);
    }
    switch (c.type) {
      case 'int32': new Int32Array(buf, off, G).set(c.values.subarray(0, G)); off += align8(4 * G); break;
      case 'string': new Int32Array(buf, off, G).set(c.codes.subarray(0, G)); off += align8(4 * G); break;
      case 'bool': u8.set(c.values.subarray(0, G), off); off += align8(G); break;
      case 'int64': new Int32Array(buf, off, 2 * G).set(c.words.subarray(0, 2 * G)); off += 8 * G; break;
      case 'float64':
      case 'timestamp': putF64(c.values); break;
    }
  }
  p.states.forEach((s, k) => {
    for (const f of s.f) putF64(f);
    for (const b of sketchBytes[k]!) {
      dv.setUint32(off, b.length, true);
      u8.set(b, off + 4);
      off += align8(4 + b.length);
    }
  });
  return buf;
}

function reviveNumber(v: unknown): number {
  if (v === 'NaN') return NaN;
  if (v === 'Inf') return Infinity;
  if (v === '-Inf') return -Infinity;
  if (typeof v !== 'number') throw new Error('partial: bad number in header');
  return v;
}

/** Inverse of serializePartial. The arrays are views over `buf` (no copy). */
export function deserializePartial(buf: ArrayBuffer): Partial {
  const dv = new DataView(buf);
  if (buf.byteLength < 8 || dv.getUint32(0, true) !== MAGIC) throw new Error('partial: bad magic');
  const headLen = dv.getUint32(4, true);
  const header = JSON.parse(decoder.decode(new Uint8Array(buf, 8, headLen))) as Header;
  const G = header.groups;
  let off = align8(8 + headLen);
  const takeF64 = (): Float64Array => {
    const a = new Float64Array(buf, off, G);
    off += 8 * G;
    return a;
  };
  const windowStart = takeF64();
  const windowEnd = takeF64();
  const keys: Column[] = header.keys.map((k) => {
    let valid: Uint8Array | null = null;
    if (k.valid) {
      valid = new Uint8Array(buf, off, G);
      off += align8(G);
    }
    switch (k.type) {
      case 'int32': { const values = new Int32Array(buf, off, G); off += align8(4 * G); return { type: 'int32', values, valid }; }
      case 'string': { const codes = new Int32Array(buf, off, G); off += align8(4 * G); return { type: 'string', codes, dict: k.dict ?? [], valid }; }
      case 'bool': { const values = new Uint8Array(buf, off, G); off += align8(G); return { type: 'bool', values, valid }; }
      case 'int64': { const words = new Int32Array(buf, off, 2 * G); off += 8 * G; return { type: 'int64', words, valid }; }
      case 'float64': return { type: 'float64', values: takeF64(), valid };
      case 'timestamp': return { type: 'timestamp', values: takeF64(), valid };
    }
  });
  const states = header.states.map((s) => {
    const inits = s.inits.map(reviveNumber);
    const st = new AggState(inits, s.sketch, Math.max(G, 1));
    for (let j = 0; j < s.fields; j++) st.f[j] = takeF64();
    st.capacity = G;
    if (s.sketch !== null) {
      for (let g = 0; g < G; g++) {
        const len = dv.getUint32(off, true);
        const bytes = new Uint8Array(buf, off + 4, len);
        off += align8(4 + len);
        if (len === 0) continue;
        if (s.sketch === 'hll') st.hll![g] = HyperLogLog.deserialize(bytes);
        else st.qs![g] = QuantileSketch.deserialize(bytes);
      }
    }
    return st;
  });
  return {
    groups: G,
    windowStart,
    windowEnd,
    keys,
    states,
    rowsIn: header.rowsIn,
    rowsSelected: header.rowsSelected,
    minEventTime: header.minEventTime ?? Infinity,
    maxEventTime: header.maxEventTime ?? -Infinity,
  };
}
