import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as A from 'apache-arrow';
import { SluiceError } from '../../engine/errors.js';
import type { Batch, ColumnType } from '../../engine/schema.js';
import { schemaFromRecord, valueAt } from '../../engine/schema.js';
import { decodeArrow, floorDivWords } from '../../native-free-kernels/decode-arrow.js';
import { encodeArrow, encodeArrowDictionary } from '../../native-free-kernels/encode-arrow.js';
import { mulberry32, randomBatch } from '../helpers/random.js';
import { expectError } from '../helpers/errors.js';

type Value = boolean | number | string | null;

function values(batch: Batch): Value[][] {
  return batch.columns.map((c) => Array.from({ length: batch.length }, (_, i) => valueAt(c, i)));
}


/** One Arrow IPC stream with one record batch per element of `batches`. */
function arrowStream(batches: Record<string, A.Data>[], compression?: A.CompressionType): Uint8Array {
  const rbs = batches.map((cols) => {
    const fields = Object.entries(cols).map(([name, d]) => new A.Field(name, d.type, true));
    const length = Object.values(cols)[0]?.length ?? 0;
    const struct = A.makeData({ type: new A.Struct(fields), length, nullCount: 0, children: Object.values(cols) });
    return new A.RecordBatch(new A.Schema(fields), struct);
  });
  return A.tableToIPC(new A.Table(rbs), 'stream', compression ?? null);
}

function bitmap(valid: boolean[]): { nullBitmap: Uint8Array; nullCount: number } {
  const bits = new Uint8Array((valid.length + 7) >> 3);
  valid.forEach((v, i) => {
    if (v) bits[i >> 3]! |= 1 << (i & 7);
  });
  return { nullBitmap: bits, nullCount: valid.filter((v) => !v).length };
}

/** A single-column decode. */
function decodeOne(type: ColumnType, data: A.Data, name = 'c'): Value[] {
  const batch = decodeArrow(arrowStream([{ [name]: data }]), schemaFromRecord({ [name]: type }));
  return values(batch)[0]!;
}

// --- a test-local view of the IPC framing, to mutate metadata fields in place --------------

interface MessageLayout {
  /** position of the int32 metadata length */
  metaLenPos: number;
  headerType: number;
  /** absolute positions (in the stream) of fields, 0 when absent */
  versionPos: number;
  bodyLengthPos: number;
  header: number;
  /** RecordBatch (or the DictionaryBatch's data) fields */
  rbLengthPos: number;
  nodes: number;
  nodeCount: number;
  buffers: number;
  bufferCount: number;
  bodyStart: number;
  dictIdPos: number;
}

function layout(bytes: Uint8Array): MessageLayout[] {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const field = (t: number, id: number): number => {
    const vt = t - dv.getInt32(t, true);
    if (4 + 2 * id + 2 > dv.getUint16(vt, true)) return 0;
    const off = dv.getUint16(vt + 4 + 2 * id, true);
    return off === 0 ? 0 : t + off;
  };
  const deref = (p: number): number => (p === 0 ? 0 : p + dv.getUint32(p, true));
  const out: MessageLayout[] = [];
  let pos = 0;
  while (pos + 8 <= bytes.length) {
    const metaLen = dv.getInt32(pos + 4, true);
    if (metaLen === 0) break;
    const meta = pos + 8;
    const root = meta + dv.getUint32(meta, true);
    const headerType = dv.getUint8(field(root, 1));
    const header = deref(field(root, 2));
    const bodyLengthPos = field(root, 3);
    const bodyLength = bodyLengthPos === 0 ? 0 : Number(dv.getBigInt64(bodyLengthPos, true));
    let rb = headerType === 3 ? header : 0;
    let dictIdPos = 0;
    if (headerType === 2) {
      dictIdPos = field(header, 0);
      rb = deref(field(header, 1));
    }
    const vec = (id: number): [number, number] => {
      const v = deref(rb === 0 ? 0 : field(rb, id));
      return v === 0 ? [0, 0] : [v + 4, dv.getUint32(v, true)];
    };
    const [nodes, nodeCount] = vec(1);
    const [buffers, bufferCount] = vec(2);
    out.push({
      metaLenPos: pos + 4, headerType, versionPos: field(root, 0), bodyLengthPos, header,
      rbLengthPos: rb === 0 ? 0 : field(rb, 0), nodes, nodeCount, buffers, bufferCount, bodyStart: meta + metaLen, dictIdPos,
    });
    pos = meta + metaLen + bodyLength;
  }
  return out;
}

function withInt64(bytes: Uint8Array, pos: number, v: bigint): Uint8Array {
  const copy = bytes.slice();
  new DataView(copy.buffer).setBigInt64(pos, v, true);
  return copy;
}

// --- fixtures --------------------------------------------------------------------------------

const ALL = schemaFromRecord({ b: 'bool', i: 'int32', l: 'int64', f: 'float64', s: 'string', t: 'timestamp' });
const BIDS = schemaFromRecord({ auction: 'int64', bidder: 'int64', price: 'float64', channel: 'string', ts: 'timestamp' });

describe('decodeArrow: round trips with the encoder', () => {
  for (const [name, encode] of [['utf8', encodeArrow], ['dictionary', encodeArrowDictionary]] as const) {
    for (const rows of [0, 1, 7, 1000]) {
      for (const nullRate of [0, 0.2, 1]) {
        test(`${name}, ${rows} rows, null rate ${nullRate}`, () => {
          const batch = randomBatch(ALL, rows, mulberry32(rows * 31 + nullRate * 100), { nullRate });
          const decoded = decodeArrow(encode(batch), ALL);
          assert.equal(decoded.length, rows);
          assert.deepEqual(values(decoded), values(batch));
          for (const c of decoded.columns) {
            if (nullRate === 0 || rows === 0) assert.equal(c.valid, null);
            if (c.type === 'string') assert.equal(new Set(c.dict).size, c.dict.length, 'dictionary entries are distinct');
          }
        });
      }
    }
  }

  test('column order of the Arrow schema does not matter', () => {
    const batch = randomBatch(ALL, 50, mulberry32(5));
    const reversed = schemaFromRecord({ t: 'timestamp', s: 'string', f: 'float64', l: 'int64', i: 'int32', b: 'bool' });
    const decoded = decodeArrow(encodeArrow(batch), reversed);
    assert.deepEqual(values(decoded), values(batch).reverse());
  });
});

describe('decodeArrow: zero-copy views', () => {
  const batch = randomBatch(BIDS, 100, mulberry32(9), { nullRate: 0.1 });
  const bytes = encodeArrow(batch);

  test('int64 and float64 columns are views over the input bytes', () => {
    const d = decodeArrow(bytes, BIDS);
    const [auction, bidder, price] = d.columns;
    assert.ok(auction?.type === 'int64' && bidder?.type === 'int64' && price?.type === 'float64');
    assert.equal(auction.words.buffer, bytes.buffer);
    assert.equal(bidder.words.buffer, bytes.buffer);
    assert.equal(price.values.buffer, bytes.buffer);
    assert.deepEqual(values(d), values(batch));
  });

  test('int32 columns from Int32 are views', () => {
    const schema = schemaFromRecord({ i: 'int32' });
    const b = randomBatch(schema, 64, mulberry32(1));
    const enc = encodeArrow(b);
    const col = decodeArrow(enc, schema).columns[0]!;
    assert.ok(col.type === 'int32');
    assert.equal(col.values.buffer, enc.buffer);
  });

  test('views over a SharedArrayBuffer slab at an 8-aligned offset', () => {
    const sab = new SharedArrayBuffer(bytes.length + 64);
    const slab = new Uint8Array(sab, 40, bytes.length);
    slab.set(bytes);
    const d = decodeArrow(slab, BIDS);
    const price = d.columns[2]!;
    assert.ok(price.type === 'float64');
    assert.equal(price.values.buffer, sab);
    assert.deepEqual(values(d), values(batch));
  });

  test('misaligned input is copied where a view is impossible, values unchanged', () => {
    for (const shift of [1, 2, 4]) {
      const buf = new Uint8Array(bytes.length + 8);
      const at = new Uint8Array(buf.buffer, shift, bytes.length);
      at.set(bytes);
      const d = decodeArrow(at, BIDS);
      assert.deepEqual(values(d), values(batch), `shift ${shift}`);
      const [auction, , price] = d.columns;
      assert.ok(auction?.type === 'int64' && price?.type === 'float64');
      // int64 words need 4-byte alignment, float64 8-byte alignment
      assert.equal(auction.words.buffer === buf.buffer, shift % 4 === 0, `int64 view at shift ${shift}`);
      assert.notEqual(price.values.buffer, buf.buffer);
    }
  });

  test('several record batches are concatenated into fresh arrays', () => {
    const s = schemaFromRecord({ l: 'int64' });
    const bytes2 = arrowStream([
      { l: A.makeData({ type: new A.Int64(), length: 2, data: BigInt64Array.from([1n, 2n]) }) },
      { l: A.makeData({ type: new A.Int64(), length: 1, data: BigInt64Array.from([-(2n ** 60n)]) }) },
    ]);
    const col = decodeArrow(bytes2, s).columns[0]!;
    assert.ok(col.type === 'int64');
    assert.notEqual(col.words.buffer, bytes2.buffer);
    assert.deepEqual(values(decodeArrow(bytes2, s))[0], [1, 2, (-(2n ** 60n)).toString()]);
  });
});

describe('decodeArrow: every accepted Arrow type', () => {
  const nulls = [true, false, true, true, true];

  test('int32 ← Int8, Int16, Int32, Uint8, Uint16', () => {
    const cases: [A.DataType, ArrayLike<number>, number[]][] = [
      [new A.Int8(), Int8Array.from([-128, 0, -1, 1, 127]), [-128, 0, -1, 1, 127]],
      [new A.Int16(), Int16Array.from([-32768, 0, -1, 1, 32767]), [-32768, 0, -1, 1, 32767]],
      [new A.Int32(), Int32Array.from([-(2 ** 31), 0, -1, 1, 2 ** 31 - 1]), [-(2 ** 31), 0, -1, 1, 2 ** 31 - 1]],
      [new A.Uint8(), Uint8Array.from([0, 0, 1, 128, 255]), [0, 0, 1, 128, 255]],
      [new A.Uint16(), Uint16Array.from([0, 0, 1, 32768, 65535]), [0, 0, 1, 32768, 65535]],
    ];
    for (const [type, data, want] of cases) {
      const got = decodeOne('int32', A.makeData({ type, length: 5, ...bitmap(nulls), data } as never));
      assert.deepEqual(got, want.map((v, i) => (nulls[i] ? v : null)), String(type));
    }
  });

  test('int64 ← Int8, Int16, Int32, Int64, Uint8, Uint16, Uint32', () => {
    const cases: [A.DataType, ArrayLike<number | bigint>, (number | string)[]][] = [
      [new A.Int8(), Int8Array.from([-128, 0, -1, 1, 127]), [-128, 0, -1, 1, 127]],
      [new A.Int16(), Int16Array.from([-32768, 0, -1, 1, 32767]), [-32768, 0, -1, 1, 32767]],
      [new A.Int32(), Int32Array.from([-(2 ** 31), 0, -1, 1, 2 ** 31 - 1]), [-(2 ** 31), 0, -1, 1, 2 ** 31 - 1]],
      [new A.Uint8(), Uint8Array.from([0, 0, 1, 128, 255]), [0, 0, 1, 128, 255]],
      [new A.Uint16(), Uint16Array.from([0, 0, 1, 32768, 65535]), [0, 0, 1, 32768, 65535]],
      [new A.Uint32(), Uint32Array.from([0, 0, 1, 2 ** 31, 2 ** 32 - 1]), [0, 0, 1, 2 ** 31, 2 ** 32 - 1]],
      [new A.Int64(), BigInt64Array.from([-(2n ** 63n), 0n, -1n, 2n ** 53n + 1n, 2n ** 63n - 1n]),
        ['-9223372036854775808', 0, -1, '9007199254740993', '9223372036854775807']],
    ];
    for (const [type, data, want] of cases) {
      const got = decodeOne('int64', A.makeData({ type, length: 5, ...bitmap(nulls), data } as never));
      assert.deepEqual(got, want.map((v, i) => (nulls[i] ? v : null)), String(type));
    }
  });

  test('float64 ← Float32, Float64 (NaN and ±Infinity kept)', () => {
    const f32 = Float32Array.from([1.5, -0.25, NaN, Infinity, -Infinity]);
    assert.deepEqual(decodeOne('float64', A.makeData({ type: new A.Float32(), length: 5, data: f32 })), [1.5, -0.25, NaN, Infinity, -Infinity]);
    const f64 = Float64Array.from([0.1, -1e300, NaN, Number.MIN_VALUE, -Infinity]);
    assert.deepEqual(decodeOne('float64', A.makeData({ type: new A.Float64(), length: 5, data: f64 })), Array.from(f64));
  });

  test('timestamp ← Timestamp of every unit (time zone ignored), Date64, Int64 as ms', () => {
    const ts = (type: A.DataType, raw: bigint[]): Value[] =>
      decodeOne('timestamp', A.makeData({ type, length: raw.length, data: BigInt64Array.from(raw) } as never));
    assert.deepEqual(ts(new A.TimestampSecond('Europe/Paris'), [0n, 1714564800n, -1n]), [0, 1714564800000, -1000]);
    assert.deepEqual(ts(new A.TimestampMillisecond(), [1714564800123n, -1n, 8640000000000000n]), [1714564800123, -1, 8.64e15]);
    assert.deepEqual(ts(new A.TimestampMicrosecond('UTC'), [1714564800123999n, -1n, -1000n, -1001n, 0n]),
      [1714564800123, -1, -1, -2, 0]);
    assert.deepEqual(ts(new A.TimestampNanosecond(), [1714564800123456789n, -1n, -1000000n, -1000001n, 2n ** 63n - 1n, -(2n ** 63n)]),
      [1714564800123, -1, -1, -2, 9223372036854, -9223372036855]);
    assert.deepEqual(ts(new A.DateMillisecond(), [1714564800000n, -86400000n]), [1714564800000, -86400000]);
    assert.deepEqual(ts(new A.Int64(), [1714564800000n, 0n]), [1714564800000, 0]);
  });

  test('floorDivWords equals BigInt floor division for random int64 values', () => {
    const rng = mulberry32(77);
    const words = new Int32Array(2);
    const big = new BigInt64Array(words.buffer);
    for (let k = 0; k < 20000; k++) {
      words[0] = (rng() * 2 ** 32) | 0;
      words[1] = k % 4 === 0 ? (rng() * 64 - 32) | 0 : (rng() * 2 ** 32) | 0;
      for (const d of [1000, 1000000]) {
        const v = big[0]!;
        const q = v / BigInt(d) - (v % BigInt(d) < 0n ? 1n : 0n);
        assert.equal(floorDivWords(words[0]!, words[1]!, d), Number(q), `${v} / ${d}`);
      }
    }
  });

  test('timestamps outside ±8.64e15 ms are rejected, but garbage under a null is ignored', () => {
    const bad = (type: A.DataType, raw: bigint) =>
      expectError(() => decodeOne('timestamp', A.makeData({ type, length: 2, data: BigInt64Array.from([0n, raw]) } as never)),
        'SLUICE_BATCH_BAD_TIMESTAMP', /column 'c' row 1/);
    bad(new A.TimestampSecond(), 8640000000001n);
    bad(new A.TimestampMillisecond(), -8640000000000001n);
    bad(new A.TimestampMicrosecond(), 2n ** 63n - 1n);
    bad(new A.Int64(), 2n ** 60n);
    const masked = A.makeData({ type: new A.TimestampSecond(), length: 2, ...bitmap([true, false]), data: BigInt64Array.from([5n, 2n ** 62n]) });
    assert.deepEqual(decodeOne('timestamp', masked), [5000, null]);
  });

  test('string ← Utf8 and LargeUtf8, with nulls, empty and non-ASCII strings', () => {
    const strs = ['', 'café', null, '日本語 🎉', 'a-string-longer-than-twenty-four-bytes', '', 'café'];
    for (const type of [new A.Utf8(), new A.LargeUtf8()]) {
      const col = decodeArrow(arrowStream([{ s: A.vectorFromArray(strs, type).data[0]! }]), schemaFromRecord({ s: 'string' })).columns[0]!;
      assert.ok(col.type === 'string');
      assert.deepEqual(Array.from({ length: strs.length }, (_, i) => valueAt(col, i)), strs, String(type));
      assert.equal(col.dict.length, 4, 'each distinct string once');
    }
  });

  test('strings that differ in one byte are distinct, at every position and length up to 20', () => {
    // the dictionary keys strings of up to 12 bytes by their words without comparing bytes:
    // every byte must be in some word
    const strs: string[] = [];
    for (let len = 1; len <= 20; len++) {
      const base = 'abcdefghijklmnopqrst'.slice(0, len);
      strs.push(base);
      for (let p = 0; p < len; p++) strs.push(base.slice(0, p) + 'Z' + base.slice(p + 1));
    }
    const rows = [...strs, ...strs.slice().reverse()];
    const col = decodeArrow(arrowStream([{ s: A.vectorFromArray(rows, new A.Utf8()).data[0]! }]), schemaFromRecord({ s: 'string' })).columns[0]!;
    assert.ok(col.type === 'string');
    assert.deepEqual(Array.from({ length: rows.length }, (_, i) => valueAt(col, i)), rows);
    assert.equal(col.dict.length, new Set(strs).size);
  });

  test('a byte-order mark inside a string is kept', () => {
    assert.deepEqual(decodeOne('string', A.vectorFromArray(['\uFEFFx', 'x'], new A.Utf8()).data[0]!), ['\uFEFFx', 'x']);
  });

  test('string ← Dictionary<Utf8> with every index type; duplicate and null dictionary entries', () => {
    const dict = A.vectorFromArray(['red', 'green', null, 'red', 'blue'], new A.Utf8());
    const idx = [0, 1, 2, 3, 4, 0, 4];
    const valid = [true, true, true, true, false, true, true];
    const want = ['red', 'green', null, 'red', null, 'red', 'blue'];
    const types: [A.Int, ArrayLike<number | bigint>][] = [
      [new A.Int8(), Int8Array.from(idx)], [new A.Int16(), Int16Array.from(idx)], [new A.Int32(), Int32Array.from(idx)],
      [new A.Uint8(), Uint8Array.from(idx)], [new A.Uint16(), Uint16Array.from(idx)], [new A.Uint32(), Uint32Array.from(idx)],
      [new A.Int64(), BigInt64Array.from(idx.map(BigInt))],
    ];
    for (const [indexType, data] of types) {
      const type = new A.Dictionary(new A.Utf8(), indexType as never, 3);
      const d = A.makeData({ type, length: idx.length, ...bitmap(valid), data, dictionary: dict } as never);
      const col = decodeArrow(arrowStream([{ s: d }]), schemaFromRecord({ s: 'string' })).columns[0]!;
      assert.ok(col.type === 'string');
      assert.deepEqual(Array.from({ length: idx.length }, (_, i) => valueAt(col, i)), want, String(indexType));
      assert.equal(new Set(col.dict).size, col.dict.length, 'batch dictionary entries are distinct');
    }
  });

  test('bool ← Bool across byte boundaries, with nulls', () => {
    const rng = mulberry32(3);
    const vals = Array.from({ length: 37 }, () => (rng() < 0.2 ? null : rng() < 0.5));
    assert.deepEqual(decodeOne('bool', A.vectorFromArray(vals, new A.Bool()).data[0]!), vals);
  });

  test('several record batches, dictionary replacement and delta', () => {
    const type = new A.Dictionary(new A.Utf8(), new A.Int32(), 7);
    const d1 = A.vectorFromArray(['x', 'y'], new A.Utf8());
    const d2 = A.vectorFromArray(['z', 'x'], new A.Utf8());
    const strCol = (idx: number[], dict: A.Vector) => A.makeData({ type, length: idx.length, nullCount: 0, data: Int32Array.from(idx), dictionary: dict });
    const numCol = (v: number[]) => A.makeData({ type: new A.Float64(), length: v.length, data: Float64Array.from(v) });
    const utf = (v: (string | null)[]) => A.vectorFromArray(v, new A.Utf8()).data[0]!;
    const bytes = arrowStream([
      { s: strCol([0, 1, 1], d1), f: numCol([1, 2, 3]), u: utf(['a', null, 'b']) },
      { s: strCol([], d1), f: numCol([]), u: utf([]) },
      // the same first chunk plus a second one: the writer sends a delta
      { s: strCol([2, 0, 3], new A.Vector([d1.data[0]!, d2.data[0]!])), f: numCol([4, 5, 6]), u: utf(['b', 'c', 'a']) },
      // a different dictionary: the writer sends a replacement
      { s: strCol([0, 1], A.vectorFromArray(['q', 'y'], new A.Utf8())), f: numCol([7, 8]), u: utf([null, 'é']) },
    ]);
    const kinds = layout(bytes).map((m) => m.headerType);
    assert.deepEqual(kinds, [1, 2, 3, 3, 2, 3, 2, 3], 'schema, dict, rb, rb, delta, rb, replacement, rb');
    const schema = schemaFromRecord({ s: 'string', f: 'float64', u: 'string' });
    const d = decodeArrow(bytes, schema);
    assert.deepEqual(values(d), [
      ['x', 'y', 'y', 'z', 'x', 'x', 'q', 'y'],
      [1, 2, 3, 4, 5, 6, 7, 8],
      ['a', null, 'b', 'b', 'c', 'a', null, 'é'],
    ]);
    const s = d.columns[0]!;
    assert.ok(s.type === 'string');
    assert.equal(new Set(s.dict).size, s.dict.length);
  });

  test('sliced tables (offsets, bit offsets) decode to the slice', () => {
    const rng = mulberry32(11);
    const n = 61;
    const ints = Array.from({ length: n }, (_, i) => (rng() < 0.2 ? null : i * 3 - 50));
    const strs = Array.from({ length: n }, (_, i) => (rng() < 0.2 ? null : `s${i % 7}é`));
    const bools = Array.from({ length: n }, () => (rng() < 0.2 ? null : rng() < 0.5));
    const table = new A.Table({
      i: A.vectorFromArray(ints, new A.Int32()),
      s: A.vectorFromArray(strs, new A.Utf8()),
      b: A.vectorFromArray(bools, new A.Bool()),
    });
    const schema = schemaFromRecord({ i: 'int32', s: 'string', b: 'bool' });
    for (const [from, to] of [[3, 17], [8, 61], [13, 14], [0, 5]] as const) {
      const got = values(decodeArrow(A.tableToIPC(table.slice(from, to), 'stream'), schema));
      assert.deepEqual(got, [ints.slice(from, to), strs.slice(from, to), bools.slice(from, to)], `slice ${from}..${to}`);
    }
  });

  test('a stream with a schema and no record batch is a 0-row batch', () => {
    const full = encodeArrow(randomBatch(ALL, 3, mulberry32(1)));
    const m = layout(full);
    const schemaEnd = m[1]!.metaLenPos - 4; // start of the record batch message
    const onlySchema = new Uint8Array(schemaEnd + 8);
    onlySchema.set(full.subarray(0, schemaEnd));
    onlySchema.set([0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0], schemaEnd);
    for (const bytes of [onlySchema, full.subarray(0, schemaEnd)]) {
      const d = decodeArrow(bytes, ALL);
      assert.equal(d.length, 0);
      assert.deepEqual(values(d), [[], [], [], [], [], []]);
    }
  });
});

describe('decodeArrow: schema mismatches', () => {
  const i32 = A.makeData({ type: new A.Int32(), length: 1, data: Int32Array.from([1]) });

  test('type mismatches name the column, the expected and the Arrow type', () => {
    const cases: [ColumnType, A.Data, RegExp][] = [
      ['int32', A.makeData({ type: new A.Int64(), length: 1, data: BigInt64Array.from([1n]) }), /column 'c': expected int32, got Arrow int64/],
      ['int32', A.makeData({ type: new A.Uint32(), length: 1, data: Uint32Array.from([1]) }), /expected int32, got Arrow uint32/],
      ['int64', A.makeData({ type: new A.Uint64(), length: 1, data: BigUint64Array.from([1n]) }), /expected int64, got Arrow uint64/],
      ['int64', A.makeData({ type: new A.Float64(), length: 1, data: Float64Array.from([1]) }), /expected int64, got Arrow float64/],
      ['float64', A.makeData({ type: new A.Float16(), length: 1, data: Uint16Array.from([0]) }), /expected float64, got Arrow float16/],
      ['timestamp', A.makeData({ type: new A.DateDay(), length: 1, data: Int32Array.from([1]) }), /expected timestamp, got Arrow date32/],
      ['timestamp', i32, /expected timestamp, got Arrow int32/],
      ['string', A.vectorFromArray([new Uint8Array([1])], new A.Binary()).data[0]!, /expected string, got Arrow binary/],
      ['string', i32, /expected string, got Arrow int32/],
      ['bool', i32, /expected bool, got Arrow int32/],
      ['int32', A.makeData({ type: new A.Dictionary(new A.Int32(), new A.Int32()), length: 1, data: Int32Array.from([0]),
        dictionary: A.vectorFromArray([5], new A.Int32()) }), /expected int32, got Arrow dictionary<int32>/],
      ['string', A.vectorFromArray([[1]], new A.List(new A.Field('x', new A.Int32()))).data[0]!, /got Arrow list/],
    ];
    for (const [type, data, pattern] of cases) expectError(() => decodeOne(type, data), 'SLUICE_BATCH_TYPE_MISMATCH', pattern);
  });

  test('integer Arrow types convert into float64 columns, as JSON and MessagePack integers do', () => {
    const cases: A.Data[] = [
      A.makeData({ type: new A.Int8(), length: 3, data: Int8Array.from([-128, 0, 127]) }),
      A.makeData({ type: new A.Uint16(), length: 3, data: Uint16Array.from([0, 1, 65535]) }),
      A.makeData({ type: new A.Int32(), length: 3, data: Int32Array.from([-2147483648, 7, 2147483647]) }),
      A.makeData({ type: new A.Int64(), length: 3, data: BigInt64Array.from([-(2n ** 53n), 5n, 2n ** 53n]) }),
      A.makeData({ type: new A.Uint64(), length: 3, data: BigUint64Array.from([0n, 2n ** 63n, 2n ** 64n - 1n]) }),
    ];
    const want = [[-128, 0, 127], [0, 1, 65535], [-2147483648, 7, 2147483647], [-(2 ** 53), 5, 2 ** 53], [0, 2 ** 63, 2 ** 64]];
    cases.forEach((data, i) => assert.deepEqual(decodeOne('float64', data), want[i]));
  });

  test('a missing column and an unknown column', () => {
    const bytes = arrowStream([{ a: i32 }]);
    expectError(() => decodeArrow(bytes, schemaFromRecord({ a: 'int32', b: 'int32' })), 'SLUICE_BATCH_MISSING_COLUMN', /'b'/);
    expectError(() => decodeArrow(bytes, schemaFromRecord({ z: 'int32' })), 'SLUICE_BATCH_UNKNOWN_COLUMN', /'a'/);
  });

  test('duplicate column names', () => {
    const f = new A.Field('a', new A.Int32(), true);
    const fields = [f, f];
    const rb = new A.RecordBatch(new A.Schema(fields), A.makeData({ type: new A.Struct(fields), length: 1, nullCount: 0, children: [i32, i32] }));
    expectError(() => decodeArrow(A.tableToIPC(new A.Table([rb]), 'stream'), schemaFromRecord({ a: 'int32' })),
      'SLUICE_BATCH_MALFORMED', /two columns named 'a'/);
  });
});

describe('decodeArrow: malformed input', () => {
  const small = randomBatch(ALL, 5, mulberry32(2), { nullRate: 0.3 });
  const fixtures: [string, Uint8Array][] = [['utf8', encodeArrow(small)], ['dictionary', encodeArrowDictionary(small)]];

  for (const [name, bytes] of fixtures) {
    test(`${name}: every truncation is rejected with a BATCH_* code or is a whole-message prefix`, () => {
      // message starts, and the end-of-stream marker: a stream may end there
      const boundaries = new Set([...layout(bytes).map((m) => m.metaLenPos - 4), bytes.length - 8]);
      for (let len = 0; len < bytes.length; len++) {
        const prefix = bytes.slice(0, len);
        let batch: Batch | null = null;
        try {
          batch = decodeArrow(prefix, ALL);
        } catch (err) {
          assert.ok(err instanceof SluiceError && err.code.startsWith('SLUICE_BATCH_'), `prefix ${len}: ${String(err)}`);
          continue;
        }
        // only a prefix ending where a message starts can be a complete (shorter) stream
        assert.ok(boundaries.has(len), `prefix ${len} decoded`);
        if (batch.length !== 0) assert.deepEqual(values(batch), values(small), `prefix ${len}`);
      }
    });

    test(`${name}: any 4-byte overwrite is a BATCH_* error or a valid batch, never a crash`, () => {
      const started = Date.now();
      for (let pos = 0; pos + 4 <= bytes.length; pos++) {
        for (const word of [0xffffffff, 0x7fffffff, 0x40000000, 0x00010000]) {
          const copy = bytes.slice();
          new DataView(copy.buffer).setUint32(pos, word, true);
          try {
            const b = decodeArrow(copy, ALL);
            assert.ok(b.length <= small.length);
          } catch (err) {
            assert.ok(err instanceof SluiceError && err.code.startsWith('SLUICE_BATCH_'), `word ${word} at ${pos}: ${String(err)}`);
          }
        }
      }
      assert.ok(Date.now() - started < 5000, 'mutations are rejected quickly');
    });
  }

  const bytes = fixtures[0]![1];
  const rbMsg = layout(bytes).find((m) => m.headerType === 3)!;

  test('huge declared lengths are rejected quickly without allocating', () => {
    const huge = [2n ** 40n, 2n ** 31n - 1n, 2n ** 52n, 1n << 62n, -1n];
    const positions: [string, number][] = [['record batch length', rbMsg.rbLengthPos], ['body length', rbMsg.bodyLengthPos]];
    for (let k = 0; k < rbMsg.nodeCount; k++) positions.push([`node ${k} length`, rbMsg.nodes + 16 * k], [`node ${k} null count`, rbMsg.nodes + 16 * k + 8]);
    for (let k = 0; k < rbMsg.bufferCount; k++) positions.push([`buffer ${k} offset`, rbMsg.buffers + 16 * k], [`buffer ${k} length`, rbMsg.buffers + 16 * k + 8]);
    const before = process.memoryUsage().arrayBuffers;
    for (const [what, pos] of positions) {
      assert.ok(pos > 0, `${what} present`);
      for (const v of huge) {
        const t0 = performance.now();
        expectError(() => decodeArrow(withInt64(bytes, pos, v), ALL), 'SLUICE_BATCH_MALFORMED');
        assert.ok(performance.now() - t0 < 50, `${what} = ${v} took ${performance.now() - t0} ms`);
      }
    }
    assert.ok(process.memoryUsage().arrayBuffers - before < 64 * 1024 * 1024, 'no allocation from declared lengths');
    const metaLen = bytes.slice();
    new DataView(metaLen.buffer).setInt32(rbMsg.metaLenPos, 0x7fffffff, true);
    expectError(() => decodeArrow(metaLen, ALL), 'SLUICE_BATCH_MALFORMED', /metadata bytes/);
  });

  test('string offsets that decrease or overrun the data buffer', () => {
    // ALL: b(2 buffers) i(2) l(2) f(2) s(validity, offsets, data) t(2): offsets are buffer 9
    const offsetsStart = rbMsg.bodyStart + Number(new DataView(bytes.buffer).getBigInt64(rbMsg.buffers + 16 * 9, true));
    const dec = bytes.slice();
    new DataView(dec.buffer).setInt32(offsetsStart + 4 * 2, -1, true);
    expectError(() => decodeArrow(dec, ALL), 'SLUICE_BATCH_MALFORMED', /column 's': string offsets decrease/);
    const over = bytes.slice();
    new DataView(over.buffer).setInt32(offsetsStart + 4 * 5, 1 << 20, true);
    expectError(() => decodeArrow(over, ALL), 'SLUICE_BATCH_MALFORMED', /column 's'/);
  });

  test('a null count that disagrees with the validity bitmap', () => {
    const schema = schemaFromRecord({ i: 'int32' });
    const enc = arrowStream([{ i: A.makeData({ type: new A.Int32(), length: 3, ...bitmap([true, false, true]), data: Int32Array.from([1, 2, 3]) }) }]);
    const m = layout(enc).find((x) => x.headerType === 3)!;
    expectError(() => decodeArrow(withInt64(enc, m.nodes + 8, 2n), schema), 'SLUICE_BATCH_MALFORMED', /null count 2 but the validity bitmap has 1/);
    // a null count of 0 means "no nulls": Arrow readers ignore the bitmap then
    assert.deepEqual(values(decodeArrow(withInt64(enc, m.nodes + 8, 0n), schema)), [[1, 2, 3]]);
  });

  test('invalid UTF-8 in a utf8 column and in a dictionary', () => {
    const bad = A.makeData({ type: new A.Utf8(), length: 3, valueOffsets: Int32Array.from([0, 1, 3, 4]), data: Uint8Array.from([0x61, 0xc3, 0x28, 0x62]) });
    expectError(() => decodeOne('string', bad, 'name'), 'SLUICE_BATCH_MALFORMED', /column 'name' row 1: invalid UTF-8/);
    const dict = A.makeVector(bad);
    const d = A.makeData({ type: new A.Dictionary(new A.Utf8(), new A.Int32()), length: 1, data: Int32Array.from([0]), dictionary: dict });
    expectError(() => decodeOne('string', d), 'SLUICE_BATCH_MALFORMED', /dictionary entry 1: invalid UTF-8/);
    // but invalid bytes under a null are never decoded
    const masked = A.makeData({ type: new A.Utf8(), length: 3, ...bitmap([true, false, true]), valueOffsets: Int32Array.from([0, 1, 3, 4]),
      data: Uint8Array.from([0x61, 0xc3, 0x28, 0x62]) });
    assert.deepEqual(decodeOne('string', masked), ['a', null, 'b']);
  });

  test('a dictionary index outside the dictionary', () => {
    const d = A.makeData({ type: new A.Dictionary(new A.Utf8(), new A.Int8()), length: 2, data: Int8Array.from([0, 5]),
      dictionary: A.vectorFromArray(['a', 'b'], new A.Utf8()) });
    expectError(() => decodeOne('string', d), 'SLUICE_BATCH_MALFORMED', /row 1: dictionary index 5 outside the dictionary of 2 entries/);
    const neg = A.makeData({ type: new A.Dictionary(new A.Utf8(), new A.Int8()), length: 1, data: Int8Array.from([-1]),
      dictionary: A.vectorFromArray(['a'], new A.Utf8()) });
    expectError(() => decodeOne('string', neg), 'SLUICE_BATCH_MALFORMED', /dictionary index -1/);
  });

  test('a dictionary batch for an id no column uses', () => {
    const enc = encodeArrowDictionary(small);
    const dictMsg = layout(enc).find((m) => m.headerType === 2)!;
    expectError(() => decodeArrow(withInt64(enc, dictMsg.dictIdPos, 99n), ALL), 'SLUICE_BATCH_MALFORMED', /id 99, which no column uses/);
  });

  test('framing errors: no continuation marker, bytes after end-of-stream, two schemas, no schema', () => {
    const legacy = bytes.slice(4);
    expectError(() => decodeArrow(legacy, ALL), 'SLUICE_BATCH_MALFORMED', /continuation marker/);
    const trailing = new Uint8Array(bytes.length + 3);
    trailing.set(bytes);
    expectError(() => decodeArrow(trailing, ALL), 'SLUICE_BATCH_MALFORMED', /after the end-of-stream marker/);
    const schemaLen = rbMsg.metaLenPos - 4;
    const twice = new Uint8Array(schemaLen * 2);
    twice.set(bytes.subarray(0, schemaLen));
    twice.set(bytes.subarray(0, schemaLen), schemaLen);
    expectError(() => decodeArrow(twice, ALL), 'SLUICE_BATCH_MALFORMED', /second schema/);
    expectError(() => decodeArrow(bytes.subarray(schemaLen), ALL), 'SLUICE_BATCH_MALFORMED', /before the schema/);
    expectError(() => decodeArrow(Uint8Array.from([0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0]), ALL), 'SLUICE_BATCH_MALFORMED', /no schema/);
    expectError(() => decodeArrow(new Uint8Array(0), ALL), 'SLUICE_BATCH_MALFORMED', /no schema/);
  });

  test('unsupported features: compression, old metadata, big-endian', () => {
    A.compressionRegistry.set(A.CompressionType.ZSTD, {
      encode: (x: Uint8Array) => {
        const out = new Uint8Array(x.length + 6);
        out.set([40, 181, 47, 253, 0, 0]);
        out.set(x, 6);
        return out;
      },
      decode: (x: Uint8Array) => x.subarray(6),
    });
    const compressed = arrowStream([{ c: A.makeData({ type: new A.Int32(), length: 1, data: Int32Array.from([1]) }) }], A.CompressionType.ZSTD);
    expectError(() => decodeArrow(compressed, schemaFromRecord({ c: 'int32' })), 'SLUICE_BATCH_UNSUPPORTED', /compressed/);

    const old = bytes.slice();
    const schemaMsg = layout(bytes)[0]!;
    new DataView(old.buffer).setInt16(schemaMsg.versionPos, 2, true);
    expectError(() => decodeArrow(old, ALL), 'SLUICE_BATCH_UNSUPPORTED', /metadata version V3/);

    expectError(() => decodeArrow(bigEndianSchemaMessage(), ALL), 'SLUICE_BATCH_UNSUPPORTED', /big-endian/);
  });

  test('event-time nulls and the row limit', () => {
    const s = schemaFromRecord({ t: 'timestamp' });
    const withNull = arrowStream([{ t: A.makeData({ type: new A.TimestampMillisecond(), length: 3, ...bitmap([true, true, false]),
      data: BigInt64Array.from([1n, 2n, 3n]) }) }]);
    expectError(() => decodeArrow(withNull, s, { eventTime: 0 }), 'SLUICE_BATCH_BAD_TIMESTAMP', /column 't' row 2: null in the event-time column/);
    assert.equal(decodeArrow(withNull, s).length, 3);
    expectError(() => decodeArrow(withNull, s, { maxRows: 2 }), 'SLUICE_BATCH_TOO_MANY_ROWS', /3 rows/);
  });
});

/**
 * A hand-built stream whose schema message says big-endian (arrow-js always writes little-endian
 * and omits the default). Flatbuffer layout, offsets from the metadata start:
 *   0  root offset → 16      4  Message vtable [10, 12, 4, 6, 8]
 *  16  Message table: soffset 12, version V5 @ +4, header type Schema @ +6, header → 36 @ +8
 *  28  Schema vtable [8, 12, 4, 8]
 *  36  Schema table: soffset 8, endianness Big @ +4, fields → 48 @ +8      48  empty vector
 */
function bigEndianSchemaMessage(): Uint8Array {
  const meta = new DataView(new ArrayBuffer(56));
  meta.setUint32(0, 16, true);
  [10, 12, 4, 6, 8].forEach((v, k) => meta.setUint16(4 + 2 * k, v, true));
  meta.setInt32(16, 16 - 4, true);
  meta.setInt16(20, 4, true);
  meta.setUint8(22, 1);
  meta.setUint32(24, 36 - 24, true);
  [8, 12, 4, 8].forEach((v, k) => meta.setUint16(28 + 2 * k, v, true));
  meta.setInt32(36, 36 - 28, true);
  meta.setInt16(40, 1, true);
  meta.setUint32(44, 48 - 44, true);
  meta.setUint32(48, 0, true);
  const out = new Uint8Array(8 + 56 + 8);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, 0xffffffff, true);
  dv.setInt32(4, 56, true);
  out.set(new Uint8Array(meta.buffer), 8);
  dv.setUint32(64, 0xffffffff, true);
  return out;
}

