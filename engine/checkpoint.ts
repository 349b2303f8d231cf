/**
 * The checkpoint's state blob: where every stream is and every pipeline's open windows.
 *
 *   u32 magic 'SLC1' | u32 header bytes | header JSON | per section: u32 length | bytes | pad8
 *
 * header = { version, positions: {stream: {seq, maxEventTime}}, pipelines: {name: n} } and the
 * sections are, pipeline by pipeline in header order, its n serialized partials
 * (WindowState.snapshot). Stored in DuckDB in the same transaction as the rows emitted since the
 * previous checkpoint (storage.ts), so state and results can never disagree.
 */

import type { StreamPosition } from './protocol.js';

const MAGIC = 0x31434c53; // 'SLC1'
const VERSION = 1;

export interface CheckpointState {
  readonly positions: Readonly<Record<string, StreamPosition>>;
  readonly pipelines: ReadonlyMap<string, readonly ArrayBuffer[]>;
}

interface Header {
  version: number;
  positions: Record<string, { seq: number; maxEventTime: number | null }>;
  pipelines: Record<string, number>;
}

export function encodeCheckpoint(c: CheckpointState): Uint8Array {
  const header: Header = { version: VERSION, positions: {}, pipelines: {} };
  for (const [s, p] of Object.entries(c.positions)) {
    // JSON has no ±Infinity: a stream that saw no event has maxEventTime −Infinity → null
    header.positions[s] = { seq: p.seq, maxEventTime: Number.isFinite(p.maxEventTime) ? p.maxEventTime : null };
  }
  const sections: ArrayBuffer[] = [];
  for (const [name, parts] of c.pipelines) {
    header.pipelines[name] = parts.length;
    sections.push(...parts);
  }
  const head = new TextEncoder().encode(JSON.stringify(header));
  let size = align8(8 + head.length);
  for (const s of sections) size += align8(4 + s.byteLength);
  const out = new Uint8Array(size);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, MAGIC, true);
  dv.setUint32(4, head.length, true);
  out.set(head, 8);
  let off = align8(8 + head.length);
  for (const s of sections) {
    dv.setUint32(off, s.byteLength, true);
    out.set(new Uint8Array(s), off + 4);
    off += align8(4 + s.byteLength);
  }
  return out;
}

export function decodeCheckpoint(bytes: Uint8Array): CheckpointState {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes.byteLength < 8 || dv.getUint32(0, true) !== MAGIC) throw new Error('checkpoint: bad magic');
  const headLen = dv.getUint32(4, true);
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + headLen))) as Header;
  if (header.version !== VERSION) throw new Error(`checkpoint: version ${header.version}, this build reads ${VERSION}`);
  const positions: Record<string, StreamPosition> = {};
  for (const [s, p] of Object.entries(header.positions)) positions[s] = { seq: p.seq, maxEventTime: p.maxEventTime ?? -Infinity };
  const pipelines = new Map<string, ArrayBuffer[]>();
  let off = align8(8 + headLen);
  for (const [name, n] of Object.entries(header.pipelines)) {
    const parts: ArrayBuffer[] = [];
    for (let i = 0; i < n; i++) {
      const len = dv.getUint32(off, true);
      // a copy: partials are read through typed-array views that need their own aligned buffer
      parts.push(bytes.slice(off + 4, off + 4 + len).buffer);
      off += align8(4 + len);
    }
    pipelines.set(name, parts);
  }
  return { positions, pipelines };
}

function align8(n: number): number {
  return (n + 7) & ~7;
}
