import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Packr } from 'msgpackr';
import { SluiceError } from '../../engine/errors.js';
import type { Batch } from '../../engine/schema.js';
import { schemaFromRecord, valueAt } from '../../engine/schema.js';
import { decodeMsgpack, firstInvalidUtf8String } from '../../native-free-kernels/decode-msgpack.js';
import { encodeMsgpackColumns, encodeMsgpackRows } from '../../native-free-kernels/encode-msgpack.js';
import { mulberry32, randomBatch } from '../helpers/random.js';
import { expectError } from '../helpers/errors.js';

type Value = boolean | number | string | null;

function values(batch: Batch): Value[][] {
  return batch.columns.map((c) => Array.from({ length: batch.length }, (_, i) => valueAt(c, i)));
}


const packr = new Packr({ useRecords: false });
const ALL = schemaFromRecord({ b: 'bool', i: 'int32', l: 'int64', f: 'float64', s: 'string', t: 'timestamp' });
const decode = (doc: unknown, opts?: { eventTime?: number; maxRows?: number }) => decodeMsgpack(packr.pack(doc), ALL, opts);

describe('decodeMsgpack: row maps', () => {
  test('values of every type; absent keys and nil are nulls', () => {
    const d = decode([
      { b: true, i: -7, l: 2n ** 63n - 1n, f: 0.25, s: 'héllo', t: new Date(Date.UTC(2024, 4, 1)) },
      { l: -(2n ** 63n), t: '2024-05-01T12:00:00.5Z', s: '' },
      { b: null, i: null, l: 42, f: NaN, s: null, t: 1714564800000 },
      {},
    ]);
    assert.deepEqual(values(d), [
      [true, null, null, null], [-7, null, null, null], ['9223372036854775807', '-9223372036854775808', 42, null],
      [0.25, null, NaN, null], ['héllo', '', null, null], [Date.UTC(2024, 4, 1), Date.UTC(2024, 4, 1, 12, 0, 0, 500), 1714564800000, null],
    ]);
  });

  test('int64 of every MessagePack integer width, ±2^53 exactly', () => {
    const ints = [0, 127, -32, 255, -128, 65535, -32768, 4294967295, -2147483648, 2n ** 53n, -(2n ** 53n), 2n ** 53n + 1n, 2n ** 63n - 1n];
    const d = decode(ints.map((l) => ({ l })));
    assert.deepEqual(values(d)[2], ints.map((v) => (typeof v === 'bigint' && (v > 2n ** 53n - 1n || v < -(2n ** 53n) + 1n) ? v.toString() : Number(v))));
  });

  test('int64 beyond the int64 range, and floats beyond 2^53, are type mismatches', () => {
    expectError(() => decode([{ l: 1 }, { l: 2n ** 64n - 1n }]), 'SLUICE_BATCH_TYPE_MISMATCH',
      /column 'l' row 1: expected int64, got integer 18446744073709551615 outside the int64 range/);
    expectError(() => decode([{ l: 1e16 }]), 'SLUICE_BATCH_TYPE_MISMATCH', /beyond ±2\^53 as a float/);
    expectError(() => decode([{ l: 0.5 }]), 'SLUICE_BATCH_TYPE_MISMATCH', /expected int64, got number 0.5/);
    expectError(() => decode([{ i: 2n ** 60n }]), 'SLUICE_BATCH_TYPE_MISMATCH', /expected int32/);
  });

  test('float32 values widen exactly; BigInt in a float64 column converts', () => {
    const f32 = new Packr({ useRecords: false, useFloat32: 1 });
    const d = decodeMsgpack(f32.pack([{ f: 1.5 }, { f: 0.1 }]), ALL);
    assert.deepEqual(values(d)[3], [1.5, Math.fround(0.1)]);
    assert.deepEqual(values(decode([{ f: 2n ** 60n }]))[3], [2 ** 60]);
  });

  test('value type errors name the column and row', () => {
    expectError(() => decode([{ b: true }, { b: 1 }]), 'SLUICE_BATCH_TYPE_MISMATCH', /column 'b' row 1: expected bool/);
    expectError(() => decode([{ s: 5 }]), 'SLUICE_BATCH_TYPE_MISMATCH', /column 's' row 0: expected string, got number 5/);
    expectError(() => decode([{ s: new Uint8Array([1]) }]), 'SLUICE_BATCH_TYPE_MISMATCH', /got binary/);
    expectError(() => decode([{ f: 'abc' }]), 'SLUICE_BATCH_TYPE_MISMATCH', /column 'f' row 0: expected float64, got string "abc"/);
    expectError(() => decode([{ t: 'May 1 2024' }]), 'SLUICE_BATCH_BAD_TIMESTAMP', /column 't' row 0/);
    expectError(() => decode([{ t: 2n ** 60n }]), 'SLUICE_BATCH_BAD_TIMESTAMP', /got integer/);
    expectError(() => decode([{ t: new Date(NaN) }]), 'SLUICE_BATCH_BAD_TIMESTAMP');
  });

  test('structure errors: unknown keys, non-map rows, scalars, trailing bytes', () => {
    expectError(() => decode([{ i: 1 }, { i: 2, price: 3 }]), 'SLUICE_BATCH_UNKNOWN_COLUMN', /row 1: key 'price'/);
    expectError(() => decode([JSON.parse('{"__proto__":1}')]), 'SLUICE_BATCH_UNKNOWN_COLUMN', /__proto_/);
    expectError(() => decode([{ i: 1 }, [1, 2]]), 'SLUICE_BATCH_MALFORMED', /row 1: expected a map, got array/);
    expectError(() => decode([null]), 'SLUICE_BATCH_MALFORMED', /row 0: expected a map, got null/);
    expectError(() => decode('rows'), 'SLUICE_BATCH_MALFORMED', /expected an array of row maps or a map of column arrays/);
    const trailing = new Uint8Array([...packr.pack([{ i: 1 }]), 0xc0]);
    expectError(() => decodeMsgpack(trailing, ALL), 'SLUICE_BATCH_MALFORMED', /end of buffer not reached/);
    expectError(() => decodeMsgpack(Uint8Array.from([0x91, 0xc1]), ALL), 'SLUICE_BATCH_MALFORMED');
    expectError(() => decodeMsgpack(Uint8Array.from([0x91, 0xd4, 0x05, 0x00]), ALL), 'SLUICE_BATCH_MALFORMED', /extension/i);
  });

  test('event-time nulls and the row limit', () => {
    expectError(() => decode([{ t: 1 }, { i: 1 }], { eventTime: 5 }), 'SLUICE_BATCH_BAD_TIMESTAMP', /column 't' row 1: null in the event-time column/);
    expectError(() => decode([{}, {}, {}], { maxRows: 2 }), 'SLUICE_BATCH_TOO_MANY_ROWS');
    expectError(() => decode({ b: [1, 1, 1].map(() => true), i: [1, 2, 3], l: [1, 2, 3], f: [1, 2, 3], s: ['a', 'b', 'c'], t: [1, 2, 3] },
      { maxRows: 2 }), 'SLUICE_BATCH_TOO_MANY_ROWS');
  });
});

describe('decodeMsgpack: column map', () => {
  const cols = { b: [true, null], i: [1, 2], l: [3n ** 39n, -1], f: [Infinity, -Infinity], s: ['x', 'ÿ'], t: [0, '2024-05-01'] };

  test('a map of column arrays', () => {
    assert.deepEqual(values(decode(cols)), [[true, null], [1, 2], [(3n ** 39n).toString(), -1], [Infinity, -Infinity], ['x', 'ÿ'],
      [0, Date.UTC(2024, 4, 1)]]);
    const empty = { b: [], i: [], l: [], f: [], s: [], t: [] };
    assert.equal(decode(empty).length, 0);
  });

  test('arrays of unequal length, non-array columns, missing and unknown columns', () => {
    expectError(() => decode({ ...cols, i: [1, 2, 3] }), 'SLUICE_BATCH_MALFORMED', /column 'i' has 3 values but column 'b' has 2/);
    expectError(() => decode({ ...cols, s: 'x' }), 'SLUICE_BATCH_MALFORMED', /column 's' must be an array, got string "x"/);
    const { f: _dropped, ...missing } = cols;
    void _dropped;
    expectError(() => decode(missing), 'SLUICE_BATCH_MISSING_COLUMN', /lacks column 'f'/);
    expectError(() => decode({ ...cols, extra: [1, 2] }), 'SLUICE_BATCH_UNKNOWN_COLUMN', /'extra'/);
    expectError(() => decode({ ...cols, l: [1, 'x'] }), 'SLUICE_BATCH_TYPE_MISMATCH', /column 'l' row 1/);
  });
});

describe('decodeMsgpack: bytes', () => {
  const sample = randomBatch(ALL, 5, mulberry32(31), { nullRate: 0.2 });

  for (const [name, encode] of [['rows', encodeMsgpackRows], ['columns', encodeMsgpackColumns]] as const) {
    test(`${name}: every truncation is rejected with a BATCH_* code`, () => {
      const full = encode(sample);
      for (let len = 0; len < full.length; len++) {
        let caught: unknown = null;
        try {
          decodeMsgpack(full.slice(0, len), ALL);
        } catch (err) {
          caught = err;
        }
        assert.ok(caught instanceof SluiceError && caught.code.startsWith('SLUICE_BATCH_'), `prefix ${len}: ${String(caught)}`);
      }
    });

    test(`${name}: round trip, including from a SharedArrayBuffer slab`, () => {
      for (const rows of [0, 1, 400]) {
        const batch = randomBatch(ALL, rows, mulberry32(rows + 40), { nullRate: 0.1 });
        const bytes = encode(batch);
        assert.deepEqual(values(decodeMsgpack(bytes, ALL)), values(batch));
        const slab = new Uint8Array(new SharedArrayBuffer(bytes.length + 16), 16, bytes.length);
        slab.set(bytes);
        assert.deepEqual(values(decodeMsgpack(slab, ALL)), values(batch));
      }
    });
  }

  test('huge declared array / map / str / bin lengths are rejected quickly', () => {
    const cases = [
      [0xdd, 0xff, 0xff, 0xff, 0xff], [0xdf, 0xff, 0xff, 0xff, 0xff], [0x91, 0xdd, 0x7f, 0xff, 0xff, 0xff, 0xc0, 0xc0],
      [0x91, 0x81, 0xa1, 0x73, 0xdb, 0xff, 0xff, 0xff, 0xff, 0x61], [0x91, 0x81, 0xa1, 0x73, 0xc6, 0xff, 0xff, 0xff, 0xff, 0x61],
      [0x81, 0xa1, 0x73, 0xdd, 0x0f, 0xff, 0xff, 0xff, 0xc0],
    ];
    for (const bytes of cases) {
      const t0 = performance.now();
      expectError(() => decodeMsgpack(Uint8Array.from(bytes), ALL), 'SLUICE_BATCH_MALFORMED');
      assert.ok(performance.now() - t0 < 50, `${bytes.join(',')} took ${performance.now() - t0} ms`);
    }
  });

  test('absurd nesting (a stack overflow inside msgpackr) is BATCH_MALFORMED', () => {
    const deep = new Uint8Array(200001).fill(0x91);
    deep[200000] = 0xc0;
    expectError(() => decodeMsgpack(deep, ALL), 'SLUICE_BATCH_MALFORMED', /MessagePack batch/);
  });

  test('int64 within ±2^53 arrives as a number, not a BigInt (int64AsType auto)', () => {
    // {"s": int64 5}: the message says which JS type msgpackr produced
    const bytes = Uint8Array.from([0x91, 0x81, 0xa1, 0x73, 0xd3, 0, 0, 0, 0, 0, 0, 0, 5]);
    expectError(() => decodeMsgpack(bytes, ALL), 'SLUICE_BATCH_TYPE_MISMATCH', /expected string, got number 5$/);
    const big = Uint8Array.from([0x91, 0x81, 0xa1, 0x73, 0xd3, 0x40, 0, 0, 0, 0, 0, 0, 5]);
    expectError(() => decodeMsgpack(big, ALL), 'SLUICE_BATCH_TYPE_MISMATCH', /expected string, got integer 4611686018427387909$/);
  });

  test('invalid UTF-8 in a string is rejected; a genuine U+FFFD is kept', () => {
    // [{"s": <str8 "a", 0xff, "b">}]
    const bad = Uint8Array.from([0x91, 0x81, 0xa1, 0x73, 0xa3, 0x61, 0xff, 0x62]);
    expectError(() => decodeMsgpack(bad, ALL), 'SLUICE_BATCH_MALFORMED', /invalid UTF-8 in the string at byte 4/);
    const long = packr.pack([{ s: 'x'.repeat(100) }]);
    long[long.length - 50] = 0xc3; // a lead byte followed by 'x'
    expectError(() => decodeMsgpack(long, ALL), 'SLUICE_BATCH_MALFORMED', /invalid UTF-8/);
    const genuine = packr.pack([{ s: 'a\uFFFDb' }]);
    assert.deepEqual(values(decodeMsgpack(genuine, ALL))[4], ['a\uFFFDb']);
  });

  test('firstInvalidUtf8String walks every item kind', () => {
    const doc = [{ n: null, t: true, u8: 200, u16: 60000, u32: 4e9, u64: 2n ** 60n, i8: -100, i16: -30000, i32: -2e9, i64: -(2n ** 60n),
      f: 1.5, bin: new Uint8Array(300), date: new Date(1), long: 'é'.repeat(200), arr: new Array(20).fill(1) }];
    const bytes = new Packr({ useRecords: false, useFloat32: 1 }).pack(doc);
    assert.equal(firstInvalidUtf8String(bytes), -1);
    const withBad = new Uint8Array([...bytes.subarray(0, bytes.length), 0xa2, 0xc3, 0x28]);
    assert.equal(firstInvalidUtf8String(withBad), bytes.length);
  });
});
