/**
 * The fused merge loop: one generated function per (aggregates, layout) that folds group
 * srcRows[i] of one state into group dstGids[i] of another, every aggregate of the group in one
 * pass — the shared counts, then each aggregate's `mergeCode` fragment. It is the merge side of
 * fused-aggregate.ts's add loop, and the state thread's hottest loop: every partial a worker
 * sends is merged through it.
 *
 * One loop instead of one per aggregate reads each group's interleaved state row once, and the
 * fragments are inlined instead of called through a closure per group (with count / max / avg /
 * sum, V8 did not inline those closures: one call site, four of them). With WindowState.merge's
 * split without a Map (window-state.ts): `bench kernels`, partials of 16 K rows merged,
 * 33.7 / 37.4 → 66.4 / 66.8 M rows/s.
 *
 * The fragments are constants of aggregates.ts, never user text. Sketch aggregates (no fragment)
 * keep their own loops; mergeStates runs them after this one.
 *
 *   for (i < n) { dr = dstGids[i] * STRIDE; sr = srcRows[i] * STRIDE;
 *                 d[dr + COUNT_0] += s[sr + COUNT_0]; ...                       (shared counts)
 *                 { db = dr + OFF_1; sb = sr + OFF_1; dc = ...; sc = ...; <fragment 1> } ... }
 */

import type { AggLayout } from './aggregate-state.js';
import type { AggregateKernel } from './aggregates.js';

/** Merge src rows into dst groups: `d` / `s` are the two states' data (same layout). */
export type MergeLoop = (d: Float64Array, dstGids: Int32Array, s: Float64Array, srcRows: Int32Array, n: number) => void;

/** the loop last used with a kernels array (a plan's), for the layout signature it was made for */
const byKernels = new WeakMap<readonly AggregateKernel[], { signature: string; loop: MergeLoop }>();
/** every loop made, by layout signature and fragments (distinct plans with the same aggregates share one) */
const bySource = new Map<string, MergeLoop>();

export function mergeLoopFor(kernels: readonly AggregateKernel[], layout: AggLayout): MergeLoop {
  const hit = byKernels.get(kernels);
  if (hit !== undefined && hit.signature === layout.signature) return hit.loop;
  const key = `${layout.signature}\u0000${kernels.map((k) => k.mergeCode ?? '-').join('\u0000')}`;
  let loop = bySource.get(key);
  if (loop === undefined) {
    loop = generate(kernels, layout);
    bySource.set(key, loop);
  }
  byKernels.set(kernels, { signature: layout.signature, loop });
  return loop;
}

function generate(kernels: readonly AggregateKernel[], layout: AggLayout): MergeLoop {
  const body: string[] = layout.counts.map((c) => `d[dr + ${c.offset}] += s[sr + ${c.offset}];`);
  kernels.forEach((k, i) => {
    if (k.mergeCode === null || k.mergeCode === '') return;
    const off = layout.offsets[i]!, cnt = layout.countOffsets[i]!;
    body.push(`{ const db = dr + ${off}, sb = sr + ${off}, dc = dr + ${cnt}, sc = sr + ${cnt}; ${k.mergeCode} }`);
  });
  const src = `
    for (let i = 0; i < n; i++) {
      const dr = dstGids[i] * ${layout.stride};
      const sr = srcRows[i] * ${layout.stride};
      ${body.join('\n      ')}
    }`;
  return new Function('d', 'dstGids', 's', 'srcRows', 'n', src) as MergeLoop;
}
