/**
 * The two trees of the expression language (docs/expressions.md).
 *
 * `Expr` is what the parser produces from the text: it knows nothing about the stream.
 * `TypedExpr` is what the type checker produces against a StreamSchema: columns are resolved
 * to their index in the batch, every node carries its value type, literals have been coerced
 * to the type their context needs (an ISO-8601 string compared with a timestamp is already
 * milliseconds), and the sign of `-5` has been folded into the literal. Only a TypedExpr ever
 * reaches the compiler, so no user text can reach generated code except through these
 * validated fields.
 *
 * Every node carries the 1-based line:column of the token that names it (the operator for a
 * binary node, the function name for a call) so errors can point at it.
 */

export interface Pos {
  readonly line: number;
  readonly col: number;
}

export type ArithOp = '+' | '-' | '*' | '/' | '%';
export type CompareOp = '=' | '!=' | '<' | '<=' | '>' | '>=';
export type LogicOp = 'and' | 'or';
export type BinaryOp = ArithOp | CompareOp | LogicOp;

export const FUNCTION_NAMES = ['abs', 'floor', 'ceil', 'round', 'lower', 'upper', 'length', 'coalesce'] as const;
export type FunctionName = (typeof FUNCTION_NAMES)[number];

// ---------------------------------------------------------------------------------------------
// Parsed (untyped) tree

export interface ColumnRef extends Pos { readonly kind: 'column'; readonly name: string }
/** `text` is the literal as written; `integer` is true when written without '.' or exponent. */
export interface NumberLit extends Pos { readonly kind: 'number'; readonly value: number; readonly text: string; readonly integer: boolean }
export interface StringLit extends Pos { readonly kind: 'string'; readonly value: string }
export interface BoolLit extends Pos { readonly kind: 'bool'; readonly value: boolean }
export interface NullLit extends Pos { readonly kind: 'null' }
export type Literal = NumberLit | StringLit | BoolLit | NullLit;
/** In `in (...)` lists a number may carry a leading minus, kept as `negative`. */
export interface ListItem extends Pos { readonly lit: Literal; readonly negative: boolean }

export interface UnaryExpr extends Pos { readonly kind: 'unary'; readonly op: '-' | 'not'; readonly arg: Expr }
export interface BinaryExpr extends Pos { readonly kind: 'binary'; readonly op: BinaryOp; readonly left: Expr; readonly right: Expr }
export interface InExpr extends Pos { readonly kind: 'in'; readonly negated: boolean; readonly arg: Expr; readonly list: readonly ListItem[] }
export interface BetweenExpr extends Pos { readonly kind: 'between'; readonly negated: boolean; readonly arg: Expr; readonly low: Expr; readonly high: Expr }
export interface IsNullExpr extends Pos { readonly kind: 'isnull'; readonly negated: boolean; readonly arg: Expr }
/** `name` is lower-cased (function names are case-insensitive); it is not validated yet. */
export interface CallExpr extends Pos { readonly kind: 'call'; readonly name: string; readonly args: readonly Expr[] }

export type Expr = ColumnRef | Literal | UnaryExpr | BinaryExpr | InExpr | BetweenExpr | IsNullExpr | CallExpr;

// ---------------------------------------------------------------------------------------------
// Typed tree

/** Value types: the six column types plus the type of the bare `null` literal. */
export type ValueType = 'bool' | 'int32' | 'int64' | 'float64' | 'string' | 'timestamp' | 'null';

export interface TypedColumn extends Pos {
  readonly kind: 'column';
  readonly type: Exclude<ValueType, 'null'>;
  /** position of the column in the schema and in `batch.columns` */
  readonly index: number;
  readonly name: string;
}

/**
 * A literal after coercion: numeric and timestamp values are finite numbers (an int64-typed
 * literal is a safe integer), strings are strings, bools are booleans, and `null` has type
 * 'null' (or the type its context gave it, e.g. inside coalesce).
 */
export interface TypedLiteral extends Pos {
  readonly kind: 'literal';
  readonly type: ValueType;
  readonly value: number | string | boolean | null;
}

export interface TypedNeg extends Pos { readonly kind: 'neg'; readonly type: 'float64'; readonly arg: TypedExpr }
export interface TypedNot extends Pos { readonly kind: 'not'; readonly type: 'bool'; readonly arg: TypedExpr }
export interface TypedArith extends Pos { readonly kind: 'arith'; readonly type: 'float64'; readonly op: ArithOp; readonly left: TypedExpr; readonly right: TypedExpr }
export interface TypedCompare extends Pos { readonly kind: 'compare'; readonly type: 'bool'; readonly op: CompareOp; readonly left: TypedExpr; readonly right: TypedExpr }
export interface TypedLogic extends Pos { readonly kind: 'logic'; readonly type: 'bool'; readonly op: LogicOp; readonly left: TypedExpr; readonly right: TypedExpr }
export interface TypedIsNull extends Pos { readonly kind: 'isnull'; readonly type: 'bool'; readonly negated: boolean; readonly arg: TypedExpr }
export interface TypedIn extends Pos { readonly kind: 'in'; readonly type: 'bool'; readonly negated: boolean; readonly arg: TypedExpr; readonly list: readonly TypedLiteral[] }
export interface TypedBetween extends Pos { readonly kind: 'between'; readonly type: 'bool'; readonly negated: boolean; readonly arg: TypedExpr; readonly low: TypedExpr; readonly high: TypedExpr }
/** `round(x, digits)` keeps its digits (an integer literal) in `digits`, not in `args`. */
export interface TypedCall extends Pos { readonly kind: 'call'; readonly type: ValueType; readonly fn: FunctionName; readonly args: readonly TypedExpr[]; readonly digits: number | null }

export type TypedExpr =
  | TypedColumn | TypedLiteral | TypedNeg | TypedNot | TypedArith | TypedCompare | TypedLogic
  | TypedIsNull | TypedIn | TypedBetween | TypedCall;

/** The direct children of a typed node (in-list literals included). */
export function typedChildren(e: TypedExpr): readonly TypedExpr[] {
  switch (e.kind) {
    case 'column': case 'literal': return [];
    case 'neg': case 'not': case 'isnull': return [e.arg];
    case 'arith': case 'compare': case 'logic': return [e.left, e.right];
    case 'in': return [e.arg, ...e.list];
    case 'between': return [e.arg, e.low, e.high];
    case 'call': return e.args;
  }
}

/** Schema indices of the columns an expression reads, ascending, without duplicates. */
export function referencedColumns(e: TypedExpr): number[] {
  const seen = new Set<number>();
  const walk = (n: TypedExpr): void => {
    if (n.kind === 'column') seen.add(n.index);
    for (const c of typedChildren(n)) walk(c);
  };
  walk(e);
  return [...seen].sort((a, b) => a - b);
}

export function at(p: Pos): string {
  return `at ${p.line}:${p.col}`;
}
