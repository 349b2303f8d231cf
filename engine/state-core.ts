/**
 * The state side of the runtime, without threads or I/O (the state worker wraps it; tests
 * drive it directly): per stream partition, put task outputs back in order, merge their
 * partials into the window state, advance the watermark, close windows, and gather what the
 * next DuckDB commit must write.
 *
 *   task t=3 ──┐   reorder    ┌─ merge partials ─► WindowState (per pipeline)
 *   task t=1 ──┼──────────────┤  late rows, archived rows ─► pending commit
 *   task t=2 ──┘  (t order)   └─ watermark = maxEventTime − maxOutOfOrder
 *                                  close windows with end + lateness ≤ watermark ─► pending
 *
 * Tasks are applied strictly in chain order (t) per stream: a window may only close after
 * every earlier batch of the stream has been merged.
 */

import type { SluiceConfig } from './config.js';
import { streamSchemaOf } from './config.js';
import { compilePipeline, type PipelinePlan } from './plan.js';
import type { Batch, StreamSchema } from './schema.js';
import type { StreamPosition, ToState } from './protocol.js';
import { WindowState, type PartsSnapshot, type WindowResult } from './window-state.js';
import { decodeCheckpoint, encodeCheckpoint, type CheckpointState } from './checkpoint.js';
import type { CheckpointData, CheckpointPart, LateRows } from './storage.js';
import { deserializePartial } from '../native-free-kernels/partial.js';
import { deserializeRows } from '../native-free-kernels/column-batch.js';
import { releaseParcel } from './outbox.js';

export interface PendingCommit {
  results: { pipeline: string; result: WindowResult }[];
  late: LateRows[];
  archive: { stream: string; rows: Batch }[];
  /** bytes of task buffers held by late / archive rows (released once committed) */
  heldBytes: number;
  /** the parcels the late and archive rows are views of: release once committed (releasePending) */
  parcels: Uint8Array[];
  rows: number;
}

type StepMessage = Extract<ToState, { kind: 'task' | 'skip' | 'idle' }>;

interface StreamState {
  readonly name: string;
  readonly schema: StreamSchema;
  readonly maxOutOfOrder: number;
  readonly archive: boolean;
  readonly pipelines: readonly { readonly plan: PipelinePlan; readonly state: WindowState }[];
  /** the next chain slot to apply */
  next: number;
  readonly waiting: Map<number, StepMessage>;
  position: StreamPosition;
}

export class StateCore {
  private readonly streams = new Map<string, StreamState>();
  private pending: PendingCommit = emptyPending();
  /** true when the state changed since the last checkpoint was taken */
  dirty = false;

  /**
   * `fresh`: pipelines whose tables were just created or recreated (storage.fresh) — a
   * checkpointed state of theirs belongs to an older definition and is not restored.
   */
  constructor(config: SluiceConfig, restored: CheckpointState | null, fresh: ReadonlySet<string> = new Set()) {
    for (const [name, cfg] of Object.entries(config.streams)) {
      const schema = streamSchemaOf(config, name);
      const pipelines = Object.entries(config.pipelines)
        .filter(([, p]) => p.from === name)
        .map(([pname, p]) => {
          const plan = compilePipeline(pname, p, schema, cfg.eventTime.column);
          const state = new WindowState(plan);
          const snap = fresh.has(pname) ? undefined : restored?.pipelines.get(pname);
          if (snap !== undefined) state.restore(snap);
          return { plan, state };
        });
      this.streams.set(name, {
        name,
        schema,
        maxOutOfOrder: cfg.eventTime.maxOutOfOrder,
        archive: cfg.archive,
        pipelines,
        next: 1,
        waiting: new Map(),
        position: restored?.positions[name] ?? { seq: 0, maxEventTime: -Infinity },
      });
    }
  }

  positions(): Record<string, StreamPosition> {
    const out: Record<string, StreamPosition> = {};
    for (const s of this.streams.values()) out[s.name] = s.position;
    return out;
  }

  /** Apply a chain step (buffered until every earlier step of its stream is in). */
  step(msg: StepMessage): void {
    const stream = msg.kind === 'task' ? msg.output.stream : msg.stream;
    const t = msg.kind === 'task' ? msg.output.t : msg.t;
    const s = this.streams.get(stream);
    if (s === undefined) throw new Error(`state: no stream '${stream}'`);
    if (t < s.next || s.waiting.has(t)) throw new Error(`state: step ${t} of '${s.name}' arrived twice`);
    s.waiting.set(t, msg);
    for (let m = s.waiting.get(s.next); m !== undefined; m = s.waiting.get(s.next)) {
      s.waiting.delete(s.next);
      s.next++;
      this.apply(s, m);
    }
  }

  private apply(s: StreamState, m: StepMessage): void {
    this.dirty = true;
    if (m.kind === 'task') {
      const o = m.output;
      for (const { pipeline, bytes } of o.partials) {
        // merged into the window state (copied): the worker may write the bytes again
        this.pipeline(s, pipeline).state.merge(deserializePartial(bytes));
        releaseParcel(bytes);
      }
      for (const l of o.late) {
        const { batch, notes } = deserializeRows(l.bytes, s.schema);
        if (notes === null) throw new Error(`state: late rows of '${l.pipeline}' without their reasons`);
        this.pending.late.push({ pipeline: l.pipeline, rows: batch, reasons: notes });
        this.hold(l.bytes, batch.length);
      }
      if (o.archive !== null) {
        const { batch } = deserializeRows(o.archive, s.schema);
        this.pending.archive.push({ stream: s.name, rows: batch });
        this.hold(o.archive, batch.length);
      }
      s.position = { seq: o.seqLast, maxEventTime: Math.max(s.position.maxEventTime, o.maxEventTime) };
    } else if (m.kind === 'skip') {
      s.position = { seq: m.seqLast, maxEventTime: Math.max(s.position.maxEventTime, m.maxEventTime) };
    } else {
      s.position = { seq: s.position.seq, maxEventTime: Math.max(s.position.maxEventTime, m.maxEventTime) };
    }
    this.closeWindows(s, s.position.maxEventTime - s.maxOutOfOrder);
  }

  /** The pending commit reads `rows` rows from `bytes`: keep them until it landed (releasePending). */
  private hold(bytes: Uint8Array, rows: number): void {
    this.pending.parcels.push(bytes);
    this.pending.heldBytes += bytes.byteLength;
    this.pending.rows += rows;
  }

  private pipeline(s: StreamState, name: string): { plan: PipelinePlan; state: WindowState } {
    const p = s.pipelines.find((x) => x.plan.name === name);
    if (p === undefined) throw new Error(`state: stream '${s.name}' has no pipeline '${name}'`);
    return p;
  }

  private closeWindows(s: StreamState, watermark: number): void {
    for (const p of s.pipelines) {
      const result = p.state.closeUpTo(watermark);
      if (result !== null && result.rows > 0) {
        this.pending.results.push({ pipeline: p.plan.name, result });
        this.pending.rows += result.rows;
      }
    }
  }

  /**
   * End of input: close every open window. Afterwards each stream's event-time clock stands
   * past every window it emitted, so a later event for one of them is late (never a second
   * row for the same window). Returns the new largest event time per stream.
   */
  flush(): Record<string, number> {
    const clocks: Record<string, number> = {};
    for (const s of this.streams.values()) {
      let frontier = s.position.maxEventTime;
      for (const p of s.pipelines) {
        const end = p.state.maxOpenEnd();
        if (end > -Infinity) frontier = Math.max(frontier, end + p.plan.lateness + s.maxOutOfOrder);
      }
      s.position = { seq: s.position.seq, maxEventTime: frontier };
      this.closeWindows(s, Infinity);
      clocks[s.name] = frontier;
      this.dirty = true;
    }
    return clocks;
  }

  /** The next chain slot each stream expects (the runtime continues numbering from here). */
  nextSteps(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const s of this.streams.values()) out[s.name] = s.next;
    return out;
  }

  /** Take everything waiting for the next commit. */
  takePending(): PendingCommit {
    const p = this.pending;
    this.pending = emptyPending();
    return p;
  }

  get pendingRows(): number {
    return this.pending.rows;
  }

  get pendingResults(): number {
    return this.pending.results.length;
  }

  get pendingBytes(): number {
    return this.pending.heldBytes;
  }

  /**
   * Positions and every open window (taken at the same instant as takePending): the windows
   * that changed since their last stored checkpoint as new parts (ids from `newId`), the others
   * as references to their stored parts: the commit's CheckpointData. Call `stored()` once the
   * commit holding it succeeded.
   */
  checkpoint(newId: () => number): CheckpointData & { positions: Record<string, StreamPosition>; stored: () => void } {
    const pipelines = new Map<string, number[]>();
    const parts: CheckpointPart[] = [];
    const snapshots: PartsSnapshot[] = [];
    for (const s of this.streams.values()) {
      for (const p of s.pipelines) {
        const snap = p.state.snapshot(newId);
        snapshots.push(snap);
        for (const part of snap.parts) parts.push({ id: part.id, bytes: part.bytes === null ? null : new Uint8Array(part.bytes) });
        pipelines.set(p.plan.name, snap.parts.map((part) => part.id));
      }
    }
    this.dirty = false;
    const positions = this.positions();
    return {
      positions,
      state: encodeCheckpoint({ positions, pipelines }),
      parts,
      stored: () => {
        for (const snap of snapshots) snap.stored();
      },
    };
  }

  /** For Parquet export: every window starting before this is closed and final. */
  closedBefore(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const s of this.streams.values()) {
      const watermark = s.position.maxEventTime - s.maxOutOfOrder;
      for (const p of s.pipelines) {
        const w = p.plan.window;
        // a window that has not opened yet can only start after watermark − lateness − size
        // (for sessions: an on-time event at t opens [t, t + gap))
        const reach = w.kind === 'session' ? w.gap : w.size;
        out[p.plan.name] = Math.min(p.state.minOpenStart(), watermark - p.plan.lateness - reach);
      }
      // archives: ranges before the watermark are complete but for late events, which the
      // storage tracks and re-exports
      if (s.archive) out[s.name] = watermark;
    }
    return out;
  }

  /**
   * For the Parquet export at close: every range without an open window, and all of every
   * archive. Unlike closedBefore() this includes ranges that later events may still add rows to
   * (those rows touch the range again and the next export rewrites its file); without it the
   * windows a batch job emits last (flush, then close) would never reach Parquet.
   */
  exportableAtClose(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const s of this.streams.values()) {
      for (const p of s.pipelines) out[p.plan.name] = p.state.minOpenStart();
      if (s.archive) out[s.name] = Infinity;
    }
    return out;
  }

  openGroups(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const s of this.streams.values()) for (const p of s.pipelines) out[p.plan.name] = p.state.openGroups;
    return out;
  }

  /** Decode a stored checkpoint; `parts` holds the bytes of every part it references. */
  static restoreFrom(bytes: Uint8Array | null, parts: ReadonlyMap<number, Uint8Array> = new Map()): CheckpointState | null {
    return bytes === null ? null : decodeCheckpoint(bytes, parts);
  }
}

/**
 * The commit holding `p` landed: its late and archived rows are in DuckDB, so the workers may
 * write the bytes they were read from again (engine/outbox.ts). Call once per PendingCommit.
 */
export function releasePending(p: PendingCommit): void {
  for (const bytes of p.parcels) releaseParcel(bytes);
}

function emptyPending(): PendingCommit {
  return { results: [], late: [], archive: [], heldBytes: 0, parcels: [], rows: 0 };
}
