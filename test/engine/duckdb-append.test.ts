/**
 * engine/duckdb-append.ts: timestamps (ms as doubles) become DuckDB µs exactly over the whole
 * range the decoders accept (±8.64e15 ms, Date's range), checked against BigInt arithmetic and
 * through a real DuckDB appender.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ChunkWriter, msToMicrosWords } from '../../engine/duckdb-append.js';
import { openMemory, queryRows } from '../helpers/duckdb.js';
import { mulberry32 } from '../helpers/random.js';

const MAX_MS = 8.64e15;

/** The exact µs of a ms double, by BigInt: integral ms × 1000 plus the rounded µs fraction. */
function exactMicros(ms: number): bigint {
  const whole = Math.floor(ms);
  return BigInt(whole) * 1000n + BigInt(Math.round((ms - whole) * 1000));
}

function wordsToBigInt(w: Int32Array): bigint {
  return (BigInt(w[1]!) << 32n) | BigInt(w[0]! >>> 0);
}

function samples(): number[] {
  const rnd = mulberry32(17);
  const out = [0, -1, 1, 0.001, -0.001, 1.5, -1.5, 9e12 - 1, 9e12, -9e12, 9_007_199_254_740, 564649953522085, MAX_MS, -MAX_MS, MAX_MS - 1, 2 ** 52, -(2 ** 52), 2 ** 53 / 1000];
  for (let i = 0; i < 20_000; i++) {
    const scale = [1e3, 1e9, 1e12, 1e13, 1e15, MAX_MS][i % 6]!;
    const v = Math.floor((rnd() * 2 - 1) * scale);
    out.push(i % 3 === 0 ? v + Math.floor(rnd() * 1000) / 1000 : v);
  }
  return out.filter((v) => Math.abs(v) <= MAX_MS);
}

describe('timestamps to DuckDB µs', () => {
  test('msToMicrosWords equals BigInt arithmetic over ±8.64e15 ms, beyond the year 2255 too', () => {
    const w = new Int32Array(2);
    for (const ms of samples()) {
      msToMicrosWords(ms, w, 0);
      assert.equal(wordsToBigInt(w), exactMicros(ms), `ms ${ms}`);
    }
  });

  test('a real appender stores the exact µs', async () => {
    const db = await openMemory();
    try {
      await db.conn.run('CREATE TABLE t (ts TIMESTAMP)');
      const values = Float64Array.from(samples().slice(0, 5000).filter((v) => Number.isInteger(v) || Math.abs(v) < 9e12));
      const appender = await db.conn.createAppender('t');
      new ChunkWriter(['TIMESTAMP']).append(appender, [{ type: 'timestamp', values, valid: null }], 0, values.length);
      appender.flushSync();
      appender.closeSync();
      const rows = await queryRows(db.conn, 'SELECT epoch_us(ts) FROM t');
      assert.equal(rows.length, values.length);
      for (let i = 0; i < values.length; i++) assert.equal(rows[i]![0], exactMicros(values[i]!), `ms ${values[i]}`);
    } finally {
      db.close();
    }
  });
});

describe('strings to DuckDB VARCHAR', () => {
  test('inlined (≤ 12 UTF-8 bytes) and assigned strings, nulls, across chunks and dictionaries, read back equal and compare as DuckDB strings', async () => {
    // around the 12-byte boundary in 1-, 2-, 3- and 4-byte characters; empty; long
    const dict = ['', 'a', 'Google', 'channel-9999', 'channel-10000', 'üüüüüü', 'üüüüüüa', '€€€€', '€€€€a', '😀😀😀', '😀😀😀a',
      'https://www.nexmark.com/abc/def/item.htm?query=1', 'Walter Noris', 'spam'];
    const rnd = mulberry32(5);
    const n = 5000; // several 2048-row chunks
    const codes = new Int32Array(n);
    const valid = new Uint8Array(n);
    for (let i = 0; i < n; i++) {
      codes[i] = Math.floor(rnd() * dict.length);
      valid[i] = rnd() < 0.1 ? 0 : 1;
    }
    const db = await openMemory();
    try {
      await db.conn.run('CREATE TABLE t (i INTEGER, s VARCHAR)');
      const appender = await db.conn.createAppender('t');
      const writer = new ChunkWriter(['INTEGER', 'VARCHAR']);
      const ids = Int32Array.from({ length: n }, (_, i) => i);
      // two appends over the same dictionary (the cache), then a second dictionary in another order
      writer.append(appender, [{ type: 'int32', values: ids, valid: null }, { type: 'string', codes, dict, valid }], 0, 3000);
      writer.append(appender, [{ type: 'int32', values: ids, valid: null }, { type: 'string', codes, dict, valid }], 3000, n);
      const reversed = [...dict].reverse();
      const codes2 = codes.map((c) => dict.length - 1 - c);
      const ids2 = ids.map((i) => i + n);
      writer.append(appender, [{ type: 'int32', values: ids2, valid: null }, { type: 'string', codes: codes2, dict: reversed, valid: null }], 0, n);
      appender.flushSync();
      appender.closeSync();
      const rows = await queryRows(db.conn, 'SELECT i, s, length(s), s = \'Google\', s < \'channel-9999\' FROM t ORDER BY i');
      assert.equal(rows.length, 2 * n);
      for (let i = 0; i < 2 * n; i++) {
        const want = i < n ? (valid[i] === 1 ? dict[codes[i]!]! : null) : dict[codes[i - n]!]!;
        assert.deepEqual(rows[i], [i, want, want === null ? null : BigInt([...want].length), want === null ? null : want === 'Google', want === null ? null : want < 'channel-9999'], `row ${i}`);
      }
      // grouping and distinct see equal strings as equal, whichever way they were written
      const groups = await queryRows(db.conn, 'SELECT count(DISTINCT s) FROM t');
      assert.deepEqual(groups, [[BigInt(dict.length)]]);
    } finally {
      db.close();
    }
  });
});

describe('fixed-width columns to DuckDB', () => {
  test('columns over a SharedArrayBuffer (the outbox) at an offset, across chunks, read back equal to the same columns in plain buffers', async () => {
    const n = 5000; // several 2048-row chunks
    const rnd = mulberry32(23);
    const ints = Int32Array.from({ length: n }, () => Math.floor((rnd() * 2 - 1) * 2 ** 31));
    const words = Int32Array.from({ length: 2 * n }, () => Math.floor((rnd() * 2 - 1) * 2 ** 31));
    const doubles = Float64Array.from({ length: n }, () => (rnd() * 2 - 1) * 1e9);
    const bools = Uint8Array.from({ length: n }, () => (rnd() < 0.5 ? 1 : 0));
    const valid = Uint8Array.from({ length: n }, () => (rnd() < 0.1 ? 0 : 1));
    // the same values in one SharedArrayBuffer, each column at its own (aligned, nonzero) offset
    const sab = new SharedArrayBuffer(8 + 8 * n + 8 * n + 4 * n + n + 8);
    const at = { f: 8, w: 8 + 8 * n, i: 8 + 16 * n, b: 8 + 20 * n };
    const shared = {
      f: new Float64Array(sab, at.f, n), w: new Int32Array(sab, at.w, 2 * n), i: new Int32Array(sab, at.i, n), b: new Uint8Array(sab, at.b, n),
    };
    shared.f.set(doubles); shared.w.set(words); shared.i.set(ints); shared.b.set(bools);
    const db = await openMemory();
    try {
      await db.conn.run('CREATE TABLE t (src INTEGER, row INTEGER, i INTEGER, w BIGINT, f DOUBLE, b BOOLEAN)');
      const appender = await db.conn.createAppender('t');
      const writer = new ChunkWriter(['INTEGER', 'INTEGER', 'INTEGER', 'BIGINT', 'DOUBLE', 'BOOLEAN']);
      const rows = Int32Array.from({ length: n }, (_, r) => r);
      const append = (src: number, cols: { f: Float64Array; w: Int32Array; i: Int32Array; b: Uint8Array }, from: number, to: number): void => {
        writer.append(appender, [
          { type: 'int32', values: new Int32Array(n).fill(src), valid: null }, { type: 'int32', values: rows, valid: null },
          { type: 'int32', values: cols.i, valid }, { type: 'int64', words: cols.w, valid }, { type: 'float64', values: cols.f, valid: null },
          { type: 'bool', values: cols.b, valid: null },
        ], from, to);
      };
      // from an offset into the batch, and in two appends, as the state worker does
      append(0, { f: doubles, w: words, i: ints, b: bools }, 0, n);
      append(1, shared, 0, 1234);
      append(1, shared, 1234, n);
      appender.flushSync();
      appender.closeSync();
      const diff = await queryRows(db.conn, `SELECT count(*) FROM t a JOIN t b ON a.row = b.row AND a.src = 0 AND b.src = 1
        WHERE a.i IS NOT DISTINCT FROM b.i AND a.w IS NOT DISTINCT FROM b.w AND a.f = b.f AND a.b = b.b`);
      assert.deepEqual(diff, [[BigInt(n)]]);
      // and the plain copy holds the values themselves
      const check = await queryRows(db.conn, 'SELECT row, i, w, f, b FROM t WHERE src = 1 ORDER BY row');
      for (let r = 0; r < n; r++) {
        const w = (BigInt(words[2 * r + 1]!) << 32n) | BigInt(words[2 * r]! >>> 0);
        assert.deepEqual(check[r], [r, valid[r] === 1 ? ints[r]! : null, valid[r] === 1 ? w : null, doubles[r]!, bools[r] === 1], `row ${r}`);
      }
    } finally {
      db.close();
    }
  });
});
