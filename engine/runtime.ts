/**
 * The engine: `const engine = await Sluice.open(config)`, then `ingest`, `flush`, `query`,
 * `close`, and a 'windows' event for every closed window. The server is a thin layer over it.
 *
 * The main thread does I/O and bookkeeping only:
 *
 *   ingest(bytes) ──copy once──► slab arena (SharedArrayBuffer)       full → push back
 *        │  seq = next batch number of the stream; ack: durable → append to the log (fsync)
 *        ▼
 *   pending pieces of the stream ──coalesced──► PoolTask ──► piscina worker
 *        (decode, watermark chain, aggregate → partials, late rows, archive rows)
 *        ▼
 *   PoolResult: acks / nacks per batch, slab released, output forwarded (moved) to the
 *   state worker, which merges, closes windows and commits to DuckDB with a checkpoint.
 *
 * Backpressure: the slab arena bounds received bytes; the number of tasks in flight is
 * bounded; bytes the state worker holds are bounded — past any bound, dispatch stops, the
 * arena fills and ingest waits (or `tryIngest` answers null).
 */

import { EventEmitter } from 'node:events';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import type { Piscina } from 'piscina';
import { configFromObject, loadConfig, type SluiceConfig } from './config.js';
import { allErrorDefs, asSluiceError, ErrorCodes, sluiceError, SluiceError } from './errors.js';
import { parcelsOf, type FromState, type PoolResult, type PoolTask, type StreamPosition, type TaskPiece, type ToState, type WorkerInit } from './protocol.js';
import { transferablesOf } from './outbox.js';
import { SlabArena, type SlabRef } from './slab-arena.js';
import type { QueryOptions, QueryResult } from './storage.js';
import { CHAIN_RING, WatermarkChain } from './watermark-chain.js';
import type { WindowResult } from './window-state.js';
import { Wal } from './wal.js';
import { WorkerPool } from './worker-pool.js';
import { detectBinaryFormat, type BatchFormat } from '../native-free-kernels/decode.js';

/** How a caller names a batch's encoding; 'binary' = Arrow IPC or MessagePack, told apart by its first bytes. */
export type IngestFormat = BatchFormat | 'binary';

export interface IngestResult {
  /** the stream's batch sequence number */
  readonly seq: number;
  /** rows accepted */
  readonly rows: number;
}

export type { QueryResult, QueryOptions };

export type LogFn = (level: 'debug' | 'info' | 'warn' | 'error', msg: string, fields?: Record<string, unknown>) => void;

export interface OpenOptions {
  /** structured log records (the server passes pino); default: nothing is logged */
  readonly log?: LogFn;
  /** measurements the server turns into histograms (DESIGN.md A8), called on the main thread */
  readonly observe?: {
    /** a batch was acknowledged: ms from ingest() to processed */
    readonly batchLatency?: (ms: number) => void;
    /** a commit (results, late rows, archive, checkpoint in one transaction) took ms */
    readonly commit?: (ms: number) => void;
  };
}

/** Counters the server exports as metrics (DESIGN.md A8). */
export interface EngineStats {
  ingestEvents: Record<string, number>;
  ingestBytes: Record<string, number>;
  /** per pipeline: events that passed its filter (on time or late) */
  pipelineEvents: Record<string, number>;
  batchesRejected: Record<string, Record<string, number>>;
  windowsEmitted: Record<string, number>;
  lateEvents: Record<string, number>;
  workerFailures: number;
  /** parcels a worker could not fit in its shared outbox (moved as ArrayBuffers instead) */
  outboxFallbacks: number;
  tasksInFlight: number;
  piecesWaiting: number;
  arenaBytesInUse: number;
  arenaBytesCapacity: number;
  stateBacklogBytes: number;
  /** per stream: event time of the watermark (ms), −Infinity before the first event */
  watermark: Record<string, number>;
  /** per stream: largest event time seen */
  maxEventTime: Record<string, number>;
  /** per stream: positions of the last commit */
  committed: Record<string, StreamPosition>;
  /** DuckDB's own memory in bytes as of a recent commit; null before the first */
  storageMemoryBytes: number | null;
}

interface Piece {
  readonly ref: SlabRef;
  readonly format: BatchFormat;
  readonly seq: number;
  readonly arrived: number;
  readonly wal: Promise<void> | null;
  /** null for batches replayed from the log at start-up (nobody waits for them) */
  readonly done: { resolve(r: IngestResult): void; reject(e: unknown): void } | null;
}

interface StreamRt {
  readonly name: string;
  readonly durable: boolean;
  readonly idleTimeout: number;
  readonly maxOutOfOrder: number;
  readonly chain: WatermarkChain;
  /** last chain slot handed out */
  t: number;
  /** last batch seq handed out */
  seq: number;
  pending: Piece[];
  pendingBytes: number;
  inFlight: number;
  /** wall-clock ms of the last batch, and the largest event time once it was processed */
  lastArrival: number;
  lastDataMax: number;
  /** a wake-up is armed for when the last dispatched task publishes its chain slot */
  gateArmed: boolean;
  /** ingest() calls waiting for space, and what the next one to wait must wait for (its turn) */
  waiting: number;
  admitTurn: Promise<void>;
}

const SLAB_MIN = 16 << 20;
/** bytes the state worker may hold before dispatch pauses */
const STATE_BACKLOG = 256 << 20;
const MAX_PIECES_PER_TASK = 1024;
/** how long open() waits for the pool workers to load their code before going on without them */
const WORKER_LOAD_WAIT_MS = 30_000;

export class Sluice extends EventEmitter {
  readonly config: SluiceConfig;
  private readonly log: LogFn;
  private readonly observe: NonNullable<OpenOptions['observe']>;
  private readonly arena: SlabArena;
  private readonly pool: Piscina;
  private readonly stateWorker: Worker;
  private readonly wal: Wal | null;
  private readonly streams = new Map<string, StreamRt>();
  private readonly maxInFlight: number;
  private inFlight = 0;
  private stateBacklog = 0;
  private pumpScheduled = false;
  private closing = false;
  private closed = false;
  private fatal: SluiceError | null = null;
  private nextId = 1;
  private readonly replies = new Map<number, { resolve(v: unknown): void; reject(e: unknown): void }>();
  private drainWaiters: (() => void)[] = [];
  private readonly idleTimer: NodeJS.Timeout | null;
  private readonly stats: EngineStats;

  private constructor(config: SluiceConfig, opts: OpenOptions, pool: WorkerPool, stateWorker: Worker, positions: Record<string, StreamPosition>, wal: Wal | null) {
    super();
    this.config = config;
    this.log = opts.log ?? (() => {});
    this.observe = opts.observe ?? {};
    this.stateWorker = stateWorker;
    this.wal = wal;
    // enough tasks queued that a worker never waits for the main thread to hand it the next
    this.maxInFlight = pool.threads * 4;
    const slabBytes = Math.max(SLAB_MIN, nextPow2(config.server.maxPayload));
    this.arena = new SlabArena(Math.max(config.workers.queue, 2 * slabBytes), slabBytes);
    this.pool = pool.piscina;
    this.stats = {
      ingestEvents: {}, ingestBytes: {}, pipelineEvents: {}, batchesRejected: {}, windowsEmitted: {}, lateEvents: {},
      workerFailures: 0, outboxFallbacks: 0, tasksInFlight: 0, piecesWaiting: 0, arenaBytesInUse: 0, arenaBytesCapacity: this.arena.capacityBytes,
      stateBacklogBytes: 0, watermark: {}, maxEventTime: {}, committed: { ...positions }, storageMemoryBytes: null,
    };
    let minIdle = Infinity;
    for (const [name, cfg] of Object.entries(config.streams)) {
      const pos = positions[name] ?? { seq: 0, maxEventTime: -Infinity };
      const chain = new WatermarkChain();
      chain.publish(0, pos.maxEventTime);
      const seq = Math.max(pos.seq, wal?.lastSeq().get(name) ?? 0);
      this.streams.set(name, {
        name, durable: cfg.ack === 'durable', idleTimeout: cfg.eventTime.idleTimeout, maxOutOfOrder: cfg.eventTime.maxOutOfOrder,
        chain, t: 0, seq, pending: [], pendingBytes: 0, inFlight: 0, lastArrival: 0, lastDataMax: pos.maxEventTime, gateArmed: false,
        waiting: 0, admitTurn: Promise.resolve(),
      });
      this.stats.ingestEvents[name] = 0;
      this.stats.ingestBytes[name] = 0;
      this.stats.batchesRejected[name] = {};
      this.showClock(name, cfg.eventTime.maxOutOfOrder, pos.maxEventTime);
      minIdle = Math.min(minIdle, cfg.eventTime.idleTimeout);
    }
    for (const name of Object.keys(config.pipelines)) {
      this.stats.windowsEmitted[name] = 0;
      this.stats.lateEvents[name] = 0;
      this.stats.pipelineEvents[name] = 0;
    }
    this.idleTimer = Number.isFinite(minIdle) ? setInterval(() => this.checkIdle(), Math.max(50, Math.floor(minIdle / 4))) : null;
    this.idleTimer?.unref();
    stateWorker.on('message', (m: FromState) => this.onState(m));
    stateWorker.on('error', (err) => this.fail(asSluiceError(err)));
    this.pool.on('error', (err: unknown) => this.log('error', 'worker pool error', { err: String(err) }));
    this.on('newListener', (event: string | symbol) => {
      if (event === 'windows' && this.listenerCount('windows') === 0) this.toState({ kind: 'subscribe', on: true });
    });
    this.on('removeListener', (event: string | symbol) => {
      if (event === 'windows' && this.listenerCount('windows') === 0) this.toState({ kind: 'subscribe', on: false });
    });
  }

  /**
   * Open the engine: validate the config (a SluiceConfig, a path to YAML / JSON, or a plain
   * object), open the DuckDB file and restore the last checkpoint, start the worker pool, and
   * replay the durable log past the checkpoint.
   */
  static async open(config: SluiceConfig | string | Record<string, unknown>, opts: OpenOptions = {}): Promise<Sluice> {
    const cfg = resolveConfig(config);
    mkdirSync(cfg.storage.dir, { recursive: true });
    const log = opts.log ?? (() => {});
    // the pool first: its workers load their code while the state worker opens DuckDB
    const pool = new WorkerPool(cfg);
    const init: WorkerInit = { config: cfg };
    const stateWorker = new Worker(new URL('./state-worker.js', import.meta.url), { workerData: init });
    let engine: Sluice;
    let ready: Extract<FromState, { kind: 'ready' }>;
    let wal: Wal | null = null;
    try {
      ready = await new Promise<Extract<FromState, { kind: 'ready' }>>((resolve, reject) => {
        const onMessage = (m: FromState): void => {
          if (m.kind === 'ready') {
            cleanup();
            resolve(m);
          } else if (m.kind === 'fatal') {
            cleanup();
            reject(errorFrom(m.error));
          }
        };
        const onError = (err: Error): void => {
          cleanup();
          reject(asSluiceError(err));
        };
        const cleanup = (): void => {
          stateWorker.off('message', onMessage);
          stateWorker.off('error', onError);
        };
        stateWorker.on('message', onMessage);
        stateWorker.on('error', onError);
      });
      const durable = Object.values(cfg.streams).some((s) => s.ack === 'durable');
      wal = durable ? await Wal.open(join(cfg.storage.dir, 'wal')) : null;
      for (const e of wal?.recovery().events ?? []) {
        log('warn', `durable log recovery: ${e.action} in ${e.file} at offset ${e.offset} (${e.droppedBytes} bytes): ${e.reason}`, { ...e });
      }
      engine = new Sluice(cfg, opts, pool, stateWorker, { ...ready.positions }, wal);
    } catch (err) {
      await Promise.all([stateWorker.terminate(), pool.piscina.destroy(), wal?.close()]);
      throw err;
    }
    if (!(await pool.whenLoaded(WORKER_LOAD_WAIT_MS))) {
      log('warn', `worker pool: ${pool.loaded} of ${pool.threads} workers had loaded their code after ${WORKER_LOAD_WAIT_MS} ms; going on (the first batches wait for the others)`);
    }
    if (ready.restored) {
      log('info', 'restored the last checkpoint', { positions: ready.positions });
      for (const [name, s] of Object.entries(cfg.streams)) {
        if (s.ack !== 'durable') log('info', `stream '${name}' (ack: accepted): batches accepted after the checkpoint at seq ${ready.positions[name]?.seq ?? 0} were not committed and are lost`);
      }
    }
    if (wal !== null) await engine.replayLog(ready.positions);
    return engine;
  }

  /** Batches in the durable log past the checkpoint, fed again in their original order. */
  private async replayLog(positions: Readonly<Record<string, StreamPosition>>): Promise<void> {
    const after = new Map<string, number>();
    for (const [name, s] of this.streams) if (s.durable) after.set(name, positions[name]?.seq ?? 0);
    let n = 0;
    for await (const rec of this.wal!.replay(after)) {
      const s = this.streams.get(rec.stream);
      if (s === undefined || !s.durable) continue;
      let ref = this.arena.tryCopy(rec.bytes);
      while (ref === null) {
        this.pump();
        await this.arena.whenSpace();
        ref = this.arena.tryCopy(rec.bytes);
      }
      this.enqueue(s, { ref, format: rec.format, seq: rec.seq, arrived: Date.now(), wal: null, done: null });
      n++;
    }
    if (n > 0) this.log('info', `replayed ${n} batches from the durable log`);
    await this.drain();
  }

  /**
   * Ingest one batch. Resolves when it is acknowledged per the stream's ack mode (A6):
   * `accepted` — decoded, validated and queued in order; `durable` — also fsync'd to the log.
   * Rejects with a SluiceError (SLUICE_BATCH_* for a bad batch: nothing of it was applied).
   * Waits while the engine is full; calls for one stream take their seqs in call order.
   */
  async ingest(stream: string, bytes: Uint8Array, format: IngestFormat): Promise<IngestResult> {
    const s = this.streamFor(stream);
    // batch latency counts from here, the wait for space included
    const arrived = Date.now();
    const r = this.admit(s, bytes, format, false, arrived);
    if (r !== null) return r;
    // Wait in line behind the stream's earlier waiting calls: seqs must follow the order of the
    // calls, and without the line a smaller batch sent later would overtake a big one (it fits
    // in the rest of the current slab while the big one waits for a whole slab to empty).
    s.waiting++;
    const turn = s.admitTurn;
    let next!: () => void;
    s.admitTurn = new Promise<void>((resolve) => (next = resolve));
    try {
      await turn;
      for (;;) {
        const again = this.admit(s, bytes, format, true, arrived);
        if (again !== null) return again;
        this.pump();
        await this.arena.whenSpace();
      }
    } finally {
      s.waiting--;
      next();
    }
  }

  /**
   * Like ingest, but answers null at once when the engine is full, or while ingest() calls of the
   * stream wait for space (the server turns that into withheld credits / 503). The bytes are
   * copied before it returns: the caller may reuse them.
   */
  tryIngest(stream: string, bytes: Uint8Array, format: IngestFormat): Promise<IngestResult> | null {
    const s = this.streamFor(stream);
    return this.admit(s, bytes, format);
  }

  /** `inLine`: the caller is the first ingest() call waiting for space (see ingest). */
  private admit(s: StreamRt, bytes: Uint8Array, format: IngestFormat, inLine = false, arrived = Date.now()): Promise<IngestResult> | null {
    this.checkOpen();
    if (bytes.length > this.config.server.maxPayload) {
      throw sluiceError('PAYLOAD_TOO_LARGE', `batch of ${bytes.length} bytes exceeds server.maxPayload (${this.config.server.maxPayload} bytes)`);
    }
    const fmt: BatchFormat = format === 'binary' ? detectBinaryFormat(bytes) : format;
    // calls waiting for space go first
    if (s.waiting > 0 && !inLine) return null;
    const ref = this.arena.tryCopy(bytes);
    if (ref === null) return null;
    const seq = ++s.seq;
    this.stats.ingestBytes[s.name]! += bytes.length;
    const wal = s.durable && this.wal !== null
      ? this.wal.append({ seq, stream: s.name, format: fmt, bytes: new Uint8Array(ref.buffer, ref.offset, ref.length) })
      : null;
    // a failed fsync is reported through the batch's own promise; keep it from being unhandled
    wal?.catch(() => {});
    return new Promise<IngestResult>((resolve, reject) => {
      this.enqueue(s, { ref, format: fmt, seq, arrived, wal, done: { resolve, reject } });
    });
  }

  private enqueue(s: StreamRt, p: Piece): void {
    s.pending.push(p);
    s.pendingBytes += p.ref.length;
    s.lastArrival = Date.now();
    // big batches go at once; small ones wait for the end of this turn to be coalesced
    if (s.pendingBytes >= this.config.workers.coalesce) this.pump();
    else this.schedulePump();
  }

  private schedulePump(): void {
    if (this.pumpScheduled) return;
    this.pumpScheduled = true;
    setImmediate(() => {
      this.pumpScheduled = false;
      this.pump();
    });
  }

  /** Hand waiting batches to the pool while the bounds allow. */
  private pump(): void {
    for (const s of this.streams.values()) {
      while (s.pending.length > 0 && this.inFlight < this.maxInFlight && this.stateBacklog < STATE_BACKLOG && s.inFlight < CHAIN_RING - 2 && this.gateOpen(s)) {
        const pieces: Piece[] = [];
        let bytes = 0;
        while (s.pending.length > 0 && pieces.length < MAX_PIECES_PER_TASK) {
          const p = s.pending[0]!;
          if (pieces.length > 0 && bytes + p.ref.length > Math.max(this.config.workers.coalesce, 1)) break;
          s.pending.shift();
          pieces.push(p);
          bytes += p.ref.length;
        }
        s.pendingBytes -= bytes;
        this.dispatch(s, pieces);
      }
    }
    if (this.inFlight === 0 && this.allIdle()) this.wakeDrain();
  }

  /**
   * A stream's next task goes out only once a worker has started the previous one. piscina may
   * reorder its queue, so a worker must never wait (watermark chain) for a predecessor that is
   * still queued — behind it, perhaps, on the same worker. Once every earlier task is running,
   * each will publish after its own decode: no wait can deadlock, and the decodes of one stream
   * still run in parallel.
   */
  private gateOpen(s: StreamRt): boolean {
    if (s.chain.isStarted(s.t)) return true;
    if (!s.gateArmed) {
      s.gateArmed = true;
      s.chain.whenStarted(s.t).then(() => {
        s.gateArmed = false;
        this.pump();
      }, (err: unknown) => this.log('error', 'watermark chain wait failed', { err: String(err) }));
    }
    return false;
  }

  private dispatch(s: StreamRt, pieces: Piece[]): void {
    const t = ++s.t;
    s.inFlight++;
    this.inFlight++;
    const task: PoolTask = {
      stream: s.name,
      chain: s.chain.sab,
      t,
      pieces: pieces.map((p): TaskPiece => ({ buffer: p.ref.buffer, offset: p.ref.offset, length: p.ref.length, format: p.format, seq: p.seq })),
      ...(this.faultNext.get(s.name) !== undefined ? { fault: this.faultNext.get(s.name)! } : {}),
    };
    this.faultNext.delete(s.name);
    (this.pool.run(task) as Promise<PoolResult>).then(
      (r) => this.onResult(s, pieces, r),
      (err: unknown) => this.onTaskFailed(s, t, pieces, err),
    );
  }

  private async onResult(s: StreamRt, pieces: Piece[], r: PoolResult): Promise<void> {
    const now = Date.now();
    for (const p of pieces) this.arena.release(p.ref);
    s.lastDataMax = Math.max(s.lastDataMax, r.maxEventTime);
    this.showClock(s.name, s.maxOutOfOrder, r.maxEventTime);
    // durable: the state may only hold batches the log holds (else a checkpoint could contain a
    // batch a crash would make the client send again)
    const waits = pieces.map((p) => (p.wal === null ? Promise.resolve(true) : p.wal.then(() => true, () => false)));
    const durable = await Promise.all(waits);
    r.outcomes.forEach((o, i) => {
      const p = pieces[i]!;
      if ('error' in o) {
        const counts = this.stats.batchesRejected[s.name]!;
        counts[o.error.code] = (counts[o.error.code] ?? 0) + 1;
        p.done?.reject(errorFrom(o.error));
      } else if (!durable[i]) {
        p.done?.reject(sluiceError('WAL_IO', `batch ${p.seq} of '${s.name}' could not be written durably`));
      } else {
        this.stats.ingestEvents[s.name]! += o.rows;
        this.observe.batchLatency?.(now - p.arrived);
        p.done?.resolve({ seq: p.seq, rows: o.rows });
      }
    });
    for (const x of r.partials) this.stats.pipelineEvents[x.pipeline] = (this.stats.pipelineEvents[x.pipeline] ?? 0) + x.rows;
    this.stats.outboxFallbacks += r.outboxFallbacks;
    const parcels = parcelsOf(r);
    this.stateBacklog += parcels.reduce((n, b) => n + b.byteLength, 0);
    const { outcomes: _o, decodeMs: _d, aggregateMs: _a, outboxFallbacks: _f, ...output } = r;
    this.toState({ kind: 'task', output }, transferablesOf(parcels));
    this.taskDone(s);
  }

  /** The worker died (crash, out of memory): fail its batches, keep the chain and the order. */
  private async onTaskFailed(s: StreamRt, t: number, pieces: Piece[], err: unknown): Promise<void> {
    this.stats.workerFailures++;
    const message = err instanceof Error ? err.message : String(err);
    this.log('error', 'a worker failed while processing a task; its batches are rejected', { stream: s.name, t, err: message });
    for (const p of pieces) {
      this.arena.release(p.ref);
      const counts = this.stats.batchesRejected[s.name]!;
      counts['SLUICE_WORKER_FAILED'] = (counts['SLUICE_WORKER_FAILED'] ?? 0) + 1;
      p.done?.reject(sluiceError('WORKER_FAILED', `the worker processing batch ${p.seq} of '${s.name}' failed (${message}); the batch was not applied — send it again`));
    }
    // the task may have died before publishing its watermark slot: do it for it
    const before = await s.chain.whenPublished(t - 1);
    if (!s.chain.isPublished(t)) s.chain.publish(t, before);
    const after = s.chain.valueAt(t);
    this.toState({ kind: 'skip', stream: s.name, t, seqLast: pieces[pieces.length - 1]!.seq, maxEventTime: after });
    this.taskDone(s);
  }

  private taskDone(s: StreamRt): void {
    s.inFlight--;
    this.inFlight--;
    this.pump();
  }

  /** A stream's event-time clock in the stats: its max event time, and the watermark behind it. */
  private showClock(stream: string, maxOutOfOrder: number, maxEventTime: number): void {
    this.stats.maxEventTime[stream] = maxEventTime;
    this.stats.watermark[stream] = maxEventTime - maxOutOfOrder;
  }

  /** A stream without data for idleTimeout: its event-time clock runs on with the wall clock. */
  private checkIdle(): void {
    const now = Date.now();
    for (const s of this.streams.values()) {
      if (s.inFlight > 0 || s.pending.length > 0 || s.lastArrival === 0 || !Number.isFinite(s.lastDataMax)) continue;
      const idleFor = now - s.lastArrival;
      if (idleFor < s.idleTimeout) continue;
      const clock = s.lastDataMax + idleFor;
      if (clock <= s.chain.valueAt(s.t)) continue;
      const t = ++s.t;
      s.chain.publish(t, clock);
      this.showClock(s.name, s.maxOutOfOrder, clock);
      this.toState({ kind: 'idle', stream: s.name, t, maxEventTime: clock });
    }
  }

  /** nothing waiting for space, queued or in a worker: every ingest() call so far is handed on */
  private allIdle(): boolean {
    for (const s of this.streams.values()) if (s.waiting > 0 || s.pending.length > 0 || s.inFlight > 0) return false;
    return true;
  }

  private wakeDrain(): void {
    const w = this.drainWaiters;
    this.drainWaiters = [];
    for (const f of w) f();
  }

  /** Resolves once every received batch has been processed by a worker and handed on. */
  private drain(): Promise<void> {
    this.pump();
    if (this.inFlight === 0 && this.allIdle()) return Promise.resolve();
    return new Promise((resolve) => this.drainWaiters.push(resolve));
  }

  /**
   * End of input for all streams: every window closes and is committed. A later event for a
   * window closed here is late. Returns once the commit landed.
   */
  async flush(): Promise<void> {
    this.checkOpen();
    await this.drain();
    const { clocks } = (await this.request({ kind: 'flush', id: this.nextId++ })) as { clocks: Record<string, number> };
    for (const s of this.streams.values()) {
      const clock = clocks[s.name] ?? -Infinity;
      const t = ++s.t;
      s.chain.publish(t, clock);
      s.lastDataMax = Math.max(s.lastDataMax, clock);
      // the stream's clock now stands where the state core put it (past every window it
      // closed, plus lateness and maxOutOfOrder): /v1/streams and the watermark gauge say so.
      // A stream that never had an event keeps −∞ (no watermark).
      if (Number.isFinite(clock)) {
        this.showClock(s.name, s.maxOutOfOrder, clock);
      }
      this.toState({ kind: 'idle', stream: s.name, t, maxEventTime: clock });
    }
  }

  /** Commit now (state and everything emitted so far) and return the committed positions. */
  async checkpoint(): Promise<Record<string, StreamPosition>> {
    this.checkOpen();
    await this.drain();
    return (await this.request({ kind: 'checkpoint', id: this.nextId++ })) as Record<string, StreamPosition>;
  }

  /**
   * Run SQL against the DuckDB file; it sees committed data. Without options any statement runs
   * (the embedding program is trusted); the server passes `readOnly`, `maxRows` and `timeoutMs`.
   */
  async query(sql: string, params: readonly unknown[] = [], opts: QueryOptions = {}): Promise<QueryResult> {
    this.checkOpen();
    return (await this.request({ kind: 'query', id: this.nextId++, sql, params, opts })) as QueryResult;
  }

  /** Graceful stop: refuse new batches, process what was received, checkpoint, close. */
  async close(): Promise<void> {
    if (this.closed || this.closing) return;
    this.closing = true;
    if (this.idleTimer !== null) clearInterval(this.idleTimer);
    try {
      if (this.fatal === null) {
        await this.drain();
        await this.request({ kind: 'close', id: this.nextId++ });
      }
    } finally {
      this.closed = true;
      await this.pool.destroy();
      await this.stateWorker.terminate();
      if (this.wal !== null) await this.wal.close();
    }
  }

  /** A snapshot of the engine's counters. */
  snapshot(): EngineStats {
    let waiting = 0;
    for (const s of this.streams.values()) waiting += s.pending.length;
    return {
      ...this.stats,
      tasksInFlight: this.inFlight,
      piecesWaiting: waiting,
      arenaBytesInUse: this.arena.bytesInUse,
      stateBacklogBytes: this.stateBacklog,
    };
  }

  /** 'failed' after a fatal error (see the 'fatal' event); 'closing' from close() until it is done */
  get status(): 'open' | 'closing' | 'closed' | 'failed' {
    if (this.fatal !== null) return 'failed';
    if (this.closed) return 'closed';
    return this.closing ? 'closing' : 'open';
  }

  /** true when ingest would push back right now */
  get full(): boolean {
    return this.arena.bytesInUse + this.config.server.maxPayload > this.arena.capacityBytes;
  }

  // --- test hooks ------------------------------------------------------------------------------

  private readonly faultNext = new Map<string, 'crash' | 'oom'>();

  /**
   * Test only (SLUICE_TEST_FAULTS=1, set before open: the pool workers read it, and their heap
   * limit for 'oom' is chosen then): make the worker running the stream's next task fail.
   */
  injectFault(stream: string, kind: 'crash' | 'oom'): void {
    if (process.env.SLUICE_TEST_FAULTS !== '1') throw new Error('fault injection needs SLUICE_TEST_FAULTS=1');
    this.faultNext.set(stream, kind);
  }

  // --- state worker ------------------------------------------------------------------------------

  private toState(msg: ToState, transfer: ArrayBuffer[] = []): void {
    this.stateWorker.postMessage(msg, transfer);
  }

  private request(msg: Extract<ToState, { id: number }>): Promise<unknown> {
    if (this.fatal !== null) return Promise.reject(this.fatal);
    return new Promise((resolve, reject) => {
      this.replies.set(msg.id, { resolve, reject });
      this.toState(msg);
    });
  }

  private onState(m: FromState): void {
    switch (m.kind) {
      case 'released':
        this.stateBacklog = Math.max(0, this.stateBacklog - m.bytes);
        this.pump();
        return;
      case 'committed':
        this.stats.committed = { ...m.positions };
        this.observe.commit?.(m.ms);
        for (const [p, n] of Object.entries(m.windows)) this.stats.windowsEmitted[p] = (this.stats.windowsEmitted[p] ?? 0) + n;
        for (const [p, n] of Object.entries(m.late)) this.stats.lateEvents[p] = (this.stats.lateEvents[p] ?? 0) + n;
        if (this.wal !== null) {
          const upTo = new Map<string, number>();
          for (const [name, pos] of Object.entries(m.positions)) upTo.set(name, pos.seq);
          this.wal.trim(upTo).catch((err: unknown) => this.log('warn', 'could not trim the durable log', { err: String(err) }));
        }
        this.emit('committed', m.positions);
        return;
      case 'storageMemory':
        this.stats.storageMemoryBytes = m.bytes;
        return;
      case 'emitted':
        this.emit('windows', { pipeline: m.pipeline, result: m.result });
        return;
      case 'reply':
      case 'failed': {
        const r = this.replies.get(m.id);
        if (r === undefined) return;
        this.replies.delete(m.id);
        if (m.kind === 'reply') r.resolve(m.value);
        else r.reject(errorFrom(m.error));
        return;
      }
      case 'fatal':
        this.fail(errorFrom(m.error));
        return;
      case 'ready':
        return;
    }
  }

  private fail(err: SluiceError): void {
    if (this.fatal !== null) return;
    this.fatal = sluiceError('ENGINE_FAILED', `the engine stopped: ${err.code}: ${err.message}`, err);
    this.log('error', 'the engine stopped', { code: err.code, err: err.message });
    for (const r of this.replies.values()) r.reject(this.fatal);
    this.replies.clear();
    this.emit('fatal', this.fatal);
  }

  private checkOpen(): void {
    if (this.fatal !== null) throw this.fatal;
    if (this.closing || this.closed) throw sluiceError('SHUTTING_DOWN', 'the engine is shutting down and accepts no more batches');
  }

  private streamFor(name: string): StreamRt {
    const s = Object.hasOwn(this.config.streams, name) ? this.streams.get(name) : undefined;
    if (s === undefined) throw sluiceError('UNKNOWN_STREAM', `no stream named '${name}' (streams: ${[...this.streams.keys()].join(', ')})`);
    return s;
  }
}

/** The 'windows' event payload. */
export interface WindowsEvent {
  readonly pipeline: string;
  readonly result: WindowResult;
}

/** A SluiceError from its JSON form (across threads), with its catalogued status when known. */
function errorFrom(body: { code: string; message: string }): SluiceError {
  const known = allErrorDefs().find((d) => d.code === body.code);
  return new SluiceError(known ?? ErrorCodes.INTERNAL, known === undefined ? `${body.code}: ${body.message}` : body.message);
}

function isValidated(c: unknown): c is SluiceConfig {
  return typeof c === 'object' && c !== null && Object.isFrozen(c) && 'server' in c && 'storage' in c && 'workers' in c;
}

/**
 * The config as Sluice.open reads it: a file path, an already validated config (frozen by
 * engine/config.ts), or a tree to validate.
 */
export function resolveConfig(config: SluiceConfig | string | Record<string, unknown>): SluiceConfig {
  return typeof config === 'string' ? loadConfig(config) : isValidated(config) ? config : configFromObject(config);
}

function nextPow2(n: number): number {
  let p = 1;
  while (p < n) p *= 2;
  return p;
}
