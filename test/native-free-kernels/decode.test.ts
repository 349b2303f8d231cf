import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { schemaFromRecord, valueAt } from '../../engine/schema.js';
import type { BatchFormat } from '../../native-free-kernels/decode.js';
import {
  bigintToWords, decodeBatch, detectBinaryFormat, parseInt64Decimal, parseIsoTimestamp,
} from '../../native-free-kernels/decode.js';
import { encodeArrow } from '../../native-free-kernels/encode-arrow.js';
import { encodeNdjson, encodeJson } from '../../native-free-kernels/encode-json.js';
import { encodeMsgpackColumns, encodeMsgpackRows } from '../../native-free-kernels/encode-msgpack.js';
import { mulberry32, randomBatch } from '../helpers/random.js';
import { expectError } from '../helpers/errors.js';


describe('detectBinaryFormat', () => {
  test('Arrow IPC streams open with the continuation marker', () => {
    assert.equal(detectBinaryFormat(Uint8Array.from([0xff, 0xff, 0xff, 0xff, 0x10, 0, 0, 0])), 'arrow');
  });

  test('MessagePack arrays and maps of every header size', () => {
    for (const b of [0x80, 0x8f, 0x90, 0x9f, 0xdc, 0xdd, 0xde, 0xdf]) {
      assert.equal(detectBinaryFormat(Uint8Array.from([b, 0, 0, 0, 0])), 'msgpack', b.toString(16));
    }
  });

  test('anything else is BATCH_UNKNOWN_FORMAT', () => {
    const cases = [[], [0xff], [0xff, 0xff, 0xff], [0xff, 0xff, 0xff, 0xfe], [0x7b, 0x22], [0xa3, 0x61], [0x00], [0xc0], [0xdb]];
    for (const bytes of cases) expectError(() => detectBinaryFormat(Uint8Array.from(bytes)), 'SLUICE_BATCH_UNKNOWN_FORMAT');
    expectError(() => detectBinaryFormat(new TextEncoder().encode('{"a":1}')), 'SLUICE_BATCH_UNKNOWN_FORMAT', /0x7b226122/);
  });
});

describe('decodeBatch', () => {
  const schema = schemaFromRecord({ a: 'int64', s: 'string', t: 'timestamp' });
  const batch = randomBatch(schema, 20, mulberry32(4), { nullRate: 0.1 });
  const want = batch.columns.map((c) => Array.from({ length: 20 }, (_, i) => valueAt(c, i)));

  test('dispatches every format', () => {
    const cases: [BatchFormat, Uint8Array][] = [
      ['arrow', encodeArrow(batch)], ['msgpack', encodeMsgpackRows(batch)], ['msgpack', encodeMsgpackColumns(batch)],
      ['ndjson', encodeNdjson(batch)], ['json', encodeJson(batch)],
    ];
    for (const [format, bytes] of cases) {
      const d = decodeBatch(bytes, format, schema);
      assert.deepEqual(d.columns.map((c) => Array.from({ length: d.length }, (_, i) => valueAt(c, i))), want, format);
    }
  });

  test('the detected binary format decodes', () => {
    for (const bytes of [encodeArrow(batch), encodeMsgpackRows(batch)]) {
      assert.equal(decodeBatch(bytes, detectBinaryFormat(bytes), schema).length, 20);
    }
  });

  test('an unknown format name is BATCH_UNKNOWN_FORMAT', () => {
    expectError(() => decodeBatch(new Uint8Array(1), 'csv' as BatchFormat, schema), 'SLUICE_BATCH_UNKNOWN_FORMAT', /'csv'/);
  });
});

describe('parseIsoTimestamp', () => {
  test('RFC 3339 forms', () => {
    const cases: [string, number][] = [
      ['2024-05-01T12:00:00Z', Date.UTC(2024, 4, 1, 12)],
      ['2024-05-01t12:00:00z', Date.UTC(2024, 4, 1, 12)],
      ['2024-05-01 12:00:00Z', Date.UTC(2024, 4, 1, 12)],
      ['2024-05-01T14:00:00+02:00', Date.UTC(2024, 4, 1, 12)],
      ['2024-05-01T07:30:00-0430', Date.UTC(2024, 4, 1, 12)],
      ['2024-05-01T12:00:00.5Z', Date.UTC(2024, 4, 1, 12, 0, 0, 500)],
      ['2024-05-01T12:00:00.123456789Z', Date.UTC(2024, 4, 1, 12, 0, 0, 123)],
      ['2024-05-01T12:00:00,25Z', Date.UTC(2024, 4, 1, 12, 0, 0, 250)],
      ['2024-05-01T12:00Z', Date.UTC(2024, 4, 1, 12)],
      ['2024-05-01T12:00:00', Date.UTC(2024, 4, 1, 12)], // no zone: UTC, whatever the host's zone
      ['2024-05-01', Date.UTC(2024, 4, 1)],
      ['2024-02-29T00:00:00Z', Date.UTC(2024, 1, 29)],
      ['2000-02-29T00:00:00Z', Date.UTC(2000, 1, 29)],
      ['1969-12-31T23:59:59.999Z', -1],
      ['0001-01-01T00:00:00Z', -62135596800000],
      ['9999-12-31T23:59:59Z', 253402300799000],
      ['0050-06-01T00:00:00Z', -60576249600000], // years below 100 are not 19xx
    ];
    for (const [s, ms] of cases) assert.equal(parseIsoTimestamp(s), ms, s);
  });

  test('agrees with Date.parse on random zoned timestamps', () => {
    const rng = mulberry32(8);
    const pad = (v: number, n = 2) => String(v).padStart(n, '0');
    for (let k = 0; k < 2000; k++) {
      const ms = Math.floor((rng() - 0.3) * 6e12);
      const d = new Date(ms);
      const off = Math.floor(rng() * 48 - 24) * 30;
      const local = new Date(ms + off * 60000);
      const zone = off === 0 ? 'Z' : `${off < 0 ? '-' : '+'}${pad(Math.floor(Math.abs(off) / 60))}:${pad(Math.abs(off) % 60)}`;
      const s = `${pad(local.getUTCFullYear(), 4)}-${pad(local.getUTCMonth() + 1)}-${pad(local.getUTCDate())}T${pad(local.getUTCHours())}:` +
        `${pad(local.getUTCMinutes())}:${pad(local.getUTCSeconds())}.${pad(local.getUTCMilliseconds(), 3)}${zone}`;
      assert.equal(parseIsoTimestamp(s), d.getTime(), s);
      assert.equal(parseIsoTimestamp(s), Date.parse(s), s);
    }
  });

  test('rejects what Date.parse would accept loosely, and impossible dates', () => {
    for (const s of ['May 1 2024', '2024/05/01', '1714564800000', '2024-5-1', '2024-05-01T12', '2024-05-01T12:00:00 Z',
      '2024-13-01', '2024-02-30', '2023-02-29', '1900-02-29', '2024-05-01T24:00:00Z', '2024-05-01T12:60:00Z', '2024-05-01T12:00:60Z',
      '2024-05-01T12:00:00+24:00', '2024-05-01T12:00:00.Z', ' 2024-05-01', '2024-05-01T12:00:00Z ', '', 'Wed, 01 May 2024 12:00:00 GMT',
      '+002024-05-01T00:00:00Z', '2024-05-00']) {
      assert.ok(Number.isNaN(parseIsoTimestamp(s)), JSON.stringify(s));
    }
  });
});

describe('parseInt64Decimal / bigintToWords', () => {
  const wordsOf = (v: bigint): [number, number] => [Number(BigInt.asIntN(32, v)), Number(BigInt.asIntN(32, v >> 32n))];

  test('exact words for edge and random values', () => {
    const rng = mulberry32(12);
    const values = [0n, 1n, -1n, 2n ** 53n, 2n ** 53n + 1n, -(2n ** 53n) - 1n, 2n ** 63n - 1n, -(2n ** 63n), 4294967295n, -4294967296n, 4294967296n];
    for (let k = 0; k < 2000; k++) {
      values.push(BigInt.asIntN(64, (BigInt(Math.floor(rng() * 2 ** 32)) << 32n) | BigInt(Math.floor(rng() * 2 ** 32))));
    }
    const words = new Int32Array(2);
    for (const v of values) {
      assert.ok(parseInt64Decimal(v.toString(), words, 0), v.toString());
      assert.deepEqual([words[0], words[1]], wordsOf(v), v.toString());
      assert.ok(bigintToWords(v, words, 0));
      assert.deepEqual([words[0], words[1]], wordsOf(v), v.toString());
    }
    assert.ok(parseInt64Decimal('-0', words, 0));
    assert.deepEqual([words[0], words[1]], [0, 0]);
    assert.ok(parseInt64Decimal('000000000000000000000000042', words, 0));
    assert.deepEqual([words[0], words[1]], [42, 0]);
  });

  test('rejects text that is not an int64', () => {
    const words = new Int32Array(2);
    for (const s of ['', '-', '+1', '1.0', '1e3', ' 1', '1 ', '0x10', '9223372036854775808', '-9223372036854775809',
      '18446744073709551616', '99999999999999999999999999', '１２']) {
      assert.equal(parseInt64Decimal(s, words, 0), false, JSON.stringify(s));
    }
    assert.equal(bigintToWords(2n ** 63n, words, 0), false);
    assert.equal(bigintToWords(-(2n ** 63n) - 1n, words, 0), false);
  });
});

describe('test/helpers/random.ts', () => {
  const schema = schemaFromRecord({ b: 'bool', i: 'int32', l: 'int64', f: 'float64', s: 'string', t: 'timestamp' });
  const rows = (seed: number, opts?: { nullRate?: number; nonFinite?: boolean }) => {
    const b = randomBatch(schema, 3000, mulberry32(seed), opts);
    return b.columns.map((c) => Array.from({ length: b.length }, (_, i) => valueAt(c, i)));
  };

  test('the same seed gives the same batch, another seed another one', () => {
    assert.deepEqual(rows(1), rows(1));
    assert.notDeepEqual(rows(1), rows(2));
  });

  test('covers the values that break code', () => {
    const [, ints, longs, floats, strs, times] = rows(3);
    assert.ok(ints!.includes(-2147483648) && ints!.includes(2147483647));
    assert.ok(longs!.includes('-9223372036854775808') && longs!.includes('9223372036854775807'));
    assert.ok(longs!.some((v) => typeof v === 'string' && !v.startsWith('-')) && longs!.some((v) => typeof v === 'number' && v < 0));
    assert.ok(floats!.some((v) => Number.isNaN(v)) && floats!.includes(Infinity) && floats!.includes(-Infinity));
    assert.ok(strs!.includes('') && strs!.some((v) => typeof v === 'string' && /[^\x00-\x7f]/.test(v)));
    const ts = times!.filter((v): v is number => typeof v === 'number');
    assert.ok(ts.some((v) => v < 0) && ts.some((v, i) => i > 0 && v < ts[i - 1]!), 'before 1970 and unordered');
    assert.ok(ints!.includes(null));
    const strict = rows(3, { nullRate: 0, nonFinite: false });
    assert.ok(strict.every((col) => !col.includes(null)));
    assert.ok(strict[3]!.every((v) => Number.isFinite(v)));
  });
});
