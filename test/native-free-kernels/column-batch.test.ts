import { test } from 'node:test';
import assert from 'node:assert/strict';
import { makeSchema, valueAt, type Batch, type StringColumn } from '../../engine/schema.js';
import { deserializeRows, serializeRows } from '../../native-free-kernels/column-batch.js';
import { mulberry32, randomBatch, stringColumnOf } from '../helpers/random.js';

const schema = makeSchema([
  { name: 'b', type: 'bool' }, { name: 'i', type: 'int32' }, { name: 'l', type: 'int64' },
  { name: 'f', type: 'float64' }, { name: 's', type: 'string' }, { name: 't', type: 'timestamp' },
]);

/** each row's note */
function notesOf(c: StringColumn | null): string[] | null {
  return c === null ? null : Array.from(c.codes, (code) => c.dict[code]!);
}

function rowsOf(b: Batch): unknown[][] {
  return Array.from({ length: b.length }, (_, r) => b.columns.map((c) => {
    const v = valueAt(c, r);
    return typeof v === 'number' && Number.isNaN(v) ? 'NaN' : v;
  }));
}

test('every row, or a subset, round-trips with notes; strings keep only the entries they use', () => {
  for (const nullRate of [0, 0.3]) {
    const batch = randomBatch(schema, 500, mulberry32(11), { nullRate });
    const all = deserializeRows(serializeRows(batch, null, 0), schema);
    assert.deepEqual(rowsOf(all.batch), rowsOf(batch));
    assert.equal(all.notes, null);
    const pick = Int32Array.from([3, 3, 499, 0, 250]);
    const some = deserializeRows(serializeRows(batch, pick, 4, stringColumnOf(['a', 'b', 'c', 'd'])), schema);
    assert.deepEqual(rowsOf(some.batch), [3, 3, 499, 0].map((r) => rowsOf(batch)[r]));
    assert.deepEqual(notesOf(some.notes), ['a', 'b', 'c', 'd']);
    // into a shared block after other bytes (a worker's outbox), read back in place
    const shared = new SharedArrayBuffer(1 << 16);
    const inBlock = serializeRows(batch, null, 0, undefined, (size) => new Uint8Array(shared, 24, size));
    assert.equal(inBlock.buffer, shared);
    assert.deepEqual(rowsOf(deserializeRows(inBlock, schema).batch), rowsOf(batch));
    const s = some.batch.columns[4]!;
    if (s.type === 'string') assert.ok(s.dict.length <= 4);
  }
});

test('repeated notes (a dictionary column) are written once each, and every row gets its own back', () => {
  const n = 10_000;
  const batch = randomBatch(schema, n, mulberry32(5));
  const long = (k: number): string => `window ${k} was already emitted: watermark ${'x'.repeat(90)}`;
  const notes = Array.from({ length: n }, (_, i) => long(i % 3 === 0 ? 0 : 1));
  const withNotes = serializeRows(batch, null, 0, stringColumnOf(notes));
  const without = serializeRows(batch, null, 0);
  // a row index per row plus the two distinct notes, not 10 000 × ~120 bytes
  assert.ok(withNotes.byteLength - without.byteLength <= 4 * n + 2 * (long(1).length + 8) + 64, `${withNotes.byteLength - without.byteLength} bytes of notes`);
  const back = deserializeRows(withNotes, schema);
  assert.deepEqual(notesOf(back.notes), notes);
  assert.deepEqual(rowsOf(back.batch), rowsOf(batch));
});

test('a zero-row batch, and a schema that does not match, are handled', () => {
  const batch = randomBatch(schema, 0, mulberry32(1));
  assert.equal(deserializeRows(serializeRows(batch, null, 0), schema).batch.length, 0);
  const other = makeSchema([{ name: 'x', type: 'int32' }]);
  assert.throws(() => deserializeRows(serializeRows(randomBatch(schema, 3, mulberry32(2)), null, 0), other), /column count/);
  assert.throws(() => deserializeRows(new Uint8Array(16), schema), /bad magic/);
});
