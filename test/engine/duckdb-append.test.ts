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
