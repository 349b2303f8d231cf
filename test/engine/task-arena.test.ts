import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TaskArena } from '../../engine/task-runner.js';
import { decodeArrow } from '../../native-free-kernels/decode-arrow.js';
import { encodeArrow } from '../../native-free-kernels/encode-arrow.js';
import { makeSchema, type Batch } from '../../engine/schema.js';

test('TaskArena: zeroed, 8-aligned, disjoint arrays within a task; reuse after reset; growth keeps earlier arrays', () => {
  const arena = new TaskArena();
  const a = arena.f64(3);
  const b = arena.i32(5);
  const c = arena.f64(2);
  for (const x of [a, b, c]) assert.ok(x.every((v) => v === 0));
  assert.equal(a.byteOffset % 8, 0);
  assert.equal(c.byteOffset % 8, 0);
  a.fill(1.5);
  b.fill(-7);
  c.fill(2.5);
  assert.deepEqual(Array.from(a), [1.5, 1.5, 1.5]);
  assert.deepEqual(Array.from(b), [-7, -7, -7, -7, -7]);
  // past the first buffer (1 MiB): a new one; what was handed out stays as it was
  const big = arena.f64(200_000);
  big.fill(9);
  assert.deepEqual(Array.from(a), [1.5, 1.5, 1.5]);
  assert.deepEqual(Array.from(c), [2.5, 2.5]);
  arena.reset();
  const again = arena.f64(3);
  assert.ok(again.every((v) => v === 0), 'zeroed after reuse');
});

test('TaskArena: two batches decoded into one arena in one task keep their own columns', () => {
  const schema = makeSchema([{ name: 's', type: 'string' }, { name: 'ts', type: 'timestamp' }]);
  const batchOf = (strs: string[], base: number): Batch => ({
    schema, length: strs.length,
    columns: [
      { type: 'string', codes: Int32Array.from(strs, (_, i) => i), dict: strs, valid: null },
      { type: 'timestamp', values: Float64Array.from(strs, (_, i) => base + i), valid: null },
    ],
  });
  const arena = new TaskArena();
  const one = decodeArrow(encodeArrow(batchOf(['a', 'b', 'c'], 1_000)), schema, { scratch: arena });
  const two = decodeArrow(encodeArrow(batchOf(['x', 'y'], 5_000)), schema, { scratch: arena });
  const texts = (b: Batch): string[] => {
    const col = b.columns[0]!;
    assert.ok(col.type === 'string');
    return Array.from({ length: b.length }, (_, i) => col.dict[col.codes[i]!]!);
  };
  assert.deepEqual(texts(one), ['a', 'b', 'c']);
  assert.deepEqual(texts(two), ['x', 'y']);
  assert.deepEqual(Array.from((one.columns[1] as { values: Float64Array }).values), [1_000, 1_001, 1_002]);
  assert.deepEqual(Array.from((two.columns[1] as { values: Float64Array }).values), [5_000, 5_001]);
});
