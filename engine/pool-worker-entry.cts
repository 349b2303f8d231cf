/**
 * piscina's entry file for its workers, CommonJS on purpose. piscina loads a worker file with
 * require() first, and on Node ≥ 20.19 require() of an ES module instantiates it synchronously
 * (require(esm)). A worker terminated in the middle of that aborts the whole process with a V8
 * fatal error ("v8::Module::IsGraphAsync must be used on an instantiated module"): `serve`
 * stopped by a signal while its workers were still loading died with SIGABRT in 3 of 40 tries
 * under load. This file loads the real worker (pool-worker.ts) with import(), which a
 * termination interrupts cleanly.
 *
 * The handler piscina gets is the promise of that import (an ES-module-shaped export whose
 * `default` is awaited), so piscina waits for the load before the worker enters its
 * Atomics.wait loop. Handing it a function that awaited the import itself left the load stalled
 * behind that blocking wait until the first task arrived: the first batches after a start
 * waited 300–500 ms for the worker's code to load and compile.
 */
import type { PoolTask } from './protocol.js';

type RunTask = (task: PoolTask) => unknown;

const handler: { readonly __esModule: true; readonly default: Promise<RunTask> } = {
  __esModule: true,
  default: import('./pool-worker.js').then((m) => m.default),
};

export = handler;
