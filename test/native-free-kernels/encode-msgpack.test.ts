import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Unpackr, unpack } from 'msgpackr';
import type { Batch } from '../../engine/schema.js';
import { schemaFromRecord, valueAt } from '../../engine/schema.js';
import { decodeMsgpack } from '../../native-free-kernels/decode-msgpack.js';
import { encodeMsgpackColumns, encodeMsgpackRows } from '../../native-free-kernels/encode-msgpack.js';
import { mulberry32, randomBatch } from '../helpers/random.js';

type Value = boolean | number | string | null;

function values(batch: Batch): Value[][] {
  return batch.columns.map((c) => Array.from({ length: batch.length }, (_, i) => valueAt(c, i)));
}

const ALL = schemaFromRecord({ b: 'bool', i: 'int32', l: 'int64', f: 'float64', s: 'string', t: 'timestamp' });
const L = schemaFromRecord({ l: 'int64' });

function int64Batch(vals: bigint[]): Batch {
  const words = new Int32Array(2 * vals.length);
  vals.forEach((v, i) => {
    words[2 * i] = Number(BigInt.asIntN(32, v));
    words[2 * i + 1] = Number(BigInt.asIntN(32, v >> 32n));
  });
  return { schema: L, length: vals.length, columns: [{ type: 'int64', words, valid: null }] };
}

describe('encodeMsgpackRows / encodeMsgpackColumns', () => {
  test('plain MessagePack: any decoder reads maps with the column names, nulls as nil', () => {
    const batch = randomBatch(ALL, 20, mulberry32(61), { nullRate: 0.3 });
    const rows: unknown = unpack(encodeMsgpackRows(batch));
    assert.ok(Array.isArray(rows) && rows.length === 20);
    for (const row of rows) assert.deepEqual(Object.keys(row as object), ['b', 'i', 'l', 'f', 's', 't']);
    const cols: unknown = unpack(encodeMsgpackColumns(batch));
    assert.deepEqual(Object.keys(cols as object), ['b', 'i', 'l', 'f', 's', 't']);
    const s = (cols as Record<string, unknown[]>)['s']!;
    assert.deepEqual(s, values(batch)[4]);
  });

  test('int64 within ±2^53 as numbers, beyond as 64-bit integers, exactly', () => {
    const vals = [0n, -1n, 2n ** 53n - 1n, 2n ** 53n, -(2n ** 53n), 2n ** 53n + 1n, -(2n ** 53n) - 1n, 2n ** 63n - 1n, -(2n ** 63n)];
    const batch = int64Batch(vals);
    const raw: unknown = new Unpackr({ useRecords: false, int64AsType: 'bigint' }).unpack(encodeMsgpackColumns(batch));
    const kinds = (raw as { l: unknown[] }).l.map((v) => typeof v);
    assert.deepEqual(kinds, ['number', 'number', 'number', 'bigint', 'number', 'bigint', 'bigint', 'bigint', 'bigint']);
    for (const encode of [encodeMsgpackRows, encodeMsgpackColumns]) {
      assert.deepEqual(values(decodeMsgpack(encode(batch), L)), values(batch));
    }
  });

  for (const [name, encode] of [['rows', encodeMsgpackRows], ['columns', encodeMsgpackColumns]] as const) {
    test(`${name}: round trip of random batches (NaN, ±Infinity, nulls, non-ASCII)`, () => {
      for (const [rows, nullRate] of [[0, 0.1], [1, 0], [3, 1], [1500, 0.1]] as const) {
        const batch = randomBatch(ALL, rows, mulberry32(rows + 62), { nullRate });
        assert.deepEqual(values(decodeMsgpack(encode(batch), ALL)), values(batch), `${rows} rows`);
      }
    });
  }
});
