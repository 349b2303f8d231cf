import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { SluiceError } from '../../engine/errors.js';
import type { Batch } from '../../engine/schema.js';
import { schemaFromRecord, valueAt } from '../../engine/schema.js';
import { decodeJson, decodeNdjson } from '../../native-free-kernels/decode-json.js';
import { encodeJson, encodeNdjson } from '../../native-free-kernels/encode-json.js';
import { mulberry32, randomBatch } from '../helpers/random.js';
import { expectError } from '../helpers/errors.js';

type Value = boolean | number | string | null;

function values(batch: Batch): Value[][] {
  return batch.columns.map((c) => Array.from({ length: batch.length }, (_, i) => valueAt(c, i)));
}


const text = (s: string): Uint8Array => new TextEncoder().encode(s);
const ALL = schemaFromRecord({ b: 'bool', i: 'int32', l: 'int64', f: 'float64', s: 'string', t: 'timestamp' });
const ndjson = (s: string) => decodeNdjson(text(s), ALL);
const json = (s: string) => decodeJson(text(s), ALL);

describe('decodeNdjson', () => {
  test('rows, absent keys as nulls, blank lines, CRLF, a leading BOM', () => {
    const d = ndjson('\uFEFF{"b":true,"i":-5,"l":"9223372036854775807","f":1.5,"s":"café","t":"2024-05-01T12:00:00Z"}\r\n' +
      '\n   \n{"l":-12,"t":1714564800000,"s":""}\n{}\n');
    assert.equal(d.length, 3);
    assert.deepEqual(values(d), [
      [true, null, null], [-5, null, null], ['9223372036854775807', -12, null], [1.5, null, null], ['café', '', null],
      [1714564800000, 1714564800000, null],
    ]);
  });

  test('empty input and only blank lines are 0 rows', () => {
    assert.equal(ndjson('').length, 0);
    assert.equal(ndjson('\n\n  \r\n').length, 0);
  });

  test('a bad line in the middle names its 1-based line number', () => {
    const lines = ['{"i":1}', '', '{"i":2}', '{"i":3', '{"i":4}'].join('\n');
    expectError(() => ndjson(lines), 'SLUICE_BATCH_MALFORMED', /NDJSON line 4: invalid JSON/);
    expectError(() => ndjson('{"i":1}\n[1,2]\n'), 'SLUICE_BATCH_MALFORMED', /line 2: expected a JSON object, got array/);
    expectError(() => ndjson('{"i":1}\nnull\n'), 'SLUICE_BATCH_MALFORMED', /line 2: expected a JSON object, got null/);
    expectError(() => ndjson('{"i":1}\n\n{"i":"x"}\n'), 'SLUICE_BATCH_TYPE_MISMATCH', /column 'i' line 3: expected int32, got string "x"/);
    expectError(() => ndjson('{"i":1}\n{"price":2}\n'), 'SLUICE_BATCH_UNKNOWN_COLUMN', /line 2: key 'price'/);
  });

  test('invalid UTF-8 names the line', () => {
    const bytes = new Uint8Array([...text('{"s":"a"}\n{"s":"'), 0xc3, 0x28, ...text('"}\n')]);
    expectError(() => decodeNdjson(bytes, ALL), 'SLUICE_BATCH_MALFORMED', /line 2: invalid UTF-8/);
  });

  test('every truncation is rejected with a BATCH_* code or decodes to a prefix of the rows', () => {
    const batch = randomBatch(ALL, 6, mulberry32(21), { nullRate: 0.2, nonFinite: false });
    const full = encodeNdjson(batch);
    const want = values(batch);
    for (let len = 0; len < full.length; len++) {
      let d: Batch;
      try {
        d = decodeNdjson(full.subarray(0, len), ALL);
      } catch (err) {
        assert.ok(err instanceof SluiceError && err.code.startsWith('SLUICE_BATCH_'), `prefix ${len}: ${String(err)}`);
        continue;
      }
      assert.deepEqual(values(d), want.map((col) => col.slice(0, d.length)), `prefix ${len}`);
    }
  });

  test('event-time nulls (absent keys included) and the row limit', () => {
    expectError(() => decodeNdjson(text('{"t":1}\n{"t":null}\n'), ALL, { eventTime: 5 }), 'SLUICE_BATCH_BAD_TIMESTAMP',
      /column 't' line 2: null in the event-time column/);
    expectError(() => decodeNdjson(text('{"t":1}\n\n{"i":1}\n'), ALL, { eventTime: 5 }), 'SLUICE_BATCH_BAD_TIMESTAMP', /line 3/);
    assert.equal(decodeNdjson(text('{"t":1}\n{"t":2}\n'), ALL, { eventTime: 5 }).length, 2);
    expectError(() => decodeNdjson(text('{}\n{}\n{}\n'), ALL, { maxRows: 2 }), 'SLUICE_BATCH_TOO_MANY_ROWS');
  });
});

describe('decodeJson', () => {
  test('an array of row objects', () => {
    const d = json('[{"b":false,"l":"-9223372036854775808","f":-0.5e3},{"s":"日本","t":"2024-05-01T14:00:00.250+02:00"}]');
    assert.deepEqual(values(d), [[false, null], [null, null], ['-9223372036854775808', null], [-500, null], [null, '日本'],
      [null, Date.UTC(2024, 4, 1, 12, 0, 0, 250)]]);
    assert.equal(json('[]').length, 0);
  });

  test('structure errors', () => {
    expectError(() => json('{"i":1}'), 'SLUICE_BATCH_MALFORMED', /expected an array of row objects, got object/);
    expectError(() => json('[{"i":1},'), 'SLUICE_BATCH_MALFORMED', /invalid JSON/);
    expectError(() => json('[{"i":1}, 5]'), 'SLUICE_BATCH_MALFORMED', /row 1: expected an object, got number 5/);
    expectError(() => json(''), 'SLUICE_BATCH_MALFORMED', /invalid JSON/);
    expectError(() => decodeJson(Uint8Array.from([0x5b, 0xff, 0x5d]), ALL), 'SLUICE_BATCH_MALFORMED', /invalid UTF-8/);
  });

  test('every truncation is rejected with a BATCH_* code', () => {
    const full = encodeJson(randomBatch(ALL, 4, mulberry32(22), { nonFinite: false }));
    for (let len = 0; len < full.length; len++) {
      expectError(() => decodeJson(full.subarray(0, len), ALL), 'SLUICE_BATCH_MALFORMED');
    }
  });
});

describe('JSON value rules (shared by NDJSON and JSON arrays)', () => {
  const bad = (row: string, code: string, pattern: RegExp) => expectError(() => json(`[${row}]`), code, pattern);

  test('int64: safe numbers or exact decimal strings', () => {
    assert.deepEqual(values(json('[{"l":9007199254740991},{"l":-9007199254740991},{"l":"18014398509481985"},{"l":1e3}]'))[2],
      [9007199254740991, -9007199254740991, '18014398509481985', 1000]);
    bad('{"l":9007199254740993}', 'SLUICE_BATCH_TYPE_MISMATCH', /column 'l' row 0: expected int64, got number 9007199254740992 .*decimal string/);
    bad('{"l":1.5}', 'SLUICE_BATCH_TYPE_MISMATCH', /expected int64, got number 1.5/);
    bad('{"l":"9223372036854775808"}', 'SLUICE_BATCH_TYPE_MISMATCH', /outside the int64 range/);
    bad('{"l":"12abc"}', 'SLUICE_BATCH_TYPE_MISMATCH', /decimal digits/);
    bad('{"l":true}', 'SLUICE_BATCH_TYPE_MISMATCH', /got boolean true/);
  });

  test('int32: integers within range', () => {
    assert.deepEqual(values(json('[{"i":2147483647},{"i":-2147483648},{"i":-0}]'))[1], [2147483647, -2147483648, 0]);
    bad('{"i":2147483648}', 'SLUICE_BATCH_TYPE_MISMATCH', /expected int32, got number 2147483648 outside the int32 range/);
    bad('{"i":0.5}', 'SLUICE_BATCH_TYPE_MISMATCH', /expected int32, got number 0.5/);
    bad('{"i":"1"}', 'SLUICE_BATCH_TYPE_MISMATCH', /expected int32, got string "1"/);
  });

  test('float64: numbers (integers too); bool: true/false; string: strings', () => {
    assert.deepEqual(values(json('[{"f":3},{"f":1e308},{"f":-2.5e-300}]'))[3], [3, 1e308, -2.5e-300]);
    bad('{"f":"1.5"}', 'SLUICE_BATCH_TYPE_MISMATCH', /column 'f' row 0: expected float64, got string "1.5"/);
    bad('{"b":1}', 'SLUICE_BATCH_TYPE_MISMATCH', /expected bool \(true or false\), got number 1/);
    bad('{"b":"true"}', 'SLUICE_BATCH_TYPE_MISMATCH', /expected bool/);
    bad('{"s":5}', 'SLUICE_BATCH_TYPE_MISMATCH', /expected string, got number 5/);
    bad('{"s":{"x":1}}', 'SLUICE_BATCH_TYPE_MISMATCH', /expected string, got object/);
    bad('{"s":["x"]}', 'SLUICE_BATCH_TYPE_MISMATCH', /expected string, got array/);
  });

  test('timestamps: ms numbers or strict ISO-8601', () => {
    // fractions of a millisecond are floored, as for Arrow µs / ns and ISO text
    assert.deepEqual(values(json('[{"t":0},{"t":-1.5},{"t":"1970-01-01T00:00:01Z"},{"t":8.64e15},{"t":2.9}]'))[5], [0, -2, 1000, 8.64e15, 2]);
    for (const t of ['"May 1 2024"', '"2024-02-30T00:00:00Z"', '"1714564800000"', '1e16', '-8.7e15', 'true', '{}', '[1]']) {
      bad(`{"t":${t}}`, 'SLUICE_BATCH_BAD_TIMESTAMP', /column 't' row 0: expected a timestamp/);
    }
  });

  test('unknown keys and prototype-looking keys', () => {
    bad('{"i":1,"x":2}', 'SLUICE_BATCH_UNKNOWN_COLUMN', /row 0: key 'x' is not a column/);
    bad('{"__proto__":{"i":1}}', 'SLUICE_BATCH_UNKNOWN_COLUMN', /key '__proto__'/);
    bad('{"constructor":1}', 'SLUICE_BATCH_UNKNOWN_COLUMN', /key 'constructor'/);
  });
});

describe('round trips through the JSON encoders', () => {
  for (const rows of [0, 1, 300]) {
    test(`${rows} rows`, () => {
      const batch = randomBatch(ALL, rows, mulberry32(rows + 5), { nullRate: 0.15, nonFinite: false });
      assert.deepEqual(values(decodeNdjson(encodeNdjson(batch), ALL)), values(batch));
      assert.deepEqual(values(decodeJson(encodeJson(batch), ALL)), values(batch));
    });
  }
});
