/**
 * The watermark chain: how parallel workers agree on each batch's watermark without waiting
 * for each other's work.
 *
 * Which events are late must not depend on how the stream was cut into batches or which worker
 * got which batch, so a worker needs, for its batch, the largest event time of everything
 * before it (DESIGN.md B3; docs/pipelines.md). Tasks of a stream are numbered t = 1, 2, 3...
 * in ingest order. A worker decodes its batch in parallel with the others, then waits for
 * slot t−1, publishes slot t = max(slot t−1, its batch's largest event time) and goes on
 * aggregating. Only that one max is sequential.
 *
 *   flags  Int32Array[R]   flags[t % R] === t once slot t is published
 *   values Float64Array[R] the largest event time through task t
 *
 * Slots live in a SharedArrayBuffer (R = ring size; the dispatcher keeps fewer than R tasks of
 * a stream in flight, so a slot is never reused while someone still needs it). piscina hands
 * tasks out in FIFO order, so task t−1 always started before task t and is never stuck behind
 * it: the wait cannot deadlock. A task that fails without publishing (a crashed worker) is
 * published by the main thread with the value of its predecessor.
 */

export const CHAIN_RING = 4096;

export class WatermarkChain {
  readonly sab: SharedArrayBuffer;
  private readonly flags: Int32Array;
  private readonly values: Float64Array;
  /** started[t % R] === t once a worker has taken task t (the dispatcher's gate) */
  private readonly started: Int32Array;

  constructor(sab?: SharedArrayBuffer) {
    this.sab = sab ?? new SharedArrayBuffer(CHAIN_RING * 16);
    this.values = new Float64Array(this.sab, 0, CHAIN_RING);
    this.flags = new Int32Array(this.sab, CHAIN_RING * 8, CHAIN_RING);
    this.started = new Int32Array(this.sab, CHAIN_RING * 12, CHAIN_RING);
    if (sab === undefined) {
      this.flags.fill(-1);
      this.started.fill(-1);
    }
  }

  /** A worker took task t (called first thing in the task, before decoding). */
  markStarted(t: number): void {
    const i = t % CHAIN_RING;
    Atomics.store(this.started, i, t);
    Atomics.notify(this.started, i);
  }

  /** Has task t started (or, for slot 0 and main-thread steps, been published)? */
  isStarted(t: number): boolean {
    return Atomics.load(this.started, t % CHAIN_RING) === t || this.isPublished(t);
  }

  /** Main thread: resolve once task t has started or its slot is published. */
  async whenStarted(t: number): Promise<void> {
    const i = t % CHAIN_RING;
    while (!this.isStarted(t)) {
      const f = Atomics.load(this.started, i);
      if (f === t) return;
      const r = Atomics.waitAsync(this.started, i, f, 5);
      if (r.async) await r.value;
    }
  }

  /** Publish slot t (value first, then the flag: Atomics.store orders them). */
  publish(t: number, value: number): void {
    const i = t % CHAIN_RING;
    this.values[i] = value;
    Atomics.store(this.flags, i, t);
    Atomics.notify(this.flags, i);
  }

  isPublished(t: number): boolean {
    return Atomics.load(this.flags, t % CHAIN_RING) === t;
  }

  /** The value of a published slot. */
  valueAt(t: number): number {
    if (!this.isPublished(t)) throw new Error(`watermark chain: slot ${t} is not published`);
    return this.values[t % CHAIN_RING]!;
  }

  /**
   * Block (worker threads only) until slot t is published and return its value. Throws after
   * `timeoutMs` — a predecessor that never publishes is a bug, not a reason to hang forever.
   */
  waitFor(t: number, timeoutMs = 60_000): number {
    const i = t % CHAIN_RING;
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const f = Atomics.load(this.flags, i);
      if (f === t) return this.values[i]!;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`watermark chain: slot ${t} not published within ${timeoutMs} ms`);
      Atomics.wait(this.flags, i, f, Math.min(left, 1000));
    }
  }

  /** Main thread: resolve once slot t is published (never blocks the event loop). */
  async whenPublished(t: number): Promise<number> {
    const i = t % CHAIN_RING;
    for (;;) {
      const f = Atomics.load(this.flags, i);
      if (f === t) return this.values[i]!;
      const r = Atomics.waitAsync(this.flags, i, f, 1000);
      if (r.async) await r.value;
    }
  }
}
