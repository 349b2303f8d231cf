/**
 * The pool of decode / aggregate workers (piscina), and whether they have loaded their code.
 *
 * A worker loads pool-worker.ts when it starts (pool-worker-entry.cts) and then says so with a
 * PoolNotice. The engine starts the pool first thing in open(), so the workers load while the
 * state worker opens DuckDB, and reports ready only once they have: a batch that reached a
 * worker still loading waited 300–500 ms for its modules to load and compile.
 */
import { Piscina } from 'piscina';
import { resolveWorkerThreads, type SluiceConfig } from './config.js';
import type { PoolNotice, WorkerInit } from './protocol.js';

/** pool worker heap limit under SLUICE_TEST_FAULTS=1 (see the Piscina options) */
const TEST_FAULT_HEAP_MB = 256;

export class WorkerPool {
  readonly piscina: Piscina;
  readonly threads: number;
  private loadedCount = 0;
  private readonly allLoaded: Promise<void>;

  constructor(config: SluiceConfig) {
    this.threads = resolveWorkerThreads(config.workers.threads);
    const init: WorkerInit = { config };
    this.piscina = new Piscina({
      filename: new URL('./pool-worker-entry.cjs', import.meta.url).href,
      minThreads: this.threads,
      maxThreads: this.threads,
      idleTimeout: Number.MAX_SAFE_INTEGER,
      // a second task waits in the worker's own queue, so finishing one starts the next at once
      // instead of after a round trip through the main thread (tasks run one at a time anyway:
      // the handler is synchronous)
      concurrentTasksPerWorker: 2,
      workerData: init,
      // workers.heap bounds each worker's JS heap (batches and state live mostly in typed
      // arrays outside it). Under the test hook (injectFault 'oom') a small heap makes an
      // injected out-of-memory end the worker within a second, the way a real one would.
      resourceLimits: {
        maxOldGenerationSizeMb: process.env.SLUICE_TEST_FAULTS === '1' ? TEST_FAULT_HEAP_MB : Math.floor(config.workers.heap / 2 ** 20),
      },
    });
    let loadedAll: () => void = () => {};
    this.allLoaded = new Promise((resolve) => (loadedAll = resolve));
    // attached before any message can arrive: piscina drops the events nobody listens to
    this.piscina.on('message', (m: unknown) => {
      if (isPoolNotice(m) && ++this.loadedCount >= this.threads) loadedAll();
    });
  }

  /** Workers that have loaded their code so far (a worker that replaced a failed one counts again). */
  get loaded(): number {
    return this.loadedCount;
  }

  /** Resolves true once every worker has loaded its code, false if `ms` passed first. */
  async whenLoaded(ms: number): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), ms)));
    try {
      return await Promise.race([this.allLoaded.then(() => true), late]);
    } finally {
      clearTimeout(timer);
    }
  }
}

function isPoolNotice(m: unknown): m is PoolNotice {
  return typeof m === 'object' && m !== null && (m as { kind?: unknown }).kind === 'sluice-pool-worker-loaded';
}
