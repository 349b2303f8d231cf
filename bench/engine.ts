/**
 * `npx sluice bench engine` — events/s through `engine.ingest` (the embeddable API, no
 * sockets) for 64 K-row Arrow batches with the bid_stats pipeline of DESIGN.md A2, in three
 * configurations — archive off, archive on, `ack: durable` — each beside DuckDB doing the same
 * work in the same run: the raw rows appended to a DuckDB file through data chunks, then the
 * pipeline's SQL over them.
 *
 * Every run: a fresh data directory, batches encoded before the clock starts, a warm-up, then
 * at most 32 batches unacknowledged (a producer respecting credits). Two rates: until the last
 * batch is acknowledged, and until flush() has committed everything to DuckDB (the archive is
 * written behind the acks, bounded by the state worker's backlog, so only the second rate
 * counts it in full). DuckDB's figure covers appending the raw rows and running the SQL.
 */

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Sluice } from '../engine/runtime.js';
import { resolveWorkerThreads } from '../engine/config.js';
import type { Batch } from '../engine/schema.js';
import { encodeArrow, encodeArrowDictionary } from '../native-free-kernels/encode-arrow.js';
import { ChunkWriter, SQL_TYPE_OF } from '../engine/duckdb-append.js';
import { bidStatsConfig } from './bids.js';
import { withTempDuckDB } from './duckdb-load.js';
import { makeBids, splitBatch } from './kernels.js';
import { markdownTable, millions } from './report.js';

export interface EngineBenchOptions {
  quick: boolean;
  log: (line: string) => void;
}

export interface EngineRow {
  name: string;
  rows: number;
  /** events per second through ingest (acknowledged) */
  sluice: number;
  /** events per second until everything is committed to DuckDB (acknowledged + flush) */
  committed: number;
  flushMs: number;
  duckdb: number;
  threads: number;
}

const BATCH = 65_536;
const IN_FLIGHT = 32;

function configFor(dir: string, mode: 'off' | 'archive' | 'durable'): Record<string, unknown> {
  return bidStatsConfig({ dir, archive: mode === 'archive', durable: mode === 'durable', parquetEvery: '1h' });
}

async function runSluice(mode: 'off' | 'archive' | 'durable', batches: readonly Uint8Array[], warm: number): Promise<{ rate: number; committed: number; flushMs: number; rows: number }> {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-bench-'));
  try {
    const engine = await Sluice.open(configFor(dir, mode));
    try {
      await Promise.all(batches.slice(0, warm).map((b) => engine.ingest('bids', b, 'arrow')));
      const timed = batches.slice(warm);
      const t0 = performance.now();
      const inflight: Promise<unknown>[] = [];
      for (const b of timed) {
        inflight.push(engine.ingest('bids', b, 'arrow'));
        if (inflight.length >= IN_FLIGHT) await inflight.shift();
      }
      await Promise.all(inflight);
      const t1 = performance.now();
      await engine.flush();
      const t2 = performance.now();
      const rows = timed.length * BATCH;
      return { rate: rows / ((t1 - t0) / 1000), committed: rows / ((t2 - t0) / 1000), flushMs: t2 - t1, rows };
    } finally {
      await engine.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** DuckDB doing the same work: append the raw rows (data chunks, one transaction), then the SQL. */
export async function runDuckDB(batches: readonly Batch[], archive: boolean): Promise<number> {
  return withTempDuckDB(async (conn) => {
    const schema = batches[0]!.schema;
    await conn.run(`CREATE TABLE bids (${schema.fields.map((f) => `"${f.name}" ${SQL_TYPE_OF[f.type]}`).join(', ')})`);
    const writer = new ChunkWriter(schema.fields.map((f) => SQL_TYPE_OF[f.type]));
    let rows = 0;
    const t0 = performance.now();
    await conn.run('BEGIN TRANSACTION');
    const appender = await conn.createAppender('bids');
    for (const b of batches) {
      writer.append(appender, b.columns, 0, b.length);
      rows += b.length;
    }
    appender.closeSync();
    await conn.run('COMMIT');
    await conn.run(`CREATE TABLE bid_stats AS
      SELECT time_bucket(INTERVAL 10 SECOND, ts) AS window_start, time_bucket(INTERVAL 10 SECOND, ts) + INTERVAL 10 SECOND AS window_end,
             auction, count(*) AS bids, max(price) AS max_price, avg(price) AS avg_price, sum(price) AS total
      FROM bids WHERE price > 100 AND channel != 'spam' GROUP BY ALL`);
    // without an archive DuckDB would not need to keep the raw rows: drop them, as Sluice does
    if (!archive) await conn.run('DROP TABLE bids');
    await conn.run('CHECKPOINT');
    return rows / ((performance.now() - t0) / 1000);
  });
}

export async function runEngineBench(opts: EngineBenchOptions): Promise<EngineRow[]> {
  const log = opts.log;
  const total = opts.quick ? 64 : 256; // batches of 64 K
  const warm = 16;
  const data = makeBids(total * BATCH, 7);
  const decoded = splitBatch(data, BATCH);
  log(`engine: ${total} batches of ${BATCH.toLocaleString('en-US')} bids (Arrow IPC), ${warm} for warm-up, ${IN_FLIGHT} unacknowledged at most`);
  const dict = decoded.map((b) => encodeArrowDictionary(b));
  const utf8 = decoded.map((b) => encodeArrow(b));
  const threads = resolveWorkerThreads('auto');
  const out: EngineRow[] = [];
  const cases: [string, 'off' | 'archive' | 'durable', Uint8Array[]][] = [
    ['archive off', 'off', dict],
    ['archive off, utf8 strings', 'off', utf8],
    ['archive on', 'archive', dict],
    ['ack: durable', 'durable', dict],
  ];
  const duckNoArchive = await runDuckDB(decoded.slice(warm), false);
  const duckArchive = await runDuckDB(decoded.slice(warm), true);
  for (const [name, mode, batches] of cases) {
    log(`running ${name} ...`);
    const r = await runSluice(mode, batches, warm);
    out.push({ name, rows: r.rows, sluice: r.rate, committed: r.committed, flushMs: r.flushMs, duckdb: mode === 'archive' ? duckArchive : duckNoArchive, threads });
  }
  return out;
}

export function engineTable(rows: EngineRow[]): string {
  const head = ['run', 'events', 'acked events/s', 'flush ms', 'committed events/s', 'DuckDB events/s', 'committed/DuckDB'];
  const body = rows.map((r) => [r.name, r.rows.toLocaleString('en-US'), millions(r.sluice), r.flushMs.toFixed(0), millions(r.committed), millions(r.duckdb), `${(r.committed / r.duckdb).toFixed(2)}×`]);
  return markdownTable(head, body);
}
