/**
 * The state worker thread: owns the window state (StateCore) and the DuckDB file (Storage), so
 * merging partials, closing windows and every DuckDB call stay off the main thread, which only
 * does I/O and bookkeeping (DESIGN.md B2).
 *
 * Every commit is ONE DuckDB transaction holding the windows closed since the last commit, the
 * late and archived rows, and a checkpoint of the open state and stream positions taken at the
 * same instant. So after any crash, the database holds a state and exactly the results that
 * state has emitted: replaying the batches after its positions (ack: durable) reproduces the
 * rest, without loss or duplicates.
 *
 * Commit triggers: a window closed (results should be visible within milliseconds), pending
 * late / archived rows beyond a size, the checkpoint interval, flush and close. Commits run one
 * at a time; steps that arrive meanwhile go into the next one.
 */

import { setPriority } from 'node:os';
import { parentPort, workerData } from 'node:worker_threads';
import type { SluiceConfig } from './config.js';
import { asSluiceError } from './errors.js';
import type { FromState, ToState, WorkerInit } from './protocol.js';
import { releasePending, StateCore } from './state-core.js';
import { Storage } from './storage.js';

const port = parentPort;
if (port === null) throw new Error('state-worker.ts runs as a worker thread');

/**
 * This thread's nice value on Linux. When the cores are oversubscribed (two pool workers, the
 * socket thread, this one, V8's helpers and often a producer on the same host), the scheduler
 * then lets the threads that acknowledge batches run first and commits take the rest; when
 * there is idle CPU it changes nothing. Measured, `bench e2e --only latency --rate 6800000`,
 * 3 runs each alternating: ack p99 18.0 / 17.0 / 16.8 ms and result visible p99 185 / 327 /
 * 225 ms at nice 4, against 21.7 / 70.6 / 18.0 and 555 / 470 / 145 ms at nice 0; nice 10 kept
 * acks under 20 ms but results at 288–406 ms.
 */
const STATE_THREAD_NICE = 4;
// On Linux the nice value is a thread's own (setpriority with pid 0 is the calling thread);
// elsewhere it would lower the whole process, so it is left alone there.
if (process.platform === 'linux') {
  try {
    setPriority(STATE_THREAD_NICE);
  } catch {
    // a sandbox may refuse it; the engine runs the same, only without the preference
  }
}

// workerData is the config the main thread validated (structured clone of a SluiceConfig).
const config = (workerData as WorkerInit).config as SluiceConfig;

/** Commit early when this many late / archived rows or bytes wait (bounds memory and transaction size). */
const COMMIT_ROWS = 1 << 20;
const COMMIT_BYTES = 64 << 20;
/** how often DuckDB's memory is read for sluice_storage_memory_bytes (after a commit) */
const MEMORY_READ_MS = 1000;

function send(msg: FromState): void {
  port!.postMessage(msg);
}

async function main(): Promise<void> {
  const storage = await Storage.open(config);
  const stored = storage.checkpoint;
  const parts = stored === null ? new Map<number, Uint8Array>() : await storage.readParts(stored.partIds);
  const core = new StateCore(config, StateCore.restoreFrom(stored?.state ?? null, parts), storage.fresh);
  send({ kind: 'ready', positions: core.positions(), restored: stored !== null });

  let subscribed = false;
  let committing: Promise<void> | null = null;
  let again = false;
  let scheduled = false;
  let closed = false;
  let memoryReadAt = -Infinity;

  /** One commit at a time; a request during a commit runs once more afterwards. */
  const commit = async (): Promise<void> => {
    if (committing !== null) {
      again = true;
      return committing;
    }
    committing = (async () => {
      do {
        again = false;
        const pending = core.takePending();
        const checkpoint = core.checkpoint(() => storage.allocatePartId());
        const r = await storage.commit({ results: pending.results, late: pending.late, archive: pending.archive, checkpoint });
        checkpoint.stored();
        const windows: Record<string, number> = {};
        for (const { pipeline, result } of pending.results) windows[pipeline] = (windows[pipeline] ?? 0) + result.rows;
        const late: Record<string, number> = {};
        for (const l of pending.late) late[l.pipeline] = (late[l.pipeline] ?? 0) + l.rows.length;
        send({ kind: 'committed', positions: checkpoint.positions, rows: r.rows, ms: r.ms, windows, late });
        releasePending(pending);
        if (pending.heldBytes > 0) send({ kind: 'released', bytes: pending.heldBytes });
        if (subscribed) for (const { pipeline, result } of pending.results) send({ kind: 'emitted', pipeline, result });
        if (performance.now() - memoryReadAt >= MEMORY_READ_MS) {
          memoryReadAt = performance.now();
          try {
            send({ kind: 'storageMemory', bytes: await storage.memoryBytes() });
          } catch {
            // a gauge: a failed read skips a sample; it must not fail the commit that succeeded
          }
        }
      } while (again);
    })();
    try {
      await committing;
    } finally {
      committing = null;
    }
  };

  const fatal = (err: unknown): void => {
    send({ kind: 'fatal', error: asSluiceError(err).toJSON() });
  };

  const maybeCommit = (): void => {
    if (scheduled || closed) return;
    if (core.pendingResults === 0 && core.pendingRows < COMMIT_ROWS && core.pendingBytes < COMMIT_BYTES) return;
    scheduled = true;
    // gather every step of this turn of the event loop into one commit
    setImmediate(() => {
      scheduled = false;
      commit().catch(fatal);
    });
  };

  const checkpointTimer = setInterval(() => {
    if (core.dirty && !closed) commit().catch(fatal);
  }, config.storage.checkpoint.every);
  const parquetTimer = setInterval(() => {
    if (closed) return;
    storage.exportParquet(core.closedBefore()).catch(fatal);
  }, config.storage.parquet.every);

  const handle = async (msg: ToState): Promise<void> => {
    switch (msg.kind) {
      case 'task':
      case 'skip':
      case 'idle': {
        core.step(msg);
        if (msg.kind === 'task') {
          const partialBytes = msg.output.partials.reduce((n, p) => n + p.bytes.byteLength, 0);
          if (partialBytes > 0) send({ kind: 'released', bytes: partialBytes });
        }
        maybeCommit();
        return;
      }
      case 'flush': {
        const clocks = core.flush();
        await commit();
        send({ kind: 'reply', id: msg.id, value: { clocks, next: core.nextSteps() } });
        return;
      }
      case 'checkpoint':
        await commit();
        send({ kind: 'reply', id: msg.id, value: core.positions() });
        return;
      case 'query':
        send({ kind: 'reply', id: msg.id, value: await storage.query(msg.sql, msg.params, msg.opts) });
        return;
      case 'subscribe':
        subscribed = msg.on;
        return;
      case 'close': {
        closed = true;
        clearInterval(checkpointTimer);
        clearInterval(parquetTimer);
        await commit();
        await storage.exportParquet(core.exportableAtClose());
        await storage.close();
        send({ kind: 'reply', id: msg.id, value: core.positions() });
        port!.close();
        return;
      }
    }
  };

  port!.on('message', (msg: ToState) => {
    const id = 'id' in msg ? msg.id : null;
    handle(msg).catch((err: unknown) => {
      if (id !== null) send({ kind: 'failed', id, error: asSluiceError(err).toJSON() });
      else fatal(err);
    });
  });
}

main().catch((err: unknown) => {
  send({ kind: 'fatal', error: asSluiceError(err).toJSON() });
});
