/**
 * The piscina worker: one TaskRunner per thread, built from the validated config in
 * workerData; every result's bytes are in the runner's shared outbox or moved (transferred)
 * back, never cloned.
 */

import { parentPort, workerData } from 'node:worker_threads';
import { move, transferableSymbol, valueSymbol } from 'piscina';
import type { SluiceConfig } from './config.js';
import { parcelsOf, type PoolNotice, type PoolTask, type WorkerInit } from './protocol.js';
import { transferablesOf } from './outbox.js';
import { TaskRunner } from './task-runner.js';

// workerData is the config the main thread validated (structured clone of a SluiceConfig).
const runner = new TaskRunner((workerData as WorkerInit).config as SluiceConfig);
const loaded: PoolNotice = { kind: 'sluice-pool-worker-loaded' };
parentPort?.postMessage(loaded);

export default function runTask(task: PoolTask): unknown {
  if (task.fault !== undefined && process.env.SLUICE_TEST_FAULTS === '1') injectFault(task.fault);
  const result = runner.run(task);
  // parcels in the shared outbox go as references; the others are moved, never cloned (piscina
  // transfers every buffer listed under transferableSymbol)
  return move({ [transferableSymbol]: transferablesOf(parcelsOf(result)), [valueSymbol]: result });
}

/** Test-only: make this worker die the way a real fault would (SLUICE_TEST_FAULTS=1). */
function injectFault(kind: 'crash' | 'oom'): never {
  if (kind === 'crash') process.exit(70); // in a worker thread this ends the thread only
  // JS arrays live on the V8 heap, so the worker hits its heap limit and Node ends the thread
  // (ERR_WORKER_OUT_OF_MEMORY). Typed arrays would not do: their memory is outside the heap, so
  // they would fill the host's RAM instead, until an allocation throws or the kernel kills us.
  const hog: number[][] = [];
  for (let i = 0; ; i++) hog.push(new Array<number>(1 << 16).fill(i + 0.5));
}
