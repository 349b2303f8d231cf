/**
 * The checkpoint's state blob: where every stream is and which stored parts hold every
 * pipeline's open windows (incremental checkpoints).
 *
 *   SLC2: u32 magic 'SLC2' | u32 header bytes | header JSON
 *         header = { version: 2, positions: {stream: {seq, maxEventTime}}, pipelines: {name: [part id]} }
 *
 * A part is one serialized partial (WindowState.snapshot): one open window, or all open
 * sessions of a pipeline. Parts live in their own table (storage.ts, sluice_state_parts) and a
 * window that did not change since the last checkpoint keeps its part: a commit writes only the
 * windows that changed. Parts and blob are stored in the same transaction as the rows emitted
 * since the previous checkpoint, so state and results can never disagree.
 *
 *   SLC1 (read only, written by earlier releases): u32 magic 'SLC1' | u32 header bytes |
 *         header JSON {version: 1, positions, pipelines: {name: n}} | per section: u32 length | bytes | pad8
 */

import type { StreamPosition } from './protocol.js';
import type { RestoredPart } from './window-state.js';

const MAGIC_V1 = 0x31434c53; // 'SLC1'
const MAGIC_V2 = 0x32434c53; // 'SLC2'

export interface CheckpointManifest {
  readonly positions: Readonly<Record<string, StreamPosition>>;
  /** per pipeline the ids of the parts holding its open state */
  readonly pipelines: ReadonlyMap<string, readonly number[]>;
}

export interface CheckpointState {
  readonly positions: Readonly<Record<string, StreamPosition>>;
  readonly pipelines: ReadonlyMap<string, readonly RestoredPart[]>;
}

interface Header<P> {
  version: number;
  positions: Record<string, { seq: number; maxEventTime: number | null }>;
  pipelines: Record<string, P>;
}

export function encodeCheckpoint(c: CheckpointManifest): Uint8Array {
  const header: Header<number[]> = { version: 2, positions: {}, pipelines: {} };
  for (const [s, p] of Object.entries(c.positions)) {
    // JSON has no ±Infinity: a stream that saw no event has maxEventTime −Infinity → null
    header.positions[s] = { seq: p.seq, maxEventTime: Number.isFinite(p.maxEventTime) ? p.maxEventTime : null };
  }
  for (const [name, ids] of c.pipelines) header.pipelines[name] = [...ids];
  const head = new TextEncoder().encode(JSON.stringify(header));
  const out = new Uint8Array(8 + head.length);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, MAGIC_V2, true);
  dv.setUint32(4, head.length, true);
  out.set(head, 8);
  return out;
}

/** Decode a blob; `parts` holds the bytes of every part an SLC2 blob references. */
export function decodeCheckpoint(bytes: Uint8Array, parts: ReadonlyMap<number, Uint8Array> = new Map()): CheckpointState {
  const { magic, header, headLen } = readHeader(bytes);
  const positions: Record<string, StreamPosition> = {};
  for (const [s, p] of Object.entries(header.positions)) positions[s] = { seq: p.seq, maxEventTime: p.maxEventTime ?? -Infinity };
  const pipelines = new Map<string, RestoredPart[]>();
  if (magic === MAGIC_V2) {
    for (const [name, ids] of Object.entries(header.pipelines as Record<string, number[]>)) {
      pipelines.set(name, ids.map((id) => {
        const part = parts.get(id);
        if (part === undefined) throw new Error(`checkpoint: part ${id} of pipeline '${name}' is missing`);
        return { id, bytes: copyOf(part, 0, part.byteLength) };
      }));
    }
    return { positions, pipelines };
  }
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let off = align8(8 + headLen);
  for (const [name, n] of Object.entries(header.pipelines as Record<string, number>)) {
    const sections: RestoredPart[] = [];
    for (let i = 0; i < n; i++) {
      const len = dv.getUint32(off, true);
      sections.push({ id: null, bytes: copyOf(bytes, off + 4, off + 4 + len) });
      off += align8(4 + len);
    }
    pipelines.set(name, sections);
  }
  return { positions, pipelines };
}

function readHeader(bytes: Uint8Array): { magic: number; header: Header<unknown>; headLen: number } {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const magic = bytes.byteLength < 8 ? 0 : dv.getUint32(0, true);
  if (magic !== MAGIC_V1 && magic !== MAGIC_V2) throw new Error('checkpoint: bad magic');
  const headLen = dv.getUint32(4, true);
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + headLen))) as Header<unknown>;
  const version = magic === MAGIC_V1 ? 1 : 2;
  if (header.version !== version) throw new Error(`checkpoint: version ${header.version} in an SLC${version} blob`);
  return { magic, header, headLen };
}

/**
 * Bytes [from, to) in a buffer of their own: partials are read through typed-array views that
 * need their own aligned buffer. Uint8Array's slice, not Buffer's (a view into a shared pool):
 * parts may come as Node Buffers (DuckDB's blob values).
 */
function copyOf(bytes: Uint8Array, from: number, to: number): Uint8Array {
  return Uint8Array.prototype.slice.call(bytes, from, to);
}

function align8(n: number): number {
  return (n + 7) & ~7;
}
