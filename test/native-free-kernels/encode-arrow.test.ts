import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as A from 'apache-arrow';
import type { Batch } from '../../engine/schema.js';
import { int64ToString, schemaFromRecord, valueAt } from '../../engine/schema.js';
import { decodeArrow } from '../../native-free-kernels/decode-arrow.js';
import { encodeArrow, encodeArrowDictionary } from '../../native-free-kernels/encode-arrow.js';
import { mulberry32, randomBatch } from '../helpers/random.js';

type Value = boolean | number | string | null;

function values(batch: Batch): Value[][] {
  return batch.columns.map((c) => Array.from({ length: batch.length }, (_, i) => valueAt(c, i)));
}

/** What apache-arrow reads back, in valueAt's terms (int64 beyond 2^53 as decimal text). */
function arrowValues(table: A.Table, batch: Batch): Value[][] {
  return batch.schema.fields.map((f) => {
    const child = table.getChild(f.name)!;
    return Array.from({ length: table.numRows }, (_, i): Value => {
      const v: unknown = child.get(i);
      if (v === null) return null;
      if (typeof v === 'bigint') return Number.isSafeInteger(Number(v)) ? Number(v) : v.toString();
      if (typeof v === 'boolean' || typeof v === 'number' || typeof v === 'string') return v;
      throw new Error(`unexpected value ${String(v)} in ${f.name}`);
    });
  });
}

const ALL = schemaFromRecord({ b: 'bool', i: 'int32', l: 'int64', f: 'float64', s: 'string', t: 'timestamp' });

describe('encodeArrow / encodeArrowDictionary', () => {
  for (const [name, encode, stringType] of [['utf8', encodeArrow, 'Utf8'], ['dictionary', encodeArrowDictionary, 'Dictionary<Int32, Utf8>']] as const) {
    test(`${name}: apache-arrow reads the stream with the expected types and values`, () => {
      const batch = randomBatch(ALL, 300, mulberry32(51), { nullRate: 0.1 });
      const table = A.tableFromIPC(encode(batch));
      assert.deepEqual(table.schema.fields.map((f) => `${f.name}:${String(f.type)}`),
        ['b:Bool', 'i:Int32', 'l:Int64', 'f:Float64', `s:${stringType}`, 't:Timestamp<MILLISECOND>']);
      assert.equal(table.batches.length, 1);
      // apache-arrow decodes strings with a default TextDecoder, which drops a leading BOM (the
      // bytes keep it: decodeArrow's round trip below sees it)
      const want = values(batch).map((col) => col.map((v) => (typeof v === 'string' ? v.replace(/^\uFEFF/, '') : v)));
      assert.deepEqual(arrowValues(table, batch), want);
    });

    test(`${name}: round trip through decodeArrow for 0, 1 and many rows, all null and no null`, () => {
      for (const [rows, nullRate] of [[0, 0.1], [1, 0], [1, 1], [2000, 0.05], [64, 1]] as const) {
        const batch = randomBatch(ALL, rows, mulberry32(rows + 52), { nullRate });
        assert.deepEqual(values(decodeArrow(encode(batch), ALL)), values(batch), `${rows} rows, null rate ${nullRate}`);
      }
    });
  }

  test('int64 words that are not 8-byte aligned, and fractional timestamps (floored)', () => {
    const schema = schemaFromRecord({ l: 'int64', t: 'timestamp' });
    const buf = new Int32Array(7);
    const words = buf.subarray(1, 7); // byteOffset 4
    words.set([5, 0, -1, -1, 0, 0x7fffffff]);
    const batch: Batch = {
      schema, length: 3, columns: [
        { type: 'int64', words, valid: null },
        { type: 'timestamp', values: Float64Array.from([1.9, -0.5, 1714564800000.999]), valid: null },
      ],
    };
    const d = decodeArrow(encodeArrow(batch), schema);
    assert.deepEqual(values(d), [[5, -1, int64ToString(0, 0x7fffffff)], [1, -1, 1714564800000]]);
  });

  test('a decoded batch whose columns are views over a SharedArrayBuffer re-encodes', () => {
    const batch = randomBatch(ALL, 100, mulberry32(53), { nullRate: 0.1 });
    const bytes = encodeArrow(batch);
    const slab = new Uint8Array(new SharedArrayBuffer(bytes.length + 8), 8, bytes.length);
    slab.set(bytes);
    const decoded = decodeArrow(slab, ALL);
    const l = decoded.columns[2]!;
    assert.ok(l.type === 'int64' && l.words.buffer instanceof SharedArrayBuffer);
    for (const encode of [encodeArrow, encodeArrowDictionary]) {
      assert.deepEqual(values(decodeArrow(encode(decoded), ALL)), values(batch));
    }
  });

  test('string columns keep empty strings, non-ASCII text and a leading BOM', () => {
    const schema = schemaFromRecord({ s: 'string' });
    const dict = ['', '\uFEFFbom', 'ünï', '🎉'];
    const batch: Batch = { schema, length: 5, columns: [{ type: 'string', codes: Int32Array.from([0, 1, 2, 3, 0]), dict, valid: null }] };
    for (const encode of [encodeArrow, encodeArrowDictionary]) {
      assert.deepEqual(values(decodeArrow(encode(batch), schema)), [['', '\uFEFFbom', 'ünï', '🎉', '']]);
    }
  });
});
