import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Batch } from '../../engine/schema.js';
import { schemaFromRecord, valueAt } from '../../engine/schema.js';
import { decodeJson, decodeNdjson } from '../../native-free-kernels/decode-json.js';
import { encodeJson, encodeNdjson } from '../../native-free-kernels/encode-json.js';
import { mulberry32, randomBatch } from '../helpers/random.js';

type Value = boolean | number | string | null;

function values(batch: Batch): Value[][] {
  return batch.columns.map((c) => Array.from({ length: batch.length }, (_, i) => valueAt(c, i)));
}

const ALL = schemaFromRecord({ b: 'bool', i: 'int32', l: 'int64', f: 'float64', s: 'string', t: 'timestamp' });
const text = (bytes: Uint8Array): string => new TextDecoder().decode(bytes);

describe('encodeNdjson / encodeJson', () => {
  const schema = schemaFromRecord({ l: 'int64', f: 'float64', s: 'string', b: 'bool' });
  const batch: Batch = {
    schema, length: 3, columns: [
      { type: 'int64', words: Int32Array.from([1, 0x200000, -7, -1, 0, 0]), valid: null },
      { type: 'float64', values: Float64Array.from([NaN, Infinity, 0.5]), valid: Uint8Array.from([1, 1, 0]) },
      { type: 'string', codes: Int32Array.from([0, 1, 0]), dict: ['line\nbreak "q"', 'ü'], valid: null },
      { type: 'bool', values: Uint8Array.from([1, 0, 0]), valid: Uint8Array.from([1, 1, 0]) },
    ],
  };

  test('the exact text: int64 beyond 2^53 as strings, NaN/Infinity and nulls as null, escaped strings', () => {
    assert.equal(text(encodeNdjson(batch)),
      '{"l":"9007199254740993","f":null,"s":"line\\nbreak \\"q\\"","b":true}\n' +
      '{"l":-7,"f":null,"s":"ü","b":false}\n' +
      '{"l":0,"f":null,"s":"line\\nbreak \\"q\\"","b":null}\n');
    const parsed: unknown = JSON.parse(text(encodeJson(batch)));
    assert.deepEqual(parsed, [
      { l: '9007199254740993', f: null, s: 'line\nbreak "q"', b: true },
      { l: -7, f: null, s: 'ü', b: false },
      { l: 0, f: null, s: 'line\nbreak "q"', b: null },
    ]);
  });

  test('empty batches', () => {
    const empty = randomBatch(ALL, 0, mulberry32(1));
    assert.equal(text(encodeNdjson(empty)), '');
    assert.equal(text(encodeJson(empty)), '[]');
  });

  test('round trip of random batches through both decoders', () => {
    for (const [rows, nullRate] of [[1, 0], [5, 1], [2000, 0.1]] as const) {
      const batch = randomBatch(ALL, rows, mulberry32(rows + 71), { nullRate, nonFinite: false });
      const nd = encodeNdjson(batch);
      assert.equal(text(nd).split('\n').length, rows + 1, 'one line per row (newlines in strings are escaped)');
      assert.deepEqual(values(decodeNdjson(nd, ALL)), values(batch), `ndjson ${rows}`);
      assert.deepEqual(values(decodeJson(encodeJson(batch), ALL)), values(batch), `json ${rows}`);
    }
  });
});
