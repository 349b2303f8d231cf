/**
 * piscina's entry file for its workers, CommonJS on purpose. piscina loads a worker file with
 * require() first, and on Node ≥ 20.19 require() of an ES module instantiates it synchronously
 * (require(esm)). A worker terminated in the middle of that aborts the whole process with a V8
 * fatal error ("v8::Module::IsGraphAsync must be used on an instantiated module"): `serve`
 * stopped by a signal while its workers were still loading died with SIGABRT in 3 of 40 tries
 * under load. This file loads the real worker (pool-worker.ts) with import(), which a
 * termination interrupts cleanly, and hands piscina a handler that waits for it only until it
 * has loaded.
 */
import type { PoolTask } from './protocol.js';

type RunTask = (task: PoolTask) => unknown;

let run: RunTask | null = null;
const loading: Promise<RunTask> = import('./pool-worker.js').then((m) => (run = m.default));

function runTask(task: PoolTask): unknown {
  return run !== null ? run(task) : loading.then((r) => r(task));
}

export = runTask;
