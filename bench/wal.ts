/**
 * `node dist/bench/wal.js [--seconds N] [--dir DIR] [--json]` — what the durable ingest log
 * (engine/wal.ts) costs on this machine, and the alternative it was chosen over:
 *
 *   checksum   CRC-32 throughput: the slice-by-8 table in TypeScript, node:zlib's native
 *              crc32, and crc32() (which picks one by input size) — the log needs > 1 GB/s
 *              (2 M events/s x ~40 bytes is 80 MB/s of payload, checksummed on the main thread)
 *   log        closed-loop clients (1, 8, 64), each appending 4 KiB or 64 KiB frames and
 *              waiting for the ack, group commit every 2 ms:
 *                segments  engine/wal.ts — CRC-framed segment files, pwrite + fdatasync
 *                duckdb    the frames as BLOB rows of a DuckDB table, one transaction per
 *                          group commit (DuckDB fsyncs its WAL on commit, and checkpoints it
 *                          into the database file once it passes 16 MiB)
 *              MiB/s of payload acknowledged, p50 / p99 ack latency, commits (fsyncs) per s.
 *
 * Data is seeded; each cell runs in a fresh directory after a short warm-up. Numbers go to
 * docs/durability.md.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { availableParallelism, cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import zlib from 'node:zlib';
import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';
import { crc32, crc32Portable, nativeCrc32Available, Wal } from '../engine/wal.js';
import { mulberry32 } from './random.js';

interface Args {
  seconds: number;
  dir: string;
  json: boolean;
}

function parseArgs(argv: string[]): Args {
  const args: Args = { seconds: 3, dir: tmpdir(), json: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--json') args.json = true;
    else if (a === '--seconds') args.seconds = Number(argv[++i]);
    else if (a === '--dir') args.dir = argv[++i]!;
    else throw new Error(`bench/wal: unknown option ${a} (--seconds N, --dir DIR, --json)`);
  }
  if (!(args.seconds > 0)) throw new Error('bench/wal: --seconds must be positive');
  return args;
}

function randomBytes(seed: number, size: number): Uint8Array {
  const rng = mulberry32(seed);
  const out = new Uint8Array(size);
  for (let i = 0; i < size; i++) out[i] = (rng() * 256) | 0;
  return out;
}

// --- checksum --------------------------------------------------------------------------------------

interface ChecksumRow {
  bytes: number;
  tableGBs: number;
  nativeGBs: number | null;
  chosenGBs: number;
}

function gbPerSecond(fn: (b: Uint8Array) => number, input: Uint8Array): number {
  const reps = Math.max(4, Math.floor((256 * 1024 * 1024) / input.length));
  let sink = 0;
  for (let i = 0; i < reps / 4; i++) sink ^= fn(input);
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < reps; i++) sink ^= fn(input);
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  if (sink === 0.5) throw new Error('unreachable'); // keeps the loop from being optimised away
  return (input.length * reps) / seconds / 1e9;
}

function checksumBench(): ChecksumRow[] {
  const data = randomBytes(1, 1 << 20);
  const rows: ChecksumRow[] = [];
  for (const size of [64, 256, 1024, 4096, 65536, 1 << 20]) {
    const input = data.subarray(0, size);
    rows.push({
      bytes: size,
      tableGBs: gbPerSecond((b) => crc32Portable(b), input),
      nativeGBs: nativeCrc32Available ? gbPerSecond((b) => zlib.crc32(b), input) : null,
      chosenGBs: gbPerSecond((b) => crc32(b), input),
    });
  }
  return rows;
}

// --- the two logs ---------------------------------------------------------------------------------

interface Log {
  append(client: number, seq: number, bytes: Uint8Array): Promise<void>;
  commits(): number;
  close(): Promise<void>;
}

async function segmentLog(dir: string): Promise<Log> {
  const wal = await Wal.open(dir, { groupCommitMs: 2 });
  const names: string[] = [];
  return {
    append: (client, seq, bytes) => wal.append({ stream: (names[client] ??= `c${client}`), seq, format: 'arrow', bytes }),
    commits: () => wal.stats().syncs,
    close: () => wal.close(),
  };
}

/**
 * The same group commit as engine/wal.ts (commit at once when idle, at most one commit per
 * 2 ms, one at a time), with a DuckDB transaction in place of pwrite + fdatasync.
 */
async function duckdbLog(dir: string): Promise<Log> {
  const instance = await DuckDBInstance.create(join(dir, 'wal.duckdb'));
  const conn: DuckDBConnection = await instance.connect();
  await conn.run('CREATE TABLE wal (stream VARCHAR, seq BIGINT, format UTINYINT, payload BLOB)');
  interface Pending { client: number; seq: number; bytes: Uint8Array; resolve: () => void; reject: (e: unknown) => void }
  let open: Pending[] = [];
  let busy = false;
  let scheduled = false;
  let last = -Infinity;
  let commits = 0;
  const run = async (): Promise<void> => {
    scheduled = false;
    const batch = open;
    open = [];
    busy = true;
    last = performance.now();
    try {
      await conn.run('BEGIN TRANSACTION');
      const appender = await conn.createAppender('wal');
      for (const p of batch) {
        appender.appendVarchar(`c${p.client}`);
        appender.appendBigInt(BigInt(p.seq));
        appender.appendUTinyInt(1);
        appender.appendBlob(p.bytes);
        appender.endRow();
      }
      appender.closeSync();
      await conn.run('COMMIT');
      commits++;
      for (const p of batch) p.resolve();
    } catch (err) {
      for (const p of batch) p.reject(err);
    }
    busy = false;
    kick();
  };
  const kick = (): void => {
    if (busy || scheduled || open.length === 0) return;
    scheduled = true;
    const wait = last + 2 - performance.now();
    if (wait > 0) setTimeout(() => void run(), wait);
    else setImmediate(() => void run());
  };
  return {
    append: (client, seq, bytes) => new Promise<void>((resolve, reject) => {
      // DuckDB reads the bytes only at commit time: copy, as the segment log does
      open.push({ client, seq, bytes: bytes.slice(), resolve, reject });
      kick();
    }),
    commits: () => commits,
    close: async () => {
      while (busy || open.length > 0) await new Promise((r) => setTimeout(r, 5));
      conn.closeSync();
      instance.closeSync();
    },
  };
}

interface LogRow {
  log: 'segments' | 'duckdb';
  frameBytes: number;
  clients: number;
  mibPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  commitsPerSecond: number;
  appends: number;
}

async function measure(kind: LogRow['log'], root: string, frameBytes: number, clients: number, seconds: number): Promise<LogRow> {
  const dir = mkdtempSync(join(root, `sluice-bench-wal-${kind}-`));
  try {
    const log = kind === 'segments' ? await segmentLog(dir) : await duckdbLog(dir);
    const payload = randomBytes(frameBytes, frameBytes);
    const seqs = new Array<number>(clients).fill(0);
    const latencies: number[] = [];
    const loop = async (client: number, until: number, record: boolean): Promise<void> => {
      while (performance.now() < until) {
        const t = performance.now();
        await log.append(client, ++seqs[client]!, payload);
        if (record) latencies.push(performance.now() - t);
      }
    };
    const clientIds = Array.from({ length: clients }, (_, i) => i);
    const warm = performance.now() + Math.min(500, seconds * 200);
    await Promise.all(clientIds.map((c) => loop(c, warm, false)));
    const commits0 = log.commits();
    const t0 = performance.now();
    await Promise.all(clientIds.map((c) => loop(c, t0 + seconds * 1000, true)));
    const elapsed = (performance.now() - t0) / 1000;
    const commits = log.commits() - commits0;
    await log.close();
    latencies.sort((a, b) => a - b);
    const at = (q: number): number => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? NaN;
    return {
      log: kind, frameBytes, clients,
      mibPerSecond: (latencies.length * frameBytes) / elapsed / 2 ** 20,
      p50Ms: at(0.5), p99Ms: at(0.99),
      commitsPerSecond: commits / elapsed,
      appends: latencies.length,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

// --- main ----------------------------------------------------------------------------------------

function fmt(n: number | null, digits: number): string {
  return n === null ? '—' : n.toFixed(digits);
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const log = (line: string): void => void process.stderr.write(`${line}\n`);
  const machine = { node: process.version, cpu: cpus()[0]?.model ?? 'unknown', cores: availableParallelism() };
  log(`machine: ${machine.cpu}, ${machine.cores} cores, Node ${machine.node}; logs under ${args.dir}`);

  const checksum = checksumBench();
  const lines = ['| bytes | TS slice-by-8 GB/s | node:zlib crc32 GB/s | crc32() GB/s |', '| ---: | ---: | ---: | ---: |'];
  for (const r of checksum) lines.push(`| ${r.bytes} | ${fmt(r.tableGBs, 2)} | ${fmt(r.nativeGBs, 2)} | ${fmt(r.chosenGBs, 2)} |`);
  process.stdout.write(`\nchecksum (CRC-32)\n\n${lines.join('\n')}\n`);

  const rows: LogRow[] = [];
  for (const frameBytes of [65536, 4096]) {
    for (const clients of [1, 8, 64]) {
      for (const kind of ['segments', 'duckdb'] as const) {
        const row = await measure(kind, args.dir, frameBytes, clients, args.seconds);
        log(`${kind} ${frameBytes} B x ${clients}: ${row.mibPerSecond.toFixed(1)} MiB/s, p50 ${row.p50Ms.toFixed(2)} ms, p99 ${row.p99Ms.toFixed(2)} ms`);
        rows.push(row);
      }
    }
  }
  const t = ['| frame | clients | log | MiB/s | p50 ms | p99 ms | commits/s |', '| ---: | ---: | --- | ---: | ---: | ---: | ---: |'];
  for (const r of rows) {
    t.push(`| ${r.frameBytes / 1024} KiB | ${r.clients} | ${r.log} | ${fmt(r.mibPerSecond, 1)} | ${fmt(r.p50Ms, 2)} | ${fmt(r.p99Ms, 2)} | ${fmt(r.commitsPerSecond, 0)} |`);
  }
  process.stdout.write(`\ndurable log, group commit every 2 ms, ${args.seconds} s per cell\n\n${t.join('\n')}\n`);
  if (args.json) process.stdout.write(`${JSON.stringify({ date: new Date().toISOString(), machine, checksum, log: rows }, null, 2)}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
  process.exit(1);
});
