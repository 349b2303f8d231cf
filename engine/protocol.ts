/**
 * Every message that crosses a thread boundary, in one place (STYLE: piscina's src/types.ts).
 *
 *   main thread ──PoolTask──► pool worker (piscina)        decode, watermark chain, aggregate
 *   main thread ◄─PoolResult─ pool worker                  buffers MOVED, never cloned
 *   main thread ──ToState───► state worker                 window state, DuckDB, checkpoints
 *   main thread ◄─FromState── state worker
 *
 * Batch bytes travel as SharedArrayBuffer slab references (the slab arena); partial aggregates,
 * late rows and archived rows travel as parcels in their own binary formats
 * (native-free-kernels/partial.ts, column-batch.ts): Uint8Array slices of the pool worker's
 * shared outbox blocks, which the state worker releases when done (engine/outbox.ts), or, when
 * no block had room, whole ArrayBuffers moved with the message.
 */

import type { BatchFormat } from '../native-free-kernels/decode.js';
import type { WindowResult } from './window-state.js';
import type { QueryOptions } from './storage.js';

/** One received batch inside a task: where its bytes are, and its place in the stream. */
export interface TaskPiece {
  readonly buffer: SharedArrayBuffer;
  readonly offset: number;
  readonly length: number;
  readonly format: BatchFormat;
  /** the stream's batch sequence number (1, 2, ... in ingest order) */
  readonly seq: number;
}

/** main → pool worker: one or more consecutive batches of one stream (small ones coalesced). */
export interface PoolTask {
  readonly stream: string;
  /** the stream's watermark chain (watermark-chain.ts) and this task's slot in it */
  readonly chain: SharedArrayBuffer;
  readonly t: number;
  readonly pieces: readonly TaskPiece[];
  /** test-only fault injection, honoured only when SLUICE_TEST_FAULTS=1 in the worker */
  readonly fault?: 'crash' | 'oom';
}

export interface ErrorBody {
  readonly code: string;
  readonly message: string;
}

/** What became of one batch: its accepted row count, or why the whole batch was rejected. */
export type PieceOutcome = { readonly seq: number; readonly rows: number } | { readonly seq: number; readonly error: ErrorBody };

/** The aggregation work of one task, as the state worker consumes it. */
export interface TaskOutput {
  readonly stream: string;
  readonly t: number;
  /** first and last batch seq of the task */
  readonly seqFirst: number;
  readonly seqLast: number;
  /** the largest event time of the stream through this task (its watermark chain slot) */
  readonly maxEventTime: number;
  /** rows accepted (batches that decoded) */
  readonly rows: number;
  /** per pipeline: the partial aggregate, and the rows that passed its filter (on time or late) */
  readonly partials: readonly { readonly pipeline: string; readonly bytes: Uint8Array; readonly rows: number }[];
  readonly late: readonly { readonly pipeline: string; readonly bytes: Uint8Array; readonly count: number }[];
  /** every accepted row, for streams with `archive: true` */
  readonly archive: Uint8Array | null;
}

/** The parcels of a task's output (the state worker releases each once: engine/outbox.ts). */
export function parcelsOf(o: TaskOutput): Uint8Array[] {
  const out = [...o.partials.map((p) => p.bytes), ...o.late.map((l) => l.bytes)];
  if (o.archive !== null) out.push(o.archive);
  return out;
}

/** pool worker → main */
export interface PoolResult extends TaskOutput {
  readonly outcomes: readonly PieceOutcome[];
  readonly decodeMs: number;
  readonly aggregateMs: number;
  /** parcels of this task that did not fit the worker's shared outbox (moved ArrayBuffers) */
  readonly outboxFallbacks: number;
}

/**
 * pool worker → main, outside any task (piscina hands it on as the pool's 'message' event): the
 * worker loaded its code. The engine reports ready only once every worker did, so the first
 * batches after a start do not wait for a worker's modules to load and compile.
 */
export interface PoolNotice {
  readonly kind: 'sluice-pool-worker-loaded';
}

/** Per stream: how far the committed state goes. Stored with every checkpoint. */
export interface StreamPosition {
  /** last batch seq whose effect is in the state (WAL replay starts after it) */
  readonly seq: number;
  /** the largest event time seen (the watermark is this minus maxOutOfOrder) */
  readonly maxEventTime: number;
}

/** main → state worker */
export type ToState =
  | { readonly kind: 'task'; readonly output: TaskOutput }
  /** a task that produced nothing (every batch rejected, or its worker died): keeps the order */
  | { readonly kind: 'skip'; readonly stream: string; readonly t: number; readonly seqLast: number; readonly maxEventTime: number }
  /** the stream was idle: its event-time clock advanced without data (chain slot t) */
  | { readonly kind: 'idle'; readonly stream: string; readonly t: number; readonly maxEventTime: number }
  | { readonly kind: 'flush'; readonly id: number }
  | { readonly kind: 'checkpoint'; readonly id: number }
  | { readonly kind: 'query'; readonly id: number; readonly sql: string; readonly params: readonly unknown[]; readonly opts: QueryOptions }
  | { readonly kind: 'subscribe'; readonly on: boolean }
  | { readonly kind: 'close'; readonly id: number };

/** state worker → main */
export type FromState =
  | { readonly kind: 'ready'; readonly positions: Readonly<Record<string, StreamPosition>>; readonly restored: boolean }
  /** bytes of task buffers the state worker no longer holds (backpressure accounting) */
  | { readonly kind: 'released'; readonly bytes: number }
  /** a commit landed: positions now durable, result rows (groups × windows) and late rows per pipeline */
  | {
    readonly kind: 'committed';
    readonly positions: Readonly<Record<string, StreamPosition>>;
    readonly rows: number;
    readonly ms: number;
    readonly windows: Readonly<Record<string, number>>;
    readonly late: Readonly<Record<string, number>>;
  }
  /** DuckDB's own memory (Storage.memoryBytes), read after a commit at most once a second */
  | { readonly kind: 'storageMemory'; readonly bytes: number }
  /** closed windows, after their commit (only while the main thread subscribes) */
  | { readonly kind: 'emitted'; readonly pipeline: string; readonly result: WindowResult }
  | { readonly kind: 'reply'; readonly id: number; readonly value: unknown }
  | { readonly kind: 'failed'; readonly id: number; readonly error: ErrorBody }
  /** the state worker cannot go on (e.g. the disk failed); the engine stops */
  | { readonly kind: 'fatal'; readonly error: ErrorBody };

/** workerData of both worker kinds: the validated config (plain JSON) */
export interface WorkerInit {
  readonly config: unknown;
}
