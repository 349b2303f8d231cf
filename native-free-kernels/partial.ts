/**
 * A partial aggregate: what one batch (or one worker task) contributes to a pipeline's windows.
 * Small — one entry per (window, group) present in the batch, not per row — and serializable
 * into one run of bytes, so it crosses threads without a structured clone (in a worker's shared
 * outbox, engine/outbox.ts) and can be written into a checkpoint.
 *
 * Binary layout (little-endian, every section 8-byte aligned):
 *
 *   u32 magic 'SLP1' | u32 header bytes | header (JSON, UTF-8) | pad
 *   f64[groups] windowStart | f64[groups] windowEnd
 *   per key column:   valid u8[groups] (when present) | values (i32 / u8 / f64 / i64 words)
 *   aggregate state:  f64[groups × stride] (interleaved rows, aggregate-state.ts)
 *   per sketch aggregate: per group u32 length + bytes
 *
 * The header carries counts, types and string dictionaries — O(groups), never O(rows).
 */

import type { Column, ColumnType } from '../engine/schema.js';
import { AggLayout, AggState, type SketchKind } from './aggregate-state.js';
import { HyperLogLog } from './hyperloglog.js';
import { QuantileSketch } from './quantile-sketch.js';

export interface Partial {
  /** number of (window, group) entries */
  readonly groups: number;
  readonly windowStart: Float64Array;
  readonly windowEnd: Float64Array;
  /** groupBy columns, `groups` rows each */
  readonly keys: readonly Column[];
  /** the aggregates' state, `groups` rows used */
  readonly state: AggState;
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
  /** the layout's shapes: initial values (JSON has no NaN / Infinity: spelled as strings) */
  shapes: { inits: (number | string)[]; sketch: SketchKind; count: string | true | null }[];
}

const MAGIC = 0x31504c53; // 'SLP1'
const encoder = new TextEncoder();
const decoder = new TextDecoder();

function align8(n: number): number {
  return (n + 7) & ~7;
}

function newBytes(size: number): Uint8Array {
  return new Uint8Array(size);
}

function finiteOrNull(v: number): number | null {
  return Number.isFinite(v) ? v : null;
}

/** Serialize into `alloc(size)`: exactly sized, 8-byte aligned bytes (a new buffer by default). */
export function serializePartial(p: Partial, alloc: (size: number) => Uint8Array = newBytes): Uint8Array {
  const G = p.groups;
  const header: Header = {
    groups: G,
    rowsIn: p.rowsIn,
    rowsSelected: p.rowsSelected,
    minEventTime: finiteOrNull(p.minEventTime),
    maxEventTime: finiteOrNull(p.maxEventTime),
    keys: p.keys.map((c) => ({ type: c.type, valid: c.valid !== null, ...(c.type === 'string' ? { dict: [...c.dict] } : {}) })),
    shapes: p.state.layout.shapes.map((sh) => ({
      inits: sh.inits.map((v) => (Number.isNaN(v) ? 'NaN' : v === Infinity ? 'Inf' : v === -Infinity ? '-Inf' : v)),
      sketch: sh.sketch,
      count: sh.count,
    })),
  };
  const head = encoder.encode(JSON.stringify(header));
  const st = p.state;
  const stride = st.layout.stride;
  const sketchBytes: Uint8Array[][] = st.layout.shapes.map((sh, k) => {
    const out: Uint8Array[] = [];
    const arr = sh.sketch === 'hll' ? st.hll[k]! : sh.sketch === 'qs' ? st.qs[k]! : null;
    if (arr !== null) for (let g = 0; g < G; g++) out.push(arr[g]?.serialize() ?? new Uint8Array(0));
    return out;
  });

  let size = align8(8 + head.length) + 16 * G;
  for (const c of p.keys) {
    if (c.valid !== null) size += align8(G);
    size += align8(c.type === 'int64' || c.type === 'float64' || c.type === 'timestamp' ? 8 * G : c.type === 'bool' ? G : 4 * G);
  }
  size += 8 * G * stride;
  for (const list of sketchBytes) for (const b of list) size += align8(4 + b.length);

  const u8 = alloc(size);
  const buf = u8.buffer;
  const base = u8.byteOffset;
  const dv = new DataView(buf, base, size);
  dv.setUint32(0, MAGIC, true);
  dv.setUint32(4, head.length, true);
  u8.set(head, 8);
  let off = align8(8 + head.length);
  const putF64 = (a: Float64Array): void => {
    new Float64Array(buf, base + off, G).set(a.subarray(0, G));
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
      case 'int32': new Int32Array(buf, base + off, G).set(c.values.subarray(0, G)); off += align8(4 * G); break;
      case 'string': new Int32Array(buf, base + off, G).set(c.codes.subarray(0, G)); off += align8(4 * G); break;
      case 'bool': u8.set(c.values.subarray(0, G), off); off += align8(G); break;
      case 'int64': new Int32Array(buf, base + off, 2 * G).set(c.words.subarray(0, 2 * G)); off += 8 * G; break;
      case 'float64':
      case 'timestamp': putF64(c.values); break;
    }
  }
  new Float64Array(buf, base + off, G * stride).set(st.data.subarray(0, G * stride));
  off += 8 * G * stride;
  for (const list of sketchBytes) {
    for (const b of list) {
      dv.setUint32(off, b.length, true);
      u8.set(b, off + 4);
      off += align8(4 + b.length);
    }
  }
  return u8;
}

function reviveNumber(v: unknown): number {
  if (v === 'NaN') return NaN;
  if (v === 'Inf') return Infinity;
  if (v === '-Inf') return -Infinity;
  if (typeof v !== 'number') throw new Error('partial: bad number in header');
  return v;
}

/**
 * Inverse of serializePartial. The arrays are views over `bytes` (no copy), which must start
 * 8-byte aligned in their buffer; sketches are copied out.
 */
export function deserializePartial(bytes: Uint8Array): Partial {
  const buf = bytes.buffer;
  const base = bytes.byteOffset;
  if (base % 8 !== 0) throw new Error('partial: bytes not 8-byte aligned');
  const dv = new DataView(buf, base, bytes.byteLength);
  if (bytes.byteLength < 8 || dv.getUint32(0, true) !== MAGIC) throw new Error('partial: bad magic');
  const headLen = dv.getUint32(4, true);
  const header = JSON.parse(decoder.decode(bytes.subarray(8, 8 + headLen))) as Header;
  const G = header.groups;
  let off = align8(8 + headLen);
  const takeF64 = (): Float64Array => {
    const a = new Float64Array(buf, base + off, G);
    off += 8 * G;
    return a;
  };
  const windowStart = takeF64();
  const windowEnd = takeF64();
  const keys: Column[] = header.keys.map((k) => {
    let valid: Uint8Array | null = null;
    if (k.valid) {
      valid = new Uint8Array(buf, base + off, G);
      off += align8(G);
    }
    switch (k.type) {
      case 'int32': { const values = new Int32Array(buf, base + off, G); off += align8(4 * G); return { type: 'int32', values, valid }; }
      case 'string': { const codes = new Int32Array(buf, base + off, G); off += align8(4 * G); return { type: 'string', codes, dict: k.dict ?? [], valid }; }
      case 'bool': { const values = new Uint8Array(buf, base + off, G); off += align8(G); return { type: 'bool', values, valid }; }
      case 'int64': { const words = new Int32Array(buf, base + off, 2 * G); off += 8 * G; return { type: 'int64', words, valid }; }
      case 'float64': return { type: 'float64', values: takeF64(), valid };
      case 'timestamp': return { type: 'timestamp', values: takeF64(), valid };
    }
  });
  const layout = new AggLayout(header.shapes.map((sh) => ({ inits: sh.inits.map(reviveNumber), sketch: sh.sketch, count: sh.count })));
  const state = new AggState(layout, 1);
  state.data = new Float64Array(buf, base + off, G * layout.stride);
  state.capacity = G;
  off += 8 * G * layout.stride;
  layout.shapes.forEach((sh, k) => {
    if (sh.sketch === null) return;
    for (let g = 0; g < G; g++) {
      const len = dv.getUint32(off, true);
      const sketch = bytes.subarray(off + 4, off + 4 + len);
      off += align8(4 + len);
      if (len === 0) continue;
      if (sh.sketch === 'hll') state.hll[k]![g] = HyperLogLog.deserialize(sketch);
      else state.qs[k]![g] = QuantileSketch.deserialize(sketch);
    }
  });
  return {
    groups: G,
    windowStart,
    windowEnd,
    keys,
    state,
    rowsIn: header.rowsIn,
    rowsSelected: header.rowsSelected,
    minEventTime: header.minEventTime ?? Infinity,
    maxEventTime: header.maxEventTime ?? -Infinity,
  };
}
