/**
 * The expression language (DESIGN.md A2 "Expressions", docs/expressions.md): parse → type
 * check against a stream schema → compile to a filter or value kernel.
 */
import { sluiceError } from '../../engine/errors.js';
import type { StreamSchema } from '../../engine/schema.js';
import type { TypedExpr } from './ast.js';
import { parseExpression } from './parser.js';
import { typecheck } from './typecheck.js';

export type {
  ArithOp, BinaryOp, CompareOp, Expr, FunctionName, LogicOp, Pos, TypedExpr, TypedColumn, TypedLiteral, ValueType,
} from './ast.js';
export { FUNCTION_NAMES, referencedColumns } from './ast.js';
export { parseExpression, MAX_DEPTH } from './parser.js';
export { typecheck } from './typecheck.js';
export { parseIsoTimestamp } from '../iso-time.js';
export { compileFilter, compileValue, kernelSource, type FilterKernel, type ValueKernel } from './compile.js';

/** Parse + type check; throws EXPR_SYNTAX / EXPR_UNKNOWN_COLUMN / EXPR_UNKNOWN_FUNCTION / EXPR_TYPE. */
export function checkExpression(text: string, schema: StreamSchema): TypedExpr {
  return typecheck(parseExpression(text), schema);
}

/** checkExpression for a `where`: the expression must be bool (or the null literal). */
export function checkFilter(text: string, schema: StreamSchema): TypedExpr {
  const e = checkExpression(text, schema);
  if (e.type !== 'bool' && e.type !== 'null') {
    throw sluiceError('EXPR_TYPE', `a filter must be a bool expression, got ${e.type} at ${e.line}:${e.col}`);
  }
  return e;
}
