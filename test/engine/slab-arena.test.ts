import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SlabArena, type SlabRef } from '../../engine/slab-arena.js';

const bytes = (n: number, v = 7): Uint8Array => new Uint8Array(n).fill(v);

test('copies land 8-byte aligned in shared memory, with the bytes intact', () => {
  const a = new SlabArena(4096, 1024);
  const refs = [bytes(5, 1), bytes(13, 2), bytes(8, 3)].map((b) => a.tryCopy(b)!);
  assert.deepEqual(refs.map((r) => r.offset), [0, 8, 24]);
  for (const [i, r] of refs.entries()) {
    assert.ok(r.buffer instanceof SharedArrayBuffer);
    assert.ok(new Uint8Array(r.buffer, r.offset, r.length).every((x) => x === i + 1));
  }
  assert.equal(a.bytesInUse, 8 + 16 + 8);
});

test('full when no slab is empty; space comes back when every batch of a slab is released', async () => {
  const a = new SlabArena(2048, 1024); // two slabs
  const first: SlabRef[] = [];
  for (let i = 0; i < 4; i++) first.push(a.tryCopy(bytes(256))!); // fills slab 0
  const second = a.tryCopy(bytes(1000))!; // slab 1
  assert.equal(second.slab, 1);
  assert.equal(a.tryCopy(bytes(256)), null, 'both slabs hold live batches');
  const space = a.whenSpace();
  for (const r of first.slice(0, 3)) a.release(r);
  assert.equal(a.tryCopy(bytes(256)), null, 'slab 0 still holds one batch');
  a.release(first[3]!);
  await space;
  const again = a.tryCopy(bytes(256))!;
  assert.equal(again.slab, 0);
  assert.equal(again.offset, 0);
});

test('releasing out of order, skipping a busy slab, and the limits', () => {
  const a = new SlabArena(3 * 1024, 1024);
  const r0 = a.tryCopy(bytes(900))!; // slab 0
  const r1 = a.tryCopy(bytes(900))!; // slab 1
  const r2 = a.tryCopy(bytes(900))!; // slab 2
  assert.deepEqual([r0.slab, r1.slab, r2.slab], [0, 1, 2]);
  a.release(r0); // slab 0 empty, slab 1 busy
  const r3 = a.tryCopy(bytes(900))!;
  assert.equal(r3.slab, 0, 'moves on to the next EMPTY slab');
  assert.throws(() => a.tryCopy(bytes(1025)), /exceeds the slab size/);
  assert.throws(() => a.release(r0), /not live/);
  assert.throws(() => new SlabArena(10, 1024), /at least one slab/);
});
