/**
 * The pipeline compiler: a pipeline definition from the config (DESIGN.md A2) → a PipelinePlan
 * holding the kernels chosen for it, once, when the config loads. Workers run plans; they never
 * look at the text again.
 *
 *   where    → FilterKernel (generated from the type-checked AST)
 *   window   → tumbling / hopping / session parameters (ms)
 *   groupBy  → key columns and their group-by component kinds
 *   select   → one aggregate kernel per output column, bound to its argument's type
 *
 * Every problem is reported with the key path it belongs to, so the config loader can print
 * `pipelines.bid_stats.select.avg_price: unknown aggregate 'mean' at 1:1`.
 */

import type { ColumnType, StreamSchema } from './schema.js';
import type { WindowSpec } from './config.js';
import { SluiceError, sluiceError } from './errors.js';
import { AGGREGATES, shapesOf, type AggregateDef, type AggregateKernel, type OutputType } from '../native-free-kernels/aggregates.js';
import { AggLayout } from '../native-free-kernels/aggregate-state.js';
import { compileAddLoop, type AddLoop } from '../native-free-kernels/fused-aggregate.js';
import {
  checkFilter,
  compileFilter,
  compileValue,
  parseExpression,
  typecheck,
  type FilterKernel,
  type ValueKernel,
} from '../native-free-kernels/expression/index.js';
import type { Expr } from '../native-free-kernels/expression/ast.js';

export type { WindowSpec };

/** A pipeline as the config states it (durations already in ms); PipelineConfig fits it. */
export interface PipelineSpec {
  readonly from: string;
  readonly where?: string | undefined;
  readonly window: WindowSpec;
  readonly groupBy: readonly string[];
  readonly select: Readonly<Record<string, string>>;
  readonly lateness: number;
}

export interface KeyPlan {
  readonly name: string;
  readonly index: number;
  readonly type: ColumnType;
}

export type ArgPlan =
  | null
  | { readonly kind: 'column'; readonly index: number; readonly type: ColumnType }
  | { readonly kind: 'computed'; readonly kernel: ValueKernel; readonly type: ColumnType };

export interface AggregatePlan {
  /** output column name */
  readonly output: string;
  /** the select text, for messages and docs */
  readonly text: string;
  readonly def: AggregateDef;
  readonly kernel: AggregateKernel;
  readonly arg: ArgPlan;
  readonly param: number | null;
  readonly outputType: OutputType;
  /**
   * Names the argument for the shared non-null count (aggregate-state.ts): `*` for count(),
   * `col:<index>` for a column, a per-output key for a computed argument.
   */
  readonly argKey: string;
}

export interface PipelinePlan {
  readonly name: string;
  readonly stream: string;
  readonly schema: StreamSchema;
  /** index of the event-time column */
  readonly eventTime: number;
  readonly where: string | null;
  readonly filter: FilterKernel | null;
  readonly window: WindowSpec;
  readonly keys: readonly KeyPlan[];
  readonly aggregates: readonly AggregatePlan[];
  /** interleaved state layout of the aggregates (one row of doubles per group) */
  readonly layout: AggLayout;
  /** the aggregates' kernels, in order (for mergeStates) */
  readonly kernels: readonly AggregateKernel[];
  /** the fused add loop of every aggregate */
  readonly add: AddLoop;
  /** ms a window stays open after the watermark passes its end */
  readonly lateness: number;
}

export type IssueReporter = (path: (string | number)[], message: string) => void;

/** Key components carry one null bit each in a 32-bit word, next to the window component. */
export const MAX_GROUP_BY = 28;

interface CheckedParts {
  filter: FilterKernel | null;
  aggregates: AggregatePlan[];
  layout: AggLayout;
}

/**
 * Check `where` and the aggregate calls of `select` against the stream schema, reporting each
 * problem under its key path (`pipelines.<name>.where`, `pipelines.<name>.select.<output>`).
 * The config loader calls this; the structural checks (groupBy columns, names) are its own.
 */
export function checkPipelineExpressions(name: string, spec: PipelineSpec, schema: StreamSchema, report: IssueReporter): CheckedParts | null {
  let ok = true;
  const fail = (path: (string | number)[], message: string): void => {
    ok = false;
    report(['pipelines', name, ...path], message);
  };
  let filter: FilterKernel | null = null;
  if (spec.where !== undefined) {
    try {
      filter = compileFilter(checkFilter(spec.where, schema));
    } catch (err) {
      if (!(err instanceof SluiceError)) throw err;
      fail(['where'], err.message);
    }
  }
  const aggregates: AggregatePlan[] = [];
  for (const [output, text] of Object.entries(spec.select)) {
    try {
      aggregates.push(compileAggregate(output, text, schema));
    } catch (err) {
      if (!(err instanceof SluiceError)) throw err;
      fail(['select', output], err.message);
    }
  }
  return ok ? { filter, aggregates, layout: layoutOf(aggregates) } : null;
}

/** Every check of a pipeline against its stream; the plan when there was no problem. */
export function checkPipeline(
  name: string,
  spec: PipelineSpec,
  schema: StreamSchema,
  eventTimeColumn: string,
  report: IssueReporter,
): PipelinePlan | null {
  let ok = true;
  const keys: KeyPlan[] = [];
  if (spec.groupBy.length > MAX_GROUP_BY) {
    ok = false;
    report(['pipelines', name, 'groupBy'], `at most ${MAX_GROUP_BY} columns (got ${spec.groupBy.length})`);
  }
  spec.groupBy.forEach((col, i) => {
    const index = schema.index.get(col);
    if (index === undefined) {
      ok = false;
      report(['pipelines', name, 'groupBy', i], `unknown column '${col}'`);
    } else keys.push({ name: col, index, type: schema.fields[index]!.type });
  });
  const parts = checkPipelineExpressions(name, spec, schema, report);
  const eventTime = schema.index.get(eventTimeColumn);
  if (eventTime === undefined) {
    ok = false;
    report(['pipelines', name], `stream '${spec.from}' has no event-time column '${eventTimeColumn}'`);
  }
  if (!ok || parts === null || eventTime === undefined) return null;
  return {
    name,
    stream: spec.from,
    schema,
    eventTime,
    where: spec.where ?? null,
    filter: parts.filter,
    window: spec.window,
    keys,
    aggregates: parts.aggregates,
    layout: parts.layout,
    kernels: parts.aggregates.map((a) => a.kernel),
    add: compileAddLoop(parts.aggregates.map((a) => ({ kernel: a.kernel, argType: a.arg === null ? null : a.arg.type })), parts.layout),
    lateness: spec.lateness,
  };
}

/** The state layout: aggregates of the same argument share one non-null count. */
export function layoutOf(aggregates: readonly AggregatePlan[]): AggLayout {
  return new AggLayout(shapesOf(aggregates.map((a) => a.kernel), aggregates.map((a) => a.argKey)));
}

/** Compile, or throw one SLUICE_CONFIG_INVALID listing every problem. */
export function compilePipeline(name: string, spec: PipelineSpec, schema: StreamSchema, eventTimeColumn: string): PipelinePlan {
  const problems: string[] = [];
  const plan = checkPipeline(name, spec, schema, eventTimeColumn, (path, message) => problems.push(`${path.join('.')}: ${message}`));
  if (plan === null) throw sluiceError('CONFIG_INVALID', problems.join('\n'));
  return plan;
}

/**
 * `sum(price)`, `count()`, `approx_quantile(price, 0.99)`, `max(price * 0.9)`: parsed with the
 * expression parser; the outer call must be an aggregate, its argument any expression.
 */
export function compileAggregate(output: string, text: string, schema: StreamSchema): AggregatePlan {
  const expr = parseExpression(text);
  if (expr.kind !== 'call') {
    throw sluiceError('EXPR_TYPE', `expected an aggregate call such as count() or sum(price) at ${expr.line}:${expr.col}`);
  }
  const def = AGGREGATES.get(expr.name);
  if (def === undefined) {
    const known = [...AGGREGATES.keys()].join(', ');
    throw sluiceError('EXPR_UNKNOWN_FUNCTION', `unknown aggregate '${expr.name}' (one of ${known}) at ${expr.line}:${expr.col}`);
  }
  const args = expr.args;
  // count() and count(col) share one definition; every other aggregate has a fixed shape
  const arity = def.name === 'count' ? Math.min(args.length, 1) : def.arity;
  const expected = arity + (def.param === null ? 0 : 1);
  if (args.length !== expected) {
    const shape = def.name === 'count' ? 'count() or count(column)' : def.param !== null ? `${def.name}(column, ${def.param.name})` : `${def.name}(column)`;
    throw sluiceError('EXPR_TYPE', `${def.name} takes ${expected} argument${expected === 1 ? '' : 's'}: ${shape} at ${expr.line}:${expr.col}`);
  }
  let arg: ArgPlan = null;
  let argType: ColumnType | null = null;
  if (arity === 1) {
    const a = args[0]!;
    const typed = typecheck(a, schema);
    const t = typed.type;
    if (t === 'null') throw sluiceError('EXPR_TYPE', `${def.name} of a null literal at ${a.line}:${a.col}`);
    if (!def.accepts(t)) throw sluiceError('EXPR_TYPE', `${def.name} does not accept ${t} at ${a.line}:${a.col}`);
    argType = t;
    arg = typed.kind === 'column' ? { kind: 'column', index: typed.index, type: t } : { kind: 'computed', kernel: compileValue(typed), type: t };
  }
  let param: number | null = null;
  if (def.param !== null) {
    param = numberLiteral(args[def.arity]!);
    if (param === null) {
      const p = args[def.arity]!;
      throw sluiceError('EXPR_TYPE', `${def.name}: ${def.param.name} must be a number literal at ${p.line}:${p.col}`);
    }
    const problem = def.param.check(param);
    if (problem !== null) {
      const p = args[def.arity]!;
      throw sluiceError('EXPR_TYPE', `${def.name}: ${problem} at ${p.line}:${p.col}`);
    }
  }
  const argKey = arg === null ? '*' : arg.kind === 'column' ? `col:${arg.index}` : `expr:${output}`;
  return { output, text, def, kernel: def.bind(argType, param), arg, param, outputType: def.output, argKey };
}

function numberLiteral(e: Expr): number | null {
  if (e.kind === 'number') return e.value;
  if (e.kind === 'unary' && e.op === '-' && e.arg.kind === 'number') return -e.arg.value;
  return null;
}
