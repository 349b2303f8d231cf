import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeCheckpoint, encodeCheckpoint } from '../../engine/checkpoint.js';
import { encodeSlc1 } from '../helpers/slc1.js';

/**
 * The checkpoint blob: SLC2 (a manifest of part ids) round-trips; SLC1, written by releases
 * before incremental checkpoints with the sections inline, still decodes.
 */

test('SLC2: positions and part ids round-trip; the parts come from the map, as own aligned copies', () => {
  const blob = encodeCheckpoint({
    positions: { bids: { seq: 7, maxEventTime: 1714564800123 }, idle: { seq: 0, maxEventTime: -Infinity } },
    pipelines: new Map([['a', [3, 1]], ['b', []]]),
  });
  const parts = new Map([[1, new Uint8Array([1, 1])], [3, new Uint8Array([3, 3, 3])], [9, new Uint8Array([9])]]);
  const c = decodeCheckpoint(blob, parts);
  assert.deepEqual(c.positions, { bids: { seq: 7, maxEventTime: 1714564800123 }, idle: { seq: 0, maxEventTime: -Infinity } });
  assert.deepEqual([...c.pipelines.keys()], ['a', 'b']);
  assert.deepEqual(c.pipelines.get('a')!.map((p) => [p.id, [...new Uint8Array(p.bytes)]]), [[3, [3, 3, 3]], [1, [1, 1]]]);
  assert.notEqual(c.pipelines.get('a')![0]!.bytes, parts.get(3)!.buffer);
  assert.deepEqual(c.pipelines.get('b'), []);
  assert.throws(() => decodeCheckpoint(blob, new Map([[1, new Uint8Array(1)]])), /part 3 of pipeline 'a' is missing/);
});

test('SLC1 (sections inline, no part ids) still decodes', () => {
  const blob = encodeSlc1({ bids: { seq: 2, maxEventTime: -Infinity } }, new Map([
    ['a', [new Uint8Array([1, 2, 3]), new Uint8Array(8).fill(4)]],
    ['b', []],
    ['c', [new Uint8Array(0)]],
  ]));
  const c = decodeCheckpoint(blob);
  assert.deepEqual(c.positions, { bids: { seq: 2, maxEventTime: -Infinity } });
  const view = (name: string): [number | null, number[]][] => c.pipelines.get(name)!.map((p) => [p.id, [...new Uint8Array(p.bytes)]]);
  assert.deepEqual(view('a'), [[null, [1, 2, 3]], [null, [4, 4, 4, 4, 4, 4, 4, 4]]]);
  assert.deepEqual(view('b'), []);
  assert.deepEqual(view('c'), [[null, []]]);
});

test('a blob that is neither is refused', () => {
  assert.throws(() => decodeCheckpoint(new Uint8Array([1, 2, 3, 4, 0, 0, 0, 0])), /bad magic/);
  assert.throws(() => decodeCheckpoint(new Uint8Array(3)), /bad magic/);
  const wrong = encodeCheckpoint({ positions: {}, pipelines: new Map() });
  new DataView(wrong.buffer).setUint32(0, 0x31434c53, true); // an SLC2 header under the SLC1 magic
  assert.throws(() => decodeCheckpoint(wrong), /version 2 in an SLC1 blob/);
});
