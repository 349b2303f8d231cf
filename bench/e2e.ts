/**
 * `npx sluice bench e2e` — the whole system over real sockets: `sluice serve` in one process,
 * `sluice gen` in another (its batches encoded before the clock starts, re-stamped in place),
 * both on this host, talking over 127.0.0.1.
 *
 * Three kinds of run, each against a fresh data directory and a fresh server process:
 *
 *   - the matrix: Arrow and MessagePack × archive off / on × 1 and 2 worker threads × 1 and 4
 *     connections, `gen --rate 0` (as fast as the credits allow) for warm-up + measured seconds.
 *     The rate is gen's acknowledged events/s after the warm-up; the server's own counter
 *     (GET /metrics every 500 ms) gives the same rate and the RSS over time.
 *   - latency: Arrow, archive off, 2 threads, 4 connections, paced at half the fastest Arrow /
 *     archive-off rate, in 16 K-row batches (LATENCY_BATCH_ROWS) and with 1 s windows, so that windows close every second. Ack p50 / p99 come from gen; a poller asks
 *     `/v1/sql` for `max(window_end)` every POLL_MS and so learns when each window's row became
 *     visible. The window [s, e) may close once the watermark reaches e + lateness, i.e. once
 *     an event with time ≥ e + lateness + maxOutOfOrder arrived; paced, that event's batch left
 *     gen at `firstSendAt + (index of its first event) / rate`, the event's index following from
 *     the stream's event-time rate (gen's ringEvents / spanMs). Event-to-result latency is the time
 *     from that send to the poll that saw the row (so it includes the trip over the socket and
 *     up to POLL_MS of polling).
 *   - soak: the same case at full rate for 90 s of warm-up + 60 s (1 + 20 s with --quick), with
 *     DuckDB's memory capped (SOAK_MEMORY_LIMIT); RSS and DuckDB's own memory
 *     (sluice_storage_memory_bytes) sampled throughout.
 *
 * DuckDB does the same work in the same run (bench/engine.ts runDuckDB): the same generated bids
 * appended through data chunks into a DuckDB file, then the pipeline's SQL; every row of the
 * table shows Sluice's rate / DuckDB's.
 *
 * Writes bench/results/<date>-e2e.json and bench/results/<date>-e2e.svg (throughput and RSS over
 * time of every run).
 */

import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseIsoTimestamp } from '../native-free-kernels/iso-time.js';
import { pacedDueMs, type GenSummary } from '../server/gen.js';
import { METRIC } from '../server/metrics.js';
import { requestJson } from '../server/query-cli.js';
import { BID_STATS_TIMING, bidStatsConfig, generateBidRing } from './bids.js';
import { renderChart, type Series } from './chart.js';
import { runDuckDB } from './engine.js';
import { splitBatch } from './kernels.js';
import { runGen, startServe, stopServe } from './processes.js';
import { markdownTable, millions, nearestRank } from './report.js';

export const E2E_PARTS = ['matrix', 'latency', 'soak'] as const;
export type E2ePart = (typeof E2E_PARTS)[number];

export interface E2eOptions {
  quick: boolean;
  log: (line: string) => void;
  /**
   * Run only these parts (`--only latency,soak`). Without the matrix, the latency run takes its
   * rate (unless latencyRate is given) from one unpaced run of Arrow, archive off, 2 threads,
   * 4 connections, and the soak runs that case.
   */
  only?: readonly E2ePart[];
  /** the latency run's rate (`--rate`), instead of half the fastest Arrow rate */
  latencyRate?: number;
  /** the soak's measured seconds (`--soak-seconds`), instead of 60 (20 with --quick) */
  soakSeconds?: number;
}

type Format = 'arrow' | 'msgpack';

interface Case {
  readonly format: Format;
  readonly archive: boolean;
  readonly threads: number;
  readonly connections: number;
}

interface Sample {
  /** seconds since gen started */
  readonly t: number;
  readonly events: number;
  readonly rssMiB: number;
  /** DuckDB's own memory (sluice_storage_memory_bytes); null before the first commit */
  readonly storageMiB: number | null;
}

/** Least-squares slope of RSS (MiB per second) over samples; with `lessStorage`, of RSS minus DuckDB's memory. */
export function rssSlope(samples: readonly Sample[], lessStorage: boolean): number | null {
  const points = samples.filter((s) => !lessStorage || s.storageMiB !== null).map((s) => [s.t, s.rssMiB - (lessStorage ? s.storageMiB! : 0)] as const);
  if (points.length < 2) return null;
  const mt = points.reduce((a, [t]) => a + t, 0) / points.length;
  const mv = points.reduce((a, [, v]) => a + v, 0) / points.length;
  let num = 0;
  let den = 0;
  for (const [t, v] of points) {
    num += (t - mt) * (v - mv);
    den += (t - mt) ** 2;
  }
  return den === 0 ? null : num / den;
}

/**
 * Mean RSS (and RSS less DuckDB's memory, where known) over each whole `spanS` seconds of the
 * samples, from the first: a long soak's level minute by minute, which shows whether RSS settles
 * where one slope over the whole run cannot.
 */
export function rssBySpan(samples: readonly Sample[], spanS: number): { rss: number; lessStorage: number | null }[] {
  const out: { rss: number; lessStorage: number | null }[] = [];
  if (samples.length === 0) return out;
  const t0 = samples[0]!.t;
  let span = 0;
  let n = 0;
  let rss = 0;
  let nLess = 0;
  let less = 0;
  for (const s of samples) {
    const k = Math.floor((s.t - t0) / spanS);
    if (k !== span) {
      if (n > 0) out.push({ rss: rss / n, lessStorage: nLess > 0 ? less / nLess : null });
      span = k;
      n = 0; rss = 0; nLess = 0; less = 0;
    }
    n++;
    rss += s.rssMiB;
    if (s.storageMiB !== null) {
      nLess++;
      less += s.rssMiB - s.storageMiB;
    }
  }
  // the last span only if it is whole
  const last = samples[samples.length - 1]!.t;
  if (n > 0 && last - t0 >= (span + 1) * spanS - 1) out.push({ rss: rss / n, lessStorage: nLess > 0 ? less / nLess : null });
  return out;
}

export interface E2eRow extends Case {
  readonly kind: 'matrix' | 'latency' | 'soak';
  readonly batchRows: number;
  /** gen: acknowledged events/s after the warm-up */
  readonly eventsPerSecond: number;
  /** the server's own counter over the same interval */
  readonly serverEventsPerSecond: number;
  readonly ackP50Ms: number | null;
  readonly ackP99Ms: number | null;
  readonly rssStartMiB: number;
  readonly rssEndMiB: number;
  readonly rssMaxMiB: number;
  /** RSS growth over the measured interval (least squares, MiB/s), and the same without DuckDB's own memory */
  readonly rssSlopeMiBps: number | null;
  readonly rssLessStorageSlopeMiBps: number | null;
  /** DuckDB's own memory at the start and end of the measured interval (null before a commit) */
  readonly storageStartMiB: number | null;
  readonly storageEndMiB: number | null;
  /** a soak of 120 s or more: mean RSS (and RSS less DuckDB's memory) of each measured minute */
  readonly rssByMinute?: { rss: number; lessStorage: number | null }[];
  /** CPU seconds per wall second of the server and of gen while measuring (Linux; else null) */
  readonly serverCores: number | null;
  readonly genCores: number | null;
  /** DuckDB doing the same work: events/s (archive rows kept when archive is on) */
  readonly duckdb: number;
  /** latency run: window close condition → row visible in /v1/sql */
  readonly resultLatencyMs: { p50: number; p99: number; max: number; windows: number } | null;
  readonly samples: Sample[];
  readonly ok: boolean;
}

/**
 * The result poller's period. Every poll is a /v1/sql query (~1 ms of the server's CPU, more
 * under load): at 10 ms the poller alone took a tenth to a fifth of a core of the 2, and the
 * latency run measured its own load. A row's visibility is taken when the poll that first sees
 * it answers, so the figure errs late by up to one period.
 */
const POLL_MS = 25;
const SAMPLE_MS = 500;
function config(dir: string, spec: RunSpec): Record<string, unknown> {
  return bidStatsConfig({
    dir, archive: spec.archive, windowMs: spec.windowMs, parquetEvery: '1m', memoryLimit: spec.memoryLimit,
    extra: { server: { host: '127.0.0.1', port: 0, maxPayload: '64MiB' }, workers: { threads: spec.threads } },
  });
}

// --- sampling ----------------------------------------------------------------------------------------

function metricSum(text: string, name: string): number {
  let sum = 0;
  const re = new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'gm');
  for (let m = re.exec(text); m !== null; m = re.exec(text)) sum += Number(m[1]);
  return sum;
}

class Sampler {
  readonly samples: Sample[] = [];
  private timer: NodeJS.Timeout | null = null;
  private busy = false;

  constructor(private readonly url: string, private readonly t0: number) {}

  start(): void {
    this.timer = setInterval(() => void this.take(), SAMPLE_MS);
    void this.take();
  }

  private async take(): Promise<void> {
    if (this.busy) return;
    this.busy = true;
    try {
      const text = await (await fetch(`${this.url}/metrics`)).text();
      this.samples.push({
        t: (performance.now() - this.t0) / 1000,
        events: metricSum(text, METRIC.ingestEvents),
        rssMiB: metricSum(text, 'sluice_process_resident_memory_bytes') / 2 ** 20,
        storageMiB: /^sluice_storage_memory_bytes /m.test(text) ? metricSum(text, 'sluice_storage_memory_bytes') / 2 ** 20 : null,
      });
    } catch {
      // the server is stopping
    } finally {
      this.busy = false;
    }
  }

  stop(): void {
    if (this.timer !== null) clearInterval(this.timer);
  }

  /** events/s of the server between the first and the last sample in [from, to] seconds */
  rate(from: number, to: number): number {
    const within = this.samples.filter((s) => s.t >= from && s.t <= to);
    if (within.length < 2) return 0;
    const a = within[0]!;
    const b = within[within.length - 1]!;
    return (b.events - a.events) / (b.t - a.t);
  }
}

/** Polls `max(window_end)` and remembers when each new window end was first seen. */
class ResultPoller {
  readonly seen: { windowEnd: number; at: number }[] = [];
  private last = -Infinity;
  private stopped = false;
  private loop: Promise<void> | null = null;

  constructor(private readonly url: string) {}

  start(): void {
    this.loop = this.run();
  }

  private async run(): Promise<void> {
    const body = JSON.stringify({ sql: 'SELECT epoch_ms(max(window_end))::DOUBLE FROM bid_stats' });
    while (!this.stopped) {
      const started = Date.now();
      try {
        const answer = await requestJson(`${this.url}/v1/sql`, { method: 'POST', body, timeoutMs: 5000 });
        const at = Date.now();
        const v = (answer.body as { rows: (number | null)[][] }).rows[0]?.[0] ?? null;
        if (v !== null && v > this.last) {
          this.seen.push({ windowEnd: v, at });
          this.last = v;
        }
      } catch {
        // the server is stopping
      }
      const wait = POLL_MS - (Date.now() - started);
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.loop;
  }
}

// --- one run ---------------------------------------------------------------------------------------------

interface RunSpec extends Case {
  readonly kind: E2eRow['kind'];
  readonly rate: number;
  readonly warmup: number;
  readonly seconds: number;
  readonly batchRows: number;
  readonly windowMs: number;
  /** storage.memoryLimit, when the run sets one */
  readonly memoryLimit?: string;
  /** gen's --ramp in seconds, when the run sets one */
  readonly ramp?: number;
}

interface RunResult {
  readonly gen: GenSummary;
  readonly samples: Sample[];
  readonly serverRate: number;
  readonly serverCores: number | null;
  readonly genCores: number | null;
  readonly latency: E2eRow['resultLatencyMs'];
}

async function runOnce(spec: RunSpec): Promise<RunResult> {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-e2e-'));
  try {
    const configPath = join(dir, 'sluice.json');
    writeFileSync(configPath, JSON.stringify(config(join(dir, 'data'), spec)));
    const serve = await startServe(configPath);
    try {
      const t0 = performance.now();
      const sampler = new Sampler(serve.url, t0);
      sampler.start();
      const poller = spec.kind === 'latency' ? new ResultPoller(serve.url) : null;
      poller?.start();
      const genArgs = ['--url', serve.url, '--rate', String(spec.rate), '--seconds', String(spec.warmup + spec.seconds), '--warmup', String(spec.warmup),
        '--format', spec.format, '--connections', String(spec.connections), '--batch', String(spec.batchRows),
        ...(spec.ramp === undefined ? [] : ['--ramp', String(spec.ramp)])];
      const { gen, serverCores, genCores } = await runGen(serve, genArgs, spec.warmup, spec.seconds);
      sampler.stop();
      await poller?.stop();
      // the server's rate over gen's measured interval (gen starts its clock after building the ring)
      const last = sampler.samples[sampler.samples.length - 1]?.t ?? 0;
      const serverRate = sampler.rate(Math.max(0, last - gen.seconds), last);
      let latency: E2eRow['resultLatencyMs'] = null;
      if (poller !== null && gen.firstSendAt !== null) {
        const start = parseIsoTimestamp(gen.start);

        const waits: number[] = [];
        let previous = -Infinity;
        for (const { windowEnd, at } of poller.seen) {
          // every window end in (previous, windowEnd] became visible at `at`; the first sighting
          // may be of windows that closed before polling began: skip it
          if (previous !== -Infinity) {
            for (let e = previous + spec.windowMs; e <= windowEnd; e += spec.windowMs) {
              const closingTime = e + BID_STATS_TIMING.latenessMs + BID_STATS_TIMING.maxOutOfOrderMs;
              const sentAt = dueAtEventTime(closingTime, { start, firstSendAt: gen.firstSendAt, ringEvents: gen.generator.ringEvents,
                spanMs: gen.generator.spanMs, batchRows: spec.batchRows, rate: spec.rate, rampMs: (spec.ramp ?? 0) * 1000 });
              if (closingTime - start > (spec.warmup + spec.seconds) * 1000) continue; // closed by the idle clock, not by data
              waits.push(at - sentAt);
            }
          }
          previous = windowEnd;
        }
        waits.sort((a, b) => a - b);
        if (waits.length > 0) latency = { p50: nearestRank(waits, 50), p99: nearestRank(waits, 99), max: waits[waits.length - 1]!, windows: waits.length };
      }
      return { gen, samples: sampler.samples, serverRate, serverCores, genCores, latency };
    } finally {
      await stopServe(serve);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

// --- the suite -------------------------------------------------------------------------------------------------

const BATCH_ROWS: Record<Format, number> = { arrow: 65_536, msgpack: 16_384 };
/**
 * The latency run's batches: a batch is acknowledged once a worker decoded and aggregated all of
 * it, so its size sets the floor of the ack latency (64 K rows ≈ 7 ms of one worker). At 5 M
 * events/s on this machine, 64 K-row batches gave ack p99 25 ms, 32 K 21 ms, 16 K 17 ms.
 */
const LATENCY_BATCH_ROWS = 16_384;
/**
 * The latency run's warm-up. For 1.5–3 s after a start the workers run code V8 has not
 * optimised yet and fall behind: ack p99 230–350 ms in gen's first second. The backlog then
 * drains at the server's spare rate, which shrinks as the paced rate nears what 16 K-row
 * batches into 1 s windows allow: at 6–7 M events/s p99 was 12–35 ms a second from the third
 * or fourth second on; at 8.68 M (half of 17.36 M, 2026-11-22) it was 341, 203, 157, 138, 136,
 * 110, 95, 79 ms in seconds 1–8 and 5–30 ms from the ninth on, so a 5 s warm-up put three
 * seconds of catching up into the measured p99 (65–104 ms in three runs). The target is the
 * steady state: this run warms up 10 s.
 */
const LATENCY_WARMUP_S = 10;
/**
 * The latency run's send rate rises from 0 over its first 5 s (gen --ramp), so the server's code
 * warms up below the measured rate. Started cold at 11.4 M events/s, the backlog of the first
 * seconds (unoptimised code) drained at the 15 % of capacity left over, past the 10 s warm-up in
 * some runs: per-second ack p99 98-220 ms through the first 10 s and 76 ms in the first measured
 * one (p99 69.7 ms over the run). After 8 s at 5 M events/s instead, three runs gave ack p99
 * 10.7 / 10.8 / 19.3 ms (2026-11-22).
 */
const LATENCY_RAMP_S = 5;
/**
 * The soak's warm-up and DuckDB's memory limit. RSS has two parts that grow at first:
 * - the JS heaps and the allocators' arenas reach their working size within the first minute
 *   at full rate (RSS less DuckDB's memory ~600 → ~700 MiB, then 700–754 MiB from 60 s to
 *   300 s in a 300 s run; heap snapshots at 35 s and 110 s: the same 18 MiB live on the main
 *   thread);
 * - DuckDB keeps the blocks it writes cached until its memory limit (DuckDB's default: 80 % of
 *   RAM): the result table's blocks, +0.3–0.5 MiB/s at this rate. With storage.memoryLimit
 *   96MiB its memory levels off at 50–90 MiB (the WAL's rows come and go) from ~90 s.
 * The target is RSS flat at the steady rate, so the soak caps DuckDB as a deployment would and
 * measures its 60 s after 90 s at full rate (measured by hand, 160 s: RSS 643–693 MiB from 60 s,
 * 650–693 MiB from 90 s with no trend).
 */
const SOAK_WARMUP_S = 90;
const SOAK_MEMORY_LIMIT = '96MiB';

/** What a paced gen run says about its stream (GenSummary fields). */
export interface PacedStream {
  /** event time of the first event, ms */
  readonly start: number;
  /** wall clock of the first send, ms */
  readonly firstSendAt: number;
  readonly ringEvents: number;
  readonly spanMs: number;
  readonly batchRows: number;
  /** paced events per second */
  readonly rate: number;
  /** gen's --ramp in ms (0: full rate from the first send) */
  readonly rampMs: number;
}

/**
 * When the batch holding the stream's first event at or after event time `t` was due to leave
 * gen (a paced run without disorder). Event time runs at ringEvents / spanMs events per ms, not
 * at the paced rate: gen's ring spans a whole number of ms, off by up to 0.5 ms a lap — up to
 * ~80 ms over a 30 s run at 8.7 M events/s, which a model at the paced rate counted as negative
 * latencies.
 */
export function dueAtEventTime(t: number, s: PacedStream): number {
  // event j's time is start + floor(j · spanMs / ringEvents), whole ms
  const index = Math.ceil((Math.ceil(t - s.start) * s.ringEvents) / s.spanMs);
  const batch = Math.floor(index / s.batchRows);
  return s.firstSendAt + pacedDueMs(batch * s.batchRows, s.rate, s.rampMs);
}

/** DuckDB's events/s for the same bids (gen's seed 1 and shape), archive off and on. */
async function duckdbBaseline(events: number): Promise<{ off: number; on: number }> {
  const batches = splitBatch(generateBidRing({ seed: 1, eventsPerSecond: 1_000_000 }, events).batch, 65_536);
  return { off: await runDuckDB(batches, false), on: await runDuckDB(batches, true) };
}

function row(spec: RunSpec, r: RunResult, duckdb: number): E2eRow {
  const measured = r.samples.filter((s) => s.t >= (r.samples[r.samples.length - 1]?.t ?? 0) - r.gen.seconds);
  const rss = measured.length > 0 ? measured : r.samples;
  return {
    kind: spec.kind, format: spec.format, archive: spec.archive, threads: spec.threads, connections: spec.connections, batchRows: spec.batchRows,
    eventsPerSecond: r.gen.eventsPerSecond, serverEventsPerSecond: Math.round(r.serverRate),
    ackP50Ms: r.gen.ackLatencyMs.p50, ackP99Ms: r.gen.ackLatencyMs.p99,
    rssStartMiB: Math.round(rss[0]?.rssMiB ?? 0), rssEndMiB: Math.round(rss[rss.length - 1]?.rssMiB ?? 0),
    rssMaxMiB: Math.round(Math.max(0, ...rss.map((s) => s.rssMiB))),
    rssSlopeMiBps: round2(rssSlope(measured, false)), rssLessStorageSlopeMiBps: round2(rssSlope(measured, true)),
    storageStartMiB: round2(measured[0]?.storageMiB ?? null), storageEndMiB: round2(measured[measured.length - 1]?.storageMiB ?? null),
    ...(spec.kind === 'soak' && spec.seconds >= 120 ? { rssByMinute: rssBySpan(measured, 60) } : {}),
    serverCores: round2(r.serverCores),
    genCores: round2(r.genCores),
    duckdb: Math.round(duckdb), resultLatencyMs: r.latency, samples: r.samples, ok: r.gen.ok,
  };
}

export interface E2eReport {
  /** `e2e`, or `e2e-<parts>` for a partial run (the JSON and chart file names) */
  name: string;
  rows: E2eRow[];
  duckdb: { off: number; on: number; events: number };
  chart: string;
}

/** The case of the latency run, and of the soak when the matrix does not run. */
const LATENCY_CASE: Case = { format: 'arrow', archive: false, threads: 2, connections: 4 };

export async function runE2eBench(opts: E2eOptions, outDir: string, stamp: string): Promise<E2eReport> {
  const { log, quick } = opts;
  const parts = new Set<E2ePart>(opts.only ?? E2E_PARTS);
  const warmup = quick ? 1 : 3;
  const seconds = quick ? 4 : 10;
  const duckEvents = quick ? 1 << 20 : 1 << 22;
  log(`e2e: DuckDB baseline over ${duckEvents.toLocaleString('en-US')} bids ...`);
  const duck = await duckdbBaseline(duckEvents);
  const rows: E2eRow[] = [];
  const cases: Case[] = [];
  if (parts.has('matrix')) {
    for (const format of ['arrow', 'msgpack'] as const) {
      for (const archive of [false, true]) {
        for (const threads of [1, 2]) {
          for (const connections of [1, 4]) cases.push({ format, archive, threads, connections });
        }
      }
    }
  } else if (parts.has('latency') && opts.latencyRate === undefined) {
    cases.push(LATENCY_CASE);
  }
  for (const c of cases) {
    const spec: RunSpec = { ...c, kind: 'matrix', rate: 0, warmup, seconds, batchRows: BATCH_ROWS[c.format], windowMs: 10_000 };
    log(`e2e: ${describe(spec)} ...`);
    const r = await runOnce(spec);
    const out = row(spec, r, c.archive ? duck.on : duck.off);
    log(`     ${millions(out.eventsPerSecond)} events/s (server ${millions(out.serverEventsPerSecond)}), ack p99 ${ms(out.ackP99Ms)}, RSS ${out.rssEndMiB} MiB, cores: server ${out.serverCores ?? '-'} gen ${out.genCores ?? '-'}${out.ok ? '' : ' (gen reported a problem)'}`);
    rows.push(out);
  }
  const best: E2eRow | undefined = rows.filter((r) => r.format === 'arrow' && !r.archive).sort((a, b) => b.eventsPerSecond - a.eventsPerSecond)[0];
  // the soak runs the fastest case; the latency run the one with the most parallelism (2 threads,
  // 4 connections), at half the fastest rate: with one connection and one worker a batch waits
  // behind the one before it (measured: ack p99 49.7 ms against 16.9 ms at 5 M events/s)
  if (parts.has('latency')) {
    const half = opts.latencyRate ?? Math.max(10_000, Math.round(best!.eventsPerSecond / 2 / 1000) * 1000);
    const spec: RunSpec = {
      ...LATENCY_CASE, kind: 'latency', rate: half, warmup: quick ? warmup : LATENCY_WARMUP_S, seconds: quick ? 12 : 20, batchRows: LATENCY_BATCH_ROWS, windowMs: 1000,
      ramp: quick ? 0 : LATENCY_RAMP_S,
    };
    log(`e2e: latency — ${describe(spec)} at ${millions(half)} events/s, 1 s windows ...`);
    const out = row(spec, await runOnce(spec), duck.off);
    log(`     ack p50 ${ms(out.ackP50Ms)} p99 ${ms(out.ackP99Ms)}; result visible p50 ${ms(out.resultLatencyMs?.p50 ?? null)} p99 ${ms(out.resultLatencyMs?.p99 ?? null)} over ${out.resultLatencyMs?.windows ?? 0} windows`);
    rows.push(out);
  }
  if (parts.has('soak')) {
    const base: Case = best === undefined ? LATENCY_CASE : { format: 'arrow', archive: false, threads: best.threads, connections: best.connections };
    const spec: RunSpec = {
      ...base, kind: 'soak', rate: 0, warmup: quick ? warmup : SOAK_WARMUP_S, seconds: opts.soakSeconds ?? (quick ? 20 : 60), batchRows: BATCH_ROWS.arrow, windowMs: 10_000, memoryLimit: SOAK_MEMORY_LIMIT,
    };
    log(`e2e: soak — ${describe(spec)}, storage.memoryLimit ${SOAK_MEMORY_LIMIT}, for ${spec.warmup} + ${spec.seconds} s ...`);
    const out = row(spec, await runOnce(spec), duck.off);
    log(`     ${millions(out.eventsPerSecond)} events/s; RSS ${out.rssStartMiB} → ${out.rssEndMiB} MiB (max ${out.rssMaxMiB}), ${slope(out.rssSlopeMiBps)}; `
      + `DuckDB's memory ${out.storageStartMiB ?? '-'} → ${out.storageEndMiB ?? '-'} MiB; RSS less DuckDB's ${slope(out.rssLessStorageSlopeMiBps)}`);
    if (out.rssByMinute !== undefined) {
      log(`     RSS by minute (less DuckDB's): ${out.rssByMinute.map((m) => `${Math.round(m.rss)} (${m.lessStorage === null ? '-' : Math.round(m.lessStorage)})`).join(', ')} MiB`);
    }
    rows.push(out);
  }
  mkdirSync(outDir, { recursive: true });
  const ran = E2E_PARTS.filter((p) => parts.has(p));
  const name = ran.length === E2E_PARTS.length ? 'e2e' : `e2e-${ran.join('-')}`;
  const chart = join(outDir, `${stamp}-${name}.svg`);
  writeFileSync(chart, renderChart(chartSeries(rows), { title: `sluice bench ${name} — ${stamp}` }));
  return { name, rows, duckdb: { ...duck, events: duckEvents }, chart };
}

function describe(c: Case): string {
  return `${c.format}, archive ${c.archive ? 'on' : 'off'}, ${c.threads} thread${c.threads === 1 ? '' : 's'}, ${c.connections} connection${c.connections === 1 ? '' : 's'}`;
}

function chartSeries(rows: E2eRow[]): Series[] {
  return rows.map((r) => {
    const rate: [number, number][] = [];
    for (let i = 1; i < r.samples.length; i++) {
      const a = r.samples[i - 1]!;
      const b = r.samples[i]!;
      if (b.t > a.t) rate.push([b.t, (b.events - a.events) / (b.t - a.t)]);
    }
    return {
      name: r.kind === 'matrix' ? describe(r) : `${r.kind}: ${describe(r)}`,
      emphasis: r.kind !== 'matrix',
      throughput: rate,
      rss: r.samples.map((s) => [s.t, s.rssMiB] as [number, number]),
    };
  });
}

const slope = (v: number | null): string => (v === null ? '-' : `${v >= 0 ? '+' : ''}${v.toFixed(2)} MiB/s`);
const round2 = (v: number | null): number | null => (v === null ? null : Math.round(v * 100) / 100);
const ms = (v: number | null): string => (v === null ? '-' : `${v.toFixed(1)} ms`);

export function e2eTable(report: E2eReport): string {
  const head = ['run', 'format', 'archive', 'threads', 'conns', 'events/s', 'ack p50', 'ack p99', 'result p99', 'RSS end', 'server cores', 'DuckDB events/s', 'ratio'];
  const body = report.rows.map((r) => [
    r.kind, r.format, r.archive ? 'on' : 'off', String(r.threads), String(r.connections), millions(r.eventsPerSecond), ms(r.ackP50Ms), ms(r.ackP99Ms),
    r.resultLatencyMs === null ? '' : ms(r.resultLatencyMs.p99), `${r.rssEndMiB} MiB`, r.serverCores === null ? '-' : r.serverCores.toFixed(2),
    millions(r.duckdb), `${(r.eventsPerSecond / r.duckdb).toFixed(2)}×`,
  ]);
  return markdownTable(head, body, 3);
}
