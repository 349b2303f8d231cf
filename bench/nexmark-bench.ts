/**
 * `npx sluice bench nexmark` — Nexmark's queries over real sockets, one query per server as
 * Nexmark runs one query per job: `sluice serve` with the three Nexmark streams and one query's
 * pipeline (bench/nexmark.ts), `sluice gen --workload nexmark --rate 0` in another process.
 * Measured: events/s of all three types after the warm-up (gen's acknowledged count), the CPU
 * both processes used meanwhile (busy cores, from /proc), and from those events/s per busy core
 * — beside the per-core figures Flink's Nexmark suite publishes (FLINK_PER_CORE).
 *
 * q0 is Nexmark's pass-through: here the three streams with no pipeline (every event decoded,
 * checked and counted, nothing aggregated).
 *
 * DuckDB does each query in the same run: the same events appended through data chunks into a
 * DuckDB file (three tables), then the query's SQL (NEXMARK_QUERIES[q].duckdb); its events/s are
 * all events over that time.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Batch } from '../engine/schema.js';
import { loadIntoDuckDB, withTempDuckDB } from './duckdb-load.js';
import { NEXMARK_QUERIES, NEXMARK_QUERY_NAMES, NEXMARK_STREAM_NAMES, generateNexmark, nexmarkConfig, type NexmarkQuery, type NexmarkStream } from './nexmark.js';
import { runGen, startServe, stopServe } from './processes.js';
import { markdownTable, millions } from './report.js';

/**
 * Flink 1.13's Nexmark results, "Throughput/Cores" (events/s per core: 100 M events ÷ (cores ×
 * seconds), cores measured on the workers), from the nexmark/nexmark README,
 * https://github.com/nexmark/nexmark#nexmark-benchmark-result — 8 TaskManagers with one slot
 * each, parallelism 8, on 3+ workers of 8 cores; the source generates events inside Flink.
 */
export const FLINK_PER_CORE: Readonly<Record<'q0' | NexmarkQuery, number>> = {
  q0: 155_020, q1: 157_940, q2: 175_210, q5: 22_140, q7: 12_330, q12: 75_670,
};
export const FLINK_SOURCE = 'https://github.com/nexmark/nexmark#nexmark-benchmark-result (Flink 1.13, README "Nexmark Benchmark Result", Throughput/Cores)';

type Query = 'q0' | NexmarkQuery;
const QUERIES: readonly Query[] = ['q0', ...NEXMARK_QUERY_NAMES];

/** events of all types per step; the bid batch of a step is ~92 % of it */
const STEP_EVENTS = 65_536;
const CONNECTIONS = 4;
const THREADS = 2;

export interface NexmarkRow {
  readonly query: Query;
  readonly about: string;
  readonly eventsPerSecond: number;
  readonly serverCores: number | null;
  readonly genCores: number | null;
  /** events/s ÷ the server's busy cores */
  readonly perServerCore: number | null;
  /** events/s ÷ (server + gen) busy cores: Flink's source generates in-process, so this is the closer comparison */
  readonly perCoreWithGen: number | null;
  readonly flinkPerCore: number;
  readonly duckdb: number;
  readonly ok: boolean;
}

export interface NexmarkOptions {
  quick: boolean;
  log: (line: string) => void;
}

async function runQuery(q: Query, warmup: number, seconds: number): Promise<Omit<NexmarkRow, 'duckdb'>> {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-nexmark-'));
  try {
    const configPath = join(dir, 'sluice.json');
    const config = nexmarkConfig({
      dir: join(dir, 'data'), queries: q === 'q0' ? [] : [q],
      extra: { server: { host: '127.0.0.1', port: 0, maxPayload: '64MiB' }, workers: { threads: THREADS } },
    });
    writeFileSync(configPath, JSON.stringify(config));
    const serve = await startServe(configPath);
    try {
      const args = ['--url', serve.url, '--workload', 'nexmark', '--rate', '0', '--seconds', String(warmup + seconds), '--warmup', String(warmup),
        '--connections', String(CONNECTIONS), '--batch', String(STEP_EVENTS)];
      const { gen, serverCores, genCores } = await runGen(serve, args, warmup, seconds);
      const per = (cores: number | null): number | null => (cores === null || cores <= 0 ? null : Math.round(gen.eventsPerSecond / cores));
      return {
        query: q, about: q === 'q0' ? 'pass-through: every event decoded, checked and counted; no pipeline' : NEXMARK_QUERIES[q].about,
        eventsPerSecond: gen.eventsPerSecond,
        serverCores: serverCores === null ? null : Math.round(serverCores * 100) / 100,
        genCores: genCores === null ? null : Math.round(genCores * 100) / 100,
        perServerCore: per(serverCores),
        perCoreWithGen: per(serverCores === null || genCores === null ? null : serverCores + genCores),
        flinkPerCore: FLINK_PER_CORE[q],
        ok: gen.ok,
      };
    } finally {
      await stopServe(serve);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** DuckDB's events/s for query q: append the three tables, run the query into a table, checkpoint. */
async function duckdbQuery(q: Query, data: Record<NexmarkStream, Batch>, events: number): Promise<number> {
  return withTempDuckDB(async (conn) => {
    const t0 = performance.now();
    for (const s of NEXMARK_STREAM_NAMES) await loadIntoDuckDB(conn, s, data[s]);
    if (q !== 'q0') await conn.run(`CREATE TABLE ${q} AS ${NEXMARK_QUERIES[q].duckdb}`);
    await conn.run('CHECKPOINT');
    return events / ((performance.now() - t0) / 1000);
  });
}

export async function runNexmarkBench(opts: NexmarkOptions): Promise<NexmarkRow[]> {
  const { log, quick } = opts;
  const warmup = quick ? 2 : 3;
  const seconds = quick ? 5 : 10;
  const duckEvents = quick ? 1 << 21 : 1 << 23;
  // the same events for every query's DuckDB run, generated once
  const duckData = generateNexmark({ seed: 1, eventsPerSecond: 1_000_000 }, duckEvents).batches;
  const rows: NexmarkRow[] = [];
  for (const q of QUERIES) {
    log(`nexmark ${q}: ${q === 'q0' ? 'pass-through' : NEXMARK_QUERIES[q].about} ...`);
    const r = await runQuery(q, warmup, seconds);
    const duckdb = Math.round(await duckdbQuery(q, duckData, duckEvents));
    log(`     ${millions(r.eventsPerSecond)} events/s, cores: server ${r.serverCores ?? '-'} gen ${r.genCores ?? '-'}; per server core ${millions(r.perServerCore ?? 0)} (Flink ${millions(r.flinkPerCore)}); DuckDB ${millions(duckdb)}${r.ok ? '' : ' (gen reported a problem)'}`);
    rows.push({ ...r, duckdb });
  }
  return rows;
}

export function nexmarkTable(rows: readonly NexmarkRow[]): string {
  const head = ['query', 'events/s', 'server cores', 'gen cores', 'per server core', 'per core incl. gen', 'Flink per core', '× Flink', 'DuckDB events/s', '× DuckDB'];
  const body = rows.map((r) => [
    r.query, millions(r.eventsPerSecond), r.serverCores?.toFixed(2) ?? '-', r.genCores?.toFixed(2) ?? '-',
    r.perServerCore === null ? '-' : millions(r.perServerCore), r.perCoreWithGen === null ? '-' : millions(r.perCoreWithGen),
    millions(r.flinkPerCore, 3), r.perServerCore === null ? '-' : `${(r.perServerCore / r.flinkPerCore).toFixed(0)}×`,
    millions(r.duckdb), `${(r.eventsPerSecond / r.duckdb).toFixed(2)}×`,
  ]);
  return markdownTable(head, body, 1);
}
