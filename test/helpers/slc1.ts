/**
 * The checkpoint blob as releases before incremental checkpoints wrote it (SLC1: every section
 * inline), for the tests that check such a checkpoint still restores.
 *
 *   u32 magic 'SLC1' | u32 header bytes | header JSON | per section: u32 length | bytes | pad8
 */
import type { StreamPosition } from '../../engine/protocol.js';

export function encodeSlc1(
  positions: Readonly<Record<string, StreamPosition>>,
  pipelines: ReadonlyMap<string, readonly Uint8Array[]>,
): Uint8Array {
  const counts: Record<string, number> = {};
  const sections: Uint8Array[] = [];
  for (const [name, parts] of pipelines) {
    counts[name] = parts.length;
    sections.push(...parts);
  }
  // JSON.stringify writes a maxEventTime of −Infinity as null, as SLC1 did
  const head = new TextEncoder().encode(JSON.stringify({ version: 1, positions, pipelines: counts }));
  const align8 = (n: number): number => (n + 7) & ~7;
  let size = align8(8 + head.length);
  for (const s of sections) size += align8(4 + s.length);
  const blob = new Uint8Array(size);
  const dv = new DataView(blob.buffer);
  dv.setUint32(0, 0x31434c53, true);
  dv.setUint32(4, head.length, true);
  blob.set(head, 8);
  let off = align8(8 + head.length);
  for (const s of sections) {
    dv.setUint32(off, s.length, true);
    blob.set(s, off + 4);
    off += align8(4 + s.length);
  }
  return blob;
}
