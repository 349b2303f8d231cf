import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TaskArena } from '../../engine/task-runner.js';
import { decodeArrow } from '../../native-free-kernels/decode-arrow.js';
import { encodeArrow } from '../../native-free-kernels/encode-arrow.js';
import { decodeMsgpack } from '../../native-free-kernels/decode-msgpack.js';
import { decodeJson, decodeNdjson } from '../../native-free-kernels/decode-json.js';
import { pack } from 'msgpackr';
import * as A from 'apache-arrow';
import { makeSchema, type Batch } from '../../engine/schema.js';

test('TaskArena: zeroed, 8-aligned, disjoint arrays within a task; reuse after reset; growth keeps earlier arrays', () => {
  const arena = new TaskArena();
  const a = arena.f64(3);
  const b = arena.i32(5);
  const d = arena.u8(3);
  const c = arena.f64(2);
  for (const x of [a, b, c, d]) assert.ok(x.every((v) => v === 0));
  assert.equal(a.byteOffset % 8, 0);
  assert.equal(c.byteOffset % 8, 0);
  d.fill(255);
  a.fill(1.5);
  b.fill(-7);
  c.fill(2.5);
  assert.deepEqual(Array.from(a), [1.5, 1.5, 1.5]);
  assert.deepEqual(Array.from(b), [-7, -7, -7, -7, -7]);
  assert.deepEqual(Array.from(d), [255, 255, 255]);
  // past the first buffer (1 MiB): a new one; what was handed out stays as it was
  const big = arena.f64(200_000);
  big.fill(9);
  assert.deepEqual(Array.from(a), [1.5, 1.5, 1.5]);
  assert.deepEqual(Array.from(c), [2.5, 2.5]);
  assert.deepEqual(Array.from(d), [255, 255, 255]);
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

test('TaskArena: MessagePack, JSON and NDJSON batches decoded into one arena equal the same batches decoded without it', () => {
  const schema = makeSchema([
    { name: 'b', type: 'bool' }, { name: 'i', type: 'int32' }, { name: 'w', type: 'int64' }, { name: 'f', type: 'float64' },
    { name: 'ts', type: 'timestamp' }, { name: 's', type: 'string' },
  ]);
  const rowsOf = (k: number): Record<string, unknown>[] => Array.from({ length: 50 }, (_, r) => ({
    b: r % 3 === 0 ? null : r % 2 === 0, i: r % 7 === 0 ? null : r * k - 100, w: r % 5 === 0 ? null : r * 1e9 + k,
    f: r / 4 + k, ts: 1_700_000_000_000 + r * k, s: r % 4 === 0 ? null : `s${r % 6}-${k}`,
  }));
  const arena = new TaskArena();
  const inputs: [string, (opts?: { scratch: TaskArena }) => Batch][] = [1, 2, 3].flatMap((k) => {
    const rows = rowsOf(k);
    const json = new TextEncoder().encode(JSON.stringify(rows));
    const ndjson = new TextEncoder().encode(rows.map((r) => JSON.stringify(r)).join('\n'));
    const msgpack = new Uint8Array(pack(rows));
    return [
      [`msgpack ${k}`, (o) => decodeMsgpack(msgpack, schema, o)],
      [`json ${k}`, (o) => decodeJson(json, schema, o)],
      [`ndjson ${k}`, (o) => decodeNdjson(ndjson, schema, o)],
    ] as [string, (opts?: { scratch: TaskArena }) => Batch][];
  });
  // all decoded into one arena first (one task), then compared: no batch overwrote another's arrays
  const withArena = inputs.map(([, decode]) => decode({ scratch: arena }));
  inputs.forEach(([name, decode], k) => {
    const plain = decode();
    const got = withArena[k]!;
    assert.deepEqual(got.columns, plain.columns, name);
    const col = got.columns[3]!;
    assert.ok(col.type === 'float64');
    assert.equal(col.values.buffer, arena.f64(1).buffer, `${name}: the column is the arena's`);
  });
});

test('TaskArena: Arrow streams of several record batches, every column type and nulls, decoded into one arena equal the same without it', () => {
  const schema = makeSchema([
    { name: 'b', type: 'bool' }, { name: 'i', type: 'int32' }, { name: 'w', type: 'int64' }, { name: 'f', type: 'float64' },
    { name: 'ts', type: 'timestamp' }, { name: 's', type: 'string' },
  ]);
  const tableOf = (k: number, n: number): A.Table => new A.Table({
    b: A.vectorFromArray(Array.from({ length: n }, (_, r) => (r % 3 === 0 ? null : r % 2 === 0)), new A.Bool()),
    i: A.vectorFromArray(Array.from({ length: n }, (_, r) => (r % 7 === 0 ? null : r * k - 100)), new A.Int32()),
    w: A.vectorFromArray(Array.from({ length: n }, (_, r) => (r % 5 === 0 ? null : BigInt(r) * 1_000_000_000n + BigInt(k))), new A.Int64()),
    f: A.vectorFromArray(Array.from({ length: n }, (_, r) => r / 4 + k), new A.Float64()),
    ts: A.vectorFromArray(Array.from({ length: n }, (_, r) => 1_700_000_000_000 + r * k), new A.TimestampMillisecond()),
    s: A.vectorFromArray(Array.from({ length: n }, (_, r) => (r % 4 === 0 ? null : `s${r % 6}-${k}`)), new A.Utf8()),
  });
  // two record batches per stream: the builders copy into arrays of their own
  const streams = [1, 2, 3].map((k) => A.tableToIPC(tableOf(k, 30).concat(tableOf(k + 10, 20)), 'stream'));
  const arena = new TaskArena();
  const withArena = streams.map((bytes) => decodeArrow(bytes, schema, { scratch: arena }));
  streams.forEach((bytes, k) => {
    const plain = decodeArrow(bytes, schema);
    assert.equal(plain.length, 50);
    assert.deepEqual(withArena[k]!.columns, plain.columns, `stream ${k}`);
    for (const col of withArena[k]!.columns) {
      const arrays = col.type === 'int64' ? [col.words] : col.type === 'string' ? [col.codes] : [col.values];
      for (const a of [...arrays, ...(col.valid === null ? [] : [col.valid])]) assert.equal(a.buffer, arena.u8(1).buffer, `stream ${k} ${col.type}: the arena's`);
    }
  });
});
