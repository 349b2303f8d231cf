import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DenseKeyIndex } from '../../native-free-kernels/dense-key-index.js';
import { GroupTable, type KeyInput, type KeySpec } from '../../native-free-kernels/hash-group-by.js';
import { mulberry32, type Rng } from '../helpers/random.js';

/**
 * The index must hand out exactly the group ids of the table alone: a second table receives the
 * same inserts through GroupTable.insert only, and the ids are compared position by position.
 * The index's table is also checked to hold the keys it answered with (keyColumn).
 */

interface Step {
  /** key values of the batch's rows (any double; out-of-int32 values make int64 words) */
  readonly keys: readonly number[];
  /** rows to insert, in this order */
  readonly sel: readonly number[];
  /** row indexes whose key is null */
  readonly nulls?: readonly number[];
}

function inputOf(wide: boolean, step: Step): KeyInput {
  const n = step.keys.length;
  let valid: Uint8Array | null = null;
  if (step.nulls !== undefined && step.nulls.length > 0) {
    valid = new Uint8Array(n).fill(1);
    for (const r of step.nulls) valid[r] = 0;
  }
  if (!wide) return { values: Int32Array.from(step.keys), valid, map: null };
  const words = new Int32Array(2 * n);
  step.keys.forEach((k, r) => {
    const b = BigInt.asUintN(64, BigInt(k));
    words[2 * r] = Number(BigInt.asIntN(32, b));
    words[2 * r + 1] = Number(BigInt.asIntN(32, b >> 32n));
  });
  return { values: words, valid, map: null };
}

/** Run the steps through index + table and through a table alone; returns how many the index took. */
function check(wide: boolean, steps: readonly Step[]): number {
  const spec: KeySpec[] = [{ kind: wide ? 'i64' : 'i32', perPosition: false }];
  const table = new GroupTable(spec, 16);
  const plain = new GroupTable(spec, 16);
  const index = new DenseKeyIndex(wide);
  let taken = 0;
  steps.forEach((step, s) => {
    const input = inputOf(wide, step);
    const sel = Int32Array.from(step.sel);
    const n = sel.length;
    const got = new Int32Array(n).fill(-7);
    if (index.insert(table, input, sel, n, got)) taken++;
    else table.insert([input], sel, n, got);
    const want = new Int32Array(n);
    plain.insert([input], sel, n, want);
    assert.deepEqual(got, want, `step ${s}: group ids`);
    assert.equal(table.size, plain.size, `step ${s}: groups`);
  });
  const col = table.keyColumn(0, wide ? 'int64' : 'int32');
  const ref = plain.keyColumn(0, wide ? 'int64' : 'int32');
  assert.deepEqual(col, ref, 'the keys the table holds');
  return taken;
}

function randomStep(rng: Rng, rows: number, lo: number, span: number): Step {
  const keys = Array.from({ length: rows }, () => lo + Math.floor(rng() * span));
  // a partial lists each key once per window: distinct rows, shuffled selection of them
  const seen = new Set<number>();
  const sel: number[] = [];
  for (let r = 0; r < rows; r++) if (!seen.has(keys[r]!) && rng() < 0.9) (seen.add(keys[r]!), sel.push(r));
  for (let i = sel.length - 1; i > 0; i--) {
    const j = Math.floor(rng() * (i + 1));
    [sel[i], sel[j]] = [sel[j]!, sel[i]!];
  }
  return { keys, sel };
}

test('dense keys: the index answers with the table\'s ids, across partials that grow the range both ways', () => {
  for (const wide of [false, true]) {
    const rng = mulberry32(wide ? 11 : 12);
    const steps: Step[] = [];
    // start in the middle, then drift up and down (re-basing on both sides), negative keys too
    for (let s = 0; s < 40; s++) {
      const lo = 5_000 + (s % 2 === 0 ? 1 : -1) * s * 700 - 30_000 * Number(s > 30);
      steps.push(randomStep(rng, 1 + Math.floor(rng() * 3_000), lo, 2_000));
    }
    assert.equal(check(wide, steps), steps.length, 'every partial went through the index');
  }
});

test('dense keys: a repeated key inside one partial gets one group', () => {
  const steps: Step[] = [
    { keys: [7, 7, 9, 7], sel: [0, 1, 2, 3] },
    { keys: [9, 8, 8], sel: [2, 1, 0] },
  ];
  assert.equal(check(false, steps), 2);
  assert.equal(check(true, steps), 2);
});

test('dense keys: sparse ranges and int64 beyond int32 fall back to the table, nulls go through it, and the index stays right', () => {
  for (const wide of [false, true]) {
    const rng = mulberry32(wide ? 21 : 22);
    const steps: Step[] = [
      randomStep(rng, 500, 100, 1_000),
      // too sparse for 500 + n groups: 1 .. 2^30
      { keys: [1, 2 ** 30, 100, 5], sel: [0, 1, 2, 3] },
      randomStep(rng, 500, 100, 1_000),
      { keys: [100, 101, 102], sel: [0, 1, 2], nulls: [1] },
      randomStep(rng, 500, 100, 1_000),
    ];
    if (wide) steps.push({ keys: [2 ** 40, 100, -(2 ** 40)], sel: [0, 1, 2] }, randomStep(rng, 500, 100, 1_000));
    // keys inserted by the fallbacks (2^30, null, 2^40) must not confuse later index answers
    steps.push({ keys: [1, 5, 100, 101, 102, 1_099], sel: [5, 4, 3, 2, 1, 0] });
    const taken = check(wide, steps);
    assert.equal(taken, steps.length - (wide ? 2 : 1), 'the sparse (and wide) partials fell back');
  }
});

test('dense keys: the map stays within its bound (sparse keys of a large table)', () => {
  const spec: KeySpec[] = [{ kind: 'i32', perPosition: false }];
  const table = new GroupTable(spec, 16);
  const index = new DenseKeyIndex(false);
  // 1,000 keys spread over 10^7: more than 4 entries per group and more than 64 K in all
  const keys = Int32Array.from({ length: 1_000 }, (_, i) => i * 10_000);
  const sel = Int32Array.from({ length: 1_000 }, (_, i) => i);
  assert.equal(index.insert(table, { values: keys, valid: null, map: null }, sel, 1_000, new Int32Array(1_000)), false);
  assert.equal(table.size, 0, 'a refused partial changes nothing');
  assert.ok(index.byteSize() < 64 * 1024, `bytes held ${index.byteSize()}`);
  // dense keys of a 100 K-group table may span 400 K
  const many = Int32Array.from({ length: 100_000 }, (_, i) => 4 * i);
  const all = Int32Array.from({ length: 100_000 }, (_, i) => i);
  assert.equal(index.insert(table, { values: many, valid: null, map: null }, all, 100_000, new Int32Array(100_000)), true);
  assert.ok(index.byteSize() <= 4 * 400_000 + 3 * 4 * 131_072, `bytes held ${index.byteSize()}`);
});

test('dense keys: int64 at the int32 boundary — only values that fit take the index, and never share a group', () => {
  // 2^31 and -2^31 have the same low word; so have -2^31 - 1 and 2^31 - 1
  assert.equal(check(true, [
    { keys: [2 ** 31, 2 ** 31 + 1], sel: [0, 1] },
    { keys: [-(2 ** 31), -(2 ** 31) + 1], sel: [0, 1] },
  ]), 1);
  assert.equal(check(true, [
    { keys: [-(2 ** 31) - 1], sel: [0] },
    { keys: [2 ** 31 - 1, 2 ** 31 - 2], sel: [0, 1] },
  ]), 1);
  // int32 keys at both ends of the range, in two indexes' worth of partials
  assert.equal(check(false, [
    { keys: [2 ** 31 - 1, 2 ** 31 - 5], sel: [1, 0] },
    { keys: [2 ** 31 - 3, 2 ** 31 - 1], sel: [0, 1] },
  ]), 2);
  assert.equal(check(false, [
    { keys: [-(2 ** 31), -(2 ** 31) + 9], sel: [0, 1] },
    { keys: [-(2 ** 31) + 4, -(2 ** 31)], sel: [0, 1] },
  ]), 2);
});

test('dense keys: partials of keys already held, of new keys only, and a null among new keys', () => {
  for (const wide of [false, true]) {
    const steps: Step[] = [
      { keys: [10, 11, 12, 13], sel: [3, 1, 0, 2] },
      { keys: [13, 12, 11, 10], sel: [0, 1, 2, 3] },
      { keys: [20, 21, 20, 22], sel: [2, 1, 0, 3] },
      { keys: [30, 31, 32], sel: [0, 1, 2], nulls: [1] },
      { keys: [31, 40, 41], sel: [2, 1, 0] },
      { keys: [40, 31, 50], sel: [0, 1, 2], nulls: [1] },
    ];
    assert.equal(check(wide, steps), steps.length);
    // a validity array whose only null is not selected, into a fresh index (every group new)
    assert.equal(check(wide, [{ keys: [5, 6, 7, 8], sel: [3, 0, 2], nulls: [1] }, { keys: [7, 9], sel: [1, 0] }]), 2);
  }
});

test('dense keys: map bytes stay within the bound after every partial', () => {
  const spec: KeySpec[] = [{ kind: 'i32', perPosition: false }];
  const table = new GroupTable(spec, 16);
  const index = new DenseKeyIndex(false);
  const rng = mulberry32(5);
  for (let s = 0; s < 60; s++) {
    // ids rising through a 2 M range, a few thousand per partial, many repeated
    const step = randomStep(rng, 4_000, 30_000 * s, 200_000);
    const input = inputOf(false, step);
    const sel = Int32Array.from(step.sel);
    const out = new Int32Array(sel.length);
    const before = table.size;
    if (!index.insert(table, input, sel, sel.length, out)) table.insert([input], sel, sel.length, out);
    const bound = 4 * Math.max(1 << 16, 4 * (before + sel.length));
    assert.ok(index.byteSize() <= bound, `partial ${s}: ${index.byteSize()} bytes > ${bound}`);
  }
});
