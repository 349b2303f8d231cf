/**
 * The fused add loop: one generated function per pipeline that, for each (row, group) pair,
 * updates every aggregate of the pipeline in the group's interleaved state row
 * (aggregate-state.ts). One pass over the rows and one cache line per row, instead of one pass
 * and one cache miss per aggregate field.
 *
 * The loop is generated from the kernels' `fused` fragments (constants of aggregates.ts) and
 * the layout's offsets — never from user text — once per combination of "which arguments carry
 * a validity array", and cached on the plan. Sketch aggregates keep their own loops and run
 * after the fused one.
 *
 *   for (i < n) { r = rows[i]; g = gids[i] * STRIDE;
 *                 S[g + COUNT_0] += 1;  if (v1[r] !== 0) S[g + COUNT_1] += 1;   (shared counts)
 *                 { b = g + OFF_1; if (v1[r] !== 0) { x = a1[r]; <sum fragment> } }
 *                 { b = g + OFF_2; if (v1[r] !== 0) { x = a1[r]; <max fragment> } } ... }
 */

import type { Column, ColumnType } from '../engine/schema.js';
import type { AggLayout, AggState } from './aggregate-state.js';
import { doublesOf, type AddContext, type AggregateKernel } from './aggregates.js';

export interface AddSpec {
  readonly kernel: AggregateKernel;
  /** type of the argument column (null for count()) */
  readonly argType: ColumnType | null;
}

/** Update `st` with rows[i] → group gids[i] for i < n; args[k] is aggregate k's argument. */
export type AddLoop = (st: AggState, gids: Int32Array, rows: Int32Array, n: number, args: readonly (Column | null)[], ctx: AddContext) => void;

type Generated = (
  S: Float64Array,
  gids: Int32Array,
  rows: Int32Array,
  n: number,
  A: readonly (Float64Array | Int32Array | null)[],
  V: readonly (Uint8Array | null)[],
  ET: Float64Array,
  seq: number,
) => void;

export function compileAddLoop(specs: readonly AddSpec[], layout: AggLayout): AddLoop {
  // keyed by one '0' / '1' per aggregate ("argument k carries a validity array"); a bit mask
  // would wrap at 32 aggregates (1 << 32 === 1)
  const variants = new Map<string, Generated>();
  const fused = specs.map((s) => s.kernel.fused);
  const A: (Float64Array | Int32Array | null)[] = specs.map(() => null);
  const V: (Uint8Array | null)[] = specs.map(() => null);

  return (st, gids, rows, n, args, ctx) => {
    if (st.layout !== layout) throw new Error('add loop used with a state of another layout');
    let key = '';
    for (let k = 0; k < specs.length; k++) {
      const arg = args[k] ?? null;
      V[k] = arg === null ? null : arg.valid;
      key += V[k] === null ? '0' : '1';
      const f = fused[k];
      A[k] = f === null || f === undefined ? null : argArray(f.input, arg, k);
    }
    let fn = variants.get(key);
    if (fn === undefined) {
      fn = generate(specs, layout, key);
      variants.set(key, fn);
    }
    fn(st.data, gids, rows, n, A, V, ctx.eventTime, ctx.seq);
    for (let k = 0; k < specs.length; k++) {
      const own = specs[k]!.kernel.addRows;
      if (own !== null) own(st, k, gids, rows, n, args[k] ?? null, ctx);
    }
  };
}

function argArray(input: 'none' | 'f64' | 'i32' | 'i64', arg: Column | null, slot: number): Float64Array | Int32Array | null {
  switch (input) {
    case 'none': return null;
    case 'f64': return doublesOf(arg, slot);
    case 'i64':
      if (arg === null || arg.type !== 'int64') throw new Error('int64 argument expected');
      return arg.words;
    case 'i32':
      if (arg === null || arg.type !== 'int32') throw new Error('int32 argument expected');
      return arg.values;
  }
}

function generate(specs: readonly AddSpec[], layout: AggLayout, nullable: string): Generated {
  const bind: string[] = specs.map((_, k) => `const a${k} = A[${k}], v${k} = V[${k}];`);
  const body: string[] = [];
  // each shared count once, with the null check of the argument it counts
  for (const c of layout.counts) {
    const update = `S[g + ${c.offset}] += 1;`;
    body.push(nullable[c.owner] === '1' ? `if (v${c.owner}[r] !== 0) ${update}` : update);
  }
  specs.forEach((s, k) => {
    const f = s.kernel.fused;
    if (f === null) return;
    const read = f.input === 'f64' || f.input === 'i32' ? `const x = a${k}[r];` : f.input === 'i64' ? `const lo = a${k}[2 * r], hi = a${k}[2 * r + 1];` : '';
    const update = `const b = g + ${layout.offsets[k]!}; ${read} ${f.code}`;
    body.push(nullable[k] === '1' ? `if (v${k}[r] !== 0) { ${update} }` : `{ ${update} }`);
  });
  const src = `
    ${bind.join('\n    ')}
    for (let i = 0; i < n; i++) {
      const r = rows[i];
      const g = gids[i] * ${layout.stride};
      ${body.join('\n      ')}
    }`;
  const factory = new Function('T', `return function add(S, gids, rows, n, A, V, ET, seq) {${src}\n};`) as (t: Float64Array) => Generated;
  return factory(new Float64Array(2));
}
