/**
 * One PoolTask (one or more consecutive batches of one stream), start to finish:
 *
 *   1. decode every batch from its slab (a bad batch is rejected alone, with its SLUICE_ code)
 *   2. concatenate the good ones (small batches were coalesced to pay the task cost once)
 *   3. watermark chain: wait for the previous task's largest event time, publish ours
 *   4. per pipeline of the stream: the window operator → partial, late rows
 *   5. partials, late rows and (archive: true) every row as parcels in a PoolResult, written into
 *      the worker's shared outbox (engine/outbox.ts)
 *
 * Compiled plans are built once per runner (one runner per worker thread).
 */

import type { SluiceConfig } from './config.js';
import { streamSchemaOf } from './config.js';
import { asSluiceError } from './errors.js';
import { compilePipeline, type PipelinePlan } from './plan.js';
import type { Batch, StreamSchema, StringColumn, TimestampColumn } from './schema.js';
import type { PieceOutcome, PoolResult, PoolTask } from './protocol.js';
import { WindowAggregator, type LateInput } from './window-aggregate.js';
import { WatermarkChain } from './watermark-chain.js';
import { Outbox } from './outbox.js';
import { decodeBatch, type DecodeScratch } from '../native-free-kernels/decode.js';
import { concatBatches } from '../native-free-kernels/concat.js';
import { serializePartial } from '../native-free-kernels/partial.js';
import { serializeRows } from '../native-free-kernels/column-batch.js';

interface PipelineRuntime {
  readonly plan: PipelinePlan;
  readonly aggregator: WindowAggregator;
}

interface StreamRuntime {
  readonly schema: StreamSchema;
  readonly eventTime: number;
  readonly maxOutOfOrder: number;
  readonly archive: boolean;
  readonly pipelines: readonly PipelineRuntime[];
}

const iso = (ms: number): string => (Number.isFinite(ms) && Math.abs(ms) <= 8.64e15 ? new Date(ms).toISOString() : String(ms));

/**
 * The decoders' arrays for one task (DecodeOptions.scratch), carved from one ArrayBuffer that
 * is reused task after task: nothing decoded outlives its task (partials, late and archived
 * rows leave as bytes in the outbox). Fresh arrays per batch made the pool workers' V8 start a
 * full GC several times a second for the external memory alone (docs/benchmarks.md, log).
 */
export class TaskArena implements DecodeScratch {
  private buffer = new ArrayBuffer(1 << 20);
  private offset = 0;

  /** Forget every array handed out (they must no longer be in use). */
  reset(): void {
    this.offset = 0;
  }

  f64(n: number): Float64Array {
    const at = this.take(8 * n);
    return new Float64Array(this.buffer, at, n);
  }

  i32(n: number): Int32Array {
    const at = this.take(4 * n);
    return new Int32Array(this.buffer, at, n);
  }

  u8(n: number): Uint8Array {
    const at = this.take(n);
    return new Uint8Array(this.buffer, at, n);
  }

  /** Offset of `bytes` zeroed bytes, 8-aligned, in `buffer` (a bigger buffer when they do not fit). */
  private take(bytes: number): number {
    if (this.offset + bytes > this.buffer.byteLength) {
      // a bigger arena from here on; arrays handed out this task keep the old one alive
      this.buffer = new ArrayBuffer(Math.max(2 * this.buffer.byteLength, bytes));
      this.offset = 0;
    }
    const at = this.offset;
    new Uint8Array(this.buffer, at, bytes).fill(0);
    this.offset = at + ((bytes + 7) & ~7);
    return at;
  }
}

/** Runs tasks for one config; one per worker thread (tests use it directly). */
export class TaskRunner {
  private readonly config: SluiceConfig;
  private readonly streams = new Map<string, StreamRuntime>();
  private readonly chains = new WeakMap<SharedArrayBuffer, WatermarkChain>();
  private wmScratch = new Float64Array(0);
  /** the decoders' arrays, reset at the start of every task (grows to the largest task's needs) */
  private readonly arena = new TaskArena();
  private readonly outbox: Outbox;
  private readonly alloc: (size: number) => Uint8Array;

  constructor(config: SluiceConfig, outbox = new Outbox()) {
    this.config = config;
    this.outbox = outbox;
    this.alloc = (size) => outbox.alloc(size);
  }

  /** Decode, chain, aggregate: the whole task (see the file header). */
  run(task: PoolTask): PoolResult {
    const s = this.streamRuntime(task.stream);
    const chain = this.chainOf(task.chain);
    // lets the dispatcher hand out the stream's next task (runtime.ts, gateOpen)
    chain.markStarted(task.t);
    const t0 = performance.now();
    const fallbacksBefore = this.outbox.fallbacks;

    // 1 + 2. decode each batch on its own: one bad batch must not take the others down
    const outcomes: PieceOutcome[] = [];
    const good: Batch[] = [];
    this.arena.reset(); // the previous task's batches are gone: its results left as bytes
    for (const p of task.pieces) {
      try {
        const batch = decodeBatch(new Uint8Array(p.buffer, p.offset, p.length), p.format, s.schema, { eventTime: s.eventTime, scratch: this.arena });
        outcomes.push({ seq: p.seq, rows: batch.length });
        if (batch.length > 0) good.push(batch);
      } catch (err) {
        outcomes.push({ seq: p.seq, error: asSluiceError(err).toJSON() });
      }
    }
    const batch = good.length === 0 ? null : concatBatches(good);
    const ts = batch === null ? null : (batch.columns[s.eventTime] as TimestampColumn).values;
    // the batch's largest event time, and the largest before its last row (for the watermarks)
    let batchMax = -Infinity;
    let maxButLast = -Infinity;
    if (batch !== null && ts !== null) {
      const last = batch.length - 1;
      for (let i = 0; i < last; i++) if (ts[i]! > maxButLast) maxButLast = ts[i]!;
      batchMax = Math.max(maxButLast, ts[last]!);
    }
    const t1 = performance.now();

    // 3. the only sequential step: the stream's largest event time before this task
    const before = chain.waitFor(task.t - 1);
    const maxEventTime = Math.max(before, batchMax);
    chain.publish(task.t, maxEventTime);

    const partials: { pipeline: string; bytes: Uint8Array; rows: number }[] = [];
    const late: { pipeline: string; bytes: Uint8Array; count: number }[] = [];
    let archive: Uint8Array | null = null;
    const seqFirst = task.pieces[0]!.seq;
    if (batch !== null && ts !== null) {
      const wm = this.watermarks(ts, batch.length, before, s.maxOutOfOrder, maxButLast);
      // 4. every pipeline of the stream over the same decoded batch
      for (const p of s.pipelines) {
        const partial = p.aggregator.run(batch, seqFirst, wm);
        const a = p.aggregator;
        partials.push({ pipeline: p.plan.name, bytes: serializePartial(partial, this.alloc), rows: a.passed });
        if (a.lateCount > 0) {
          const reasons = lateReasons(p.plan, a.lateRows, a.lateInfo, a.lateCount, wm.wm, ts);
          late.push({ pipeline: p.plan.name, bytes: serializeRows(batch, a.lateRows, a.lateCount, reasons, this.alloc), count: a.lateCount });
        }
      }
      if (s.archive) archive = serializeRows(batch, null, batch.length, undefined, this.alloc);
    }
    const t2 = performance.now();

    return {
      stream: task.stream,
      t: task.t,
      seqFirst,
      seqLast: task.pieces[task.pieces.length - 1]!.seq,
      maxEventTime,
      rows: batch === null ? 0 : batch.length,
      partials,
      late,
      archive,
      outcomes,
      decodeMs: t1 - t0,
      aggregateMs: t2 - t1,
      outboxFallbacks: this.outbox.fallbacks - fallbacksBefore,
    };
  }

  /**
   * The watermark before each row: the earlier batches' max, then a running max inside this one.
   * `wmMax` (the one before the last row) comes from `maxButLast`; the per-row array is filled
   * only when a pipeline asks for it — when some row could be late, which a batch of in-order
   * events spanning less than maxOutOfOrder never is.
   */
  private watermarks(ts: Float64Array, n: number, before: number, maxOutOfOrder: number, maxButLast: number): LateInput {
    const wmMax = Math.max(before, maxButLast) - maxOutOfOrder;
    let filled: Float64Array | null = null;
    const fill = (): Float64Array => {
      if (this.wmScratch.length < n) this.wmScratch = new Float64Array(Math.max(n, 2 * this.wmScratch.length));
      const wm = this.wmScratch;
      let running = before;
      for (let r = 0; r < n; r++) {
        wm[r] = running - maxOutOfOrder;
        if (ts[r]! > running) running = ts[r]!;
      }
      return wm;
    };
    return {
      wmMax,
      get wm(): Float64Array {
        return (filled ??= fill());
      },
    };
  }

  private streamRuntime(name: string): StreamRuntime {
    const known = this.streams.get(name);
    if (known !== undefined) return known;
    const config = this.config;
    const cfg = config.streams[name];
    if (cfg === undefined) throw new Error(`no stream '${name}'`);
    const schema = streamSchemaOf(config, name);
    const eventTime = schema.index.get(cfg.eventTime.column)!;
    const pipelines = Object.entries(config.pipelines)
      .filter(([, p]) => p.from === name)
      .map(([pname, p]) => {
        const plan = compilePipeline(pname, p, schema, cfg.eventTime.column);
        return { plan, aggregator: new WindowAggregator(plan) };
      });
    const s: StreamRuntime = { schema, eventTime, maxOutOfOrder: cfg.eventTime.maxOutOfOrder, archive: cfg.archive, pipelines };
    this.streams.set(name, s);
    return s;
  }

  private chainOf(sab: SharedArrayBuffer): WatermarkChain {
    let c = this.chains.get(sab);
    if (c === undefined) {
      c = new WatermarkChain(sab);
      this.chains.set(sab, c);
    }
    return c;
  }
}

/**
 * Why each late row is late, in words a user can act on, dictionary-encoded: rows of one window
 * late under the same watermark share one reason (the usual case: a late batch's rows fall into
 * a few windows), so the times are formatted once per window, not three times per row (0.35 M
 * late events/s before, docs/benchmarks.md), and the reason travels and is stored once.
 */
function lateReasons(plan: PipelinePlan, rows: Int32Array, info: Float64Array, count: number, wm: Float64Array, ts: Float64Array): StringColumn {
  const codes = new Int32Array(count);
  const dict: string[] = [];
  const w = plan.window;
  let watermark = NaN;
  let watermarkText = '';
  /** codes of the reasons under `watermark`, by window end */
  const byEnd = new Map<number, number>();
  for (let i = 0; i < count; i++) {
    const r = rows[i]!;
    if (wm[r] !== watermark) {
      watermark = wm[r]!;
      watermarkText = iso(watermark);
      byEnd.clear();
    }
    if (w.kind === 'session') {
      codes[i] = dict.length;
      dict.push(`event time ${iso(ts[r]!)} is before the watermark ${watermarkText} minus lateness ${plan.lateness} ms: its session was already emitted or could reach one that was`);
      continue;
    }
    const end = info[i]!;
    let code = byEnd.get(end);
    if (code === undefined) {
      code = dict.length;
      dict.push(`window [${iso(end - w.size)}, ${iso(end)}) was already emitted: watermark ${watermarkText} ≥ window end + lateness ${plan.lateness} ms`);
      byEnd.set(end, code);
    }
    codes[i] = code;
  }
  return { type: 'string', codes, dict, valid: null };
}
