/**
 * Type checker: Expr + StreamSchema → TypedExpr.
 *
 * Rules (docs/expressions.md has the user-facing version):
 * - arithmetic (+ - * / %, unary minus) takes numbers (int32, int64, float64) and yields
 *   float64; abs/floor/ceil/round/length yield float64;
 * - comparisons: number with number, string with string, bool with bool, timestamp with
 *   timestamp, with a number (milliseconds) or with an ISO-8601 string literal (converted to
 *   milliseconds here, so the compiler only ever sees a number);
 * - `null` compares with anything; and/or/not take bool;
 * - coalesce takes arguments of one family (numbers, strings, bools, timestamps).
 *
 * Integer literals must be safe integers (|n| ≤ 2^53 − 1): a larger one cannot be represented
 * as a double, and comparing an int64 column against a silently rounded value would select
 * the wrong rows.
 *
 * Column names are looked up in `schema.index` (a Map), never as object properties, so names
 * like `constructor` or `__proto__` are simply unknown columns.
 */
import { sluiceError, type ErrorKey } from '../../engine/errors.js';
import type { StreamSchema } from '../../engine/schema.js';
import { parseIsoTimestamp } from '../iso-time.js';
import {
  FUNCTION_NAMES, type CompareOp, type Expr, type FunctionName, type ListItem, type Pos, type TypedCall,
  type TypedExpr, type TypedLiteral, type ValueType,
} from './ast.js';

const MAX_SAFE = Number.MAX_SAFE_INTEGER;
const FUNCTIONS: ReadonlyMap<string, FunctionName> = new Map(FUNCTION_NAMES.map((f) => [f, f]));

function fail(key: ErrorKey, message: string, p: Pos): never {
  throw sluiceError(key, `${message} at ${p.line}:${p.col}`);
}

function isNumeric(t: ValueType): boolean {
  return t === 'int32' || t === 'int64' || t === 'float64';
}

type Family = 'number' | 'string' | 'bool' | 'timestamp';

function familyOf(t: ValueType): Family | null {
  if (isNumeric(t)) return 'number';
  if (t === 'string' || t === 'bool' || t === 'timestamp') return t;
  return null;
}

// ---------------------------------------------------------------------------------------------

class Checker {
  constructor(private readonly schema: StreamSchema) {}

  check(e: Expr): TypedExpr {
    switch (e.kind) {
      case 'column': {
        const index = this.schema.index.get(e.name);
        if (index === undefined) fail('EXPR_UNKNOWN_COLUMN', `unknown column '${e.name}'`, e);
        const field = this.schema.fields[index]!;
        return { kind: 'column', type: field.type, index, name: field.name, line: e.line, col: e.col };
      }
      case 'number': return this.numberLiteral(e.value, e.text, e.integer, false, e);
      case 'string': return { kind: 'literal', type: 'string', value: e.value, line: e.line, col: e.col };
      case 'bool': return { kind: 'literal', type: 'bool', value: e.value, line: e.line, col: e.col };
      case 'null': return { kind: 'literal', type: 'null', value: null, line: e.line, col: e.col };
      case 'unary': {
        if (e.op === '-' && e.arg.kind === 'number') {
          // fold the sign into the literal so `auction > -5` is a comparison with a literal
          return this.numberLiteral(e.arg.value, e.arg.text, e.arg.integer, true, e);
        }
        const arg = this.check(e.arg);
        if (e.op === 'not') {
          if (arg.type !== 'bool' && arg.type !== 'null') fail('EXPR_TYPE', `operator 'not' cannot be applied to ${arg.type}`, e);
          return { kind: 'not', type: 'bool', arg, line: e.line, col: e.col };
        }
        if (!isNumeric(arg.type) && arg.type !== 'null') fail('EXPR_TYPE', `operator '-' cannot be applied to ${arg.type}`, e);
        return { kind: 'neg', type: 'float64', arg, line: e.line, col: e.col };
      }
      case 'binary': {
        const left = this.check(e.left);
        const right = this.check(e.right);
        switch (e.op) {
          case 'and': case 'or':
            if ((left.type !== 'bool' && left.type !== 'null') || (right.type !== 'bool' && right.type !== 'null')) {
              fail('EXPR_TYPE', `operator '${e.op}' cannot be applied to ${left.type} and ${right.type}`, e);
            }
            return { kind: 'logic', type: 'bool', op: e.op, left, right, line: e.line, col: e.col };
          case '+': case '-': case '*': case '/': case '%':
            if ((!isNumeric(left.type) && left.type !== 'null') || (!isNumeric(right.type) && right.type !== 'null')) {
              fail('EXPR_TYPE', `operator '${e.op}' cannot be applied to ${left.type} and ${right.type}`, e);
            }
            return { kind: 'arith', type: 'float64', op: e.op, left, right, line: e.line, col: e.col };
          default: {
            const [l, r] = this.comparable(left, right, `'${e.op}'`, e);
            return { kind: 'compare', type: 'bool', op: e.op as CompareOp, left: l, right: r, line: e.line, col: e.col };
          }
        }
      }
      case 'isnull':
        return { kind: 'isnull', type: 'bool', negated: e.negated, arg: this.check(e.arg), line: e.line, col: e.col };
      case 'in': {
        const arg = this.check(e.arg);
        const list = e.list.map((item) => this.comparable(arg, this.listItem(item), "'in'", item)[1] as TypedLiteral);
        return { kind: 'in', type: 'bool', negated: e.negated, arg, list, line: e.line, col: e.col };
      }
      case 'between': {
        const arg = this.check(e.arg);
        const low = this.comparable(arg, this.check(e.low), "'between'", e)[1];
        const high = this.comparable(arg, this.check(e.high), "'between'", e)[1];
        return { kind: 'between', type: 'bool', negated: e.negated, arg, low, high, line: e.line, col: e.col };
      }
      case 'call': return this.call(e);
    }
  }

  private numberLiteral(value: number, text: string, integer: boolean, negative: boolean, p: Pos): TypedLiteral {
    const shown = negative ? `-${text}` : text;
    if (!Number.isFinite(value)) fail('EXPR_TYPE', `numeric literal ${shown} is out of range`, p);
    if (integer && value > MAX_SAFE) {
      fail('EXPR_TYPE', `integer literal ${shown} cannot be represented exactly (integer literals are limited to ±${MAX_SAFE})`, p);
    }
    const v = negative ? -value : value;
    return { kind: 'literal', type: 'float64', value: v === 0 ? (negative ? -0 : 0) : v, line: p.line, col: p.col };
  }

  private listItem(item: ListItem): TypedExpr {
    const lit = item.lit;
    if (lit.kind === 'number') return this.numberLiteral(lit.value, lit.text, lit.integer, item.negative, item);
    return this.check(lit);
  }

  /**
   * Checks that two operands can be compared and returns them with literals coerced
   * (an ISO string next to a timestamp becomes a timestamp literal).
   */
  private comparable(a: TypedExpr, b: TypedExpr, op: string, p: Pos): [TypedExpr, TypedExpr] {
    if (a.type === 'null' || b.type === 'null') return [a, b];
    if (a.type === 'timestamp' && b.type === 'string') return [a, this.isoLiteral(b, op, p)];
    if (b.type === 'timestamp' && a.type === 'string') return [this.isoLiteral(a, op, p), b];
    const fa = familyOf(a.type);
    const fb = familyOf(b.type);
    const ok = fa === fb || (fa === 'timestamp' && fb === 'number') || (fa === 'number' && fb === 'timestamp');
    if (!ok) fail('EXPR_TYPE', `operator ${op} cannot compare ${a.type} with ${b.type}`, p);
    return [a, b];
  }

  private isoLiteral(e: TypedExpr, op: string, p: Pos): TypedLiteral {
    if (e.kind !== 'literal' || typeof e.value !== 'string') {
      fail('EXPR_TYPE', `operator ${op} cannot compare timestamp with string`, p);
    }
    const ms = parseIsoTimestamp(e.value);
    if (!Number.isFinite(ms)) {
      fail('EXPR_TYPE', `invalid timestamp literal '${e.value}' (expected ISO-8601 such as 2024-05-01T12:00:00Z)`, e);
    }
    return { kind: 'literal', type: 'timestamp', value: ms, line: e.line, col: e.col };
  }

  private call(e: Extract<Expr, { kind: 'call' }>): TypedCall {
    const fn = FUNCTIONS.get(e.name);
    if (fn === undefined) fail('EXPR_UNKNOWN_FUNCTION', `unknown function '${e.name}'`, e);
    const arity = (min: number, max: number): void => {
      const n = e.args.length;
      if (n >= min && n <= max) return;
      const want = min === max ? `${min} argument${min === 1 ? '' : 's'}`
        : max === Infinity ? `at least ${min} argument${min === 1 ? '' : 's'}` : `${min} or ${max} arguments`;
      fail('EXPR_TYPE', `function '${fn}' takes ${want}, got ${n}`, e);
    };
    const mk = (type: ValueType, args: TypedExpr[], digits: number | null = null): TypedCall =>
      ({ kind: 'call', type, fn, args, digits, line: e.line, col: e.col });
    switch (fn) {
      case 'abs': case 'floor': case 'ceil': case 'round': {
        if (fn === 'round') arity(1, 2); else arity(1, 1);
        const arg = this.check(e.args[0]!);
        if (!isNumeric(arg.type) && arg.type !== 'null') fail('EXPR_TYPE', `function '${fn}' cannot be applied to ${arg.type}`, e);
        let digits: number | null = null;
        if (e.args.length === 2) digits = this.roundDigits(e.args[1]!);
        return mk('float64', [arg], digits);
      }
      case 'lower': case 'upper': case 'length': {
        arity(1, 1);
        const arg = this.check(e.args[0]!);
        if (arg.type !== 'string' && arg.type !== 'null') fail('EXPR_TYPE', `function '${fn}' cannot be applied to ${arg.type}`, e);
        return mk(fn === 'length' ? 'float64' : 'string', [arg]);
      }
      case 'coalesce': {
        arity(1, Infinity);
        return this.coalesce(e.args.map((a) => this.check(a)), mk);
      }
    }
  }

  private roundDigits(e: Expr): number {
    let negative = false;
    let lit = e;
    if (lit.kind === 'unary' && lit.op === '-') { negative = true; lit = lit.arg; }
    if (lit.kind !== 'number' || !lit.integer || lit.value > 308) {
      fail('EXPR_TYPE', "function 'round' needs an integer literal between -308 and 308 as its second argument", e);
    }
    return negative ? -lit.value : lit.value;
  }

  private coalesce(args: TypedExpr[], mk: (type: ValueType, args: TypedExpr[]) => TypedCall): TypedCall {
    // The family and type come from the non-literal arguments; literals then adapt to it.
    let family: Family | null = null;
    let type: ValueType = 'null';
    const literalFamily = (a: TypedExpr): Family | null => (a.kind === 'literal' ? familyOf(a.type) : null);
    for (const a of args) {
      if (a.type === 'null' || a.kind === 'literal') continue;
      const f = familyOf(a.type)!;
      if (family !== null && f !== family) fail('EXPR_TYPE', `function 'coalesce' cannot mix ${type} and ${a.type}`, a);
      family = f;
      type = type === 'null' ? a.type : widen(type, a.type);
    }
    if (family === null) {
      // only literals: their own family decides (numbers are float64)
      for (const a of args) {
        const f = literalFamily(a);
        if (f === null) continue;
        if (family !== null && f !== family) fail('EXPR_TYPE', `function 'coalesce' cannot mix ${type} and ${a.type}`, a);
        family = f;
        type = a.type;
      }
    }
    const out = args.map((a): TypedExpr => {
      if (a.kind !== 'literal' || a.type === 'null') return a;
      if (family === 'timestamp' && a.type === 'string') return this.isoLiteral(a, "'coalesce'", a);
      if (family === 'timestamp' && a.type === 'float64') return { ...a, type: 'timestamp' };
      if (familyOf(a.type) !== family) fail('EXPR_TYPE', `function 'coalesce' cannot mix ${type} and ${a.type}`, a);
      if (family === 'number' && (type === 'int32' || type === 'int64')) {
        const v = a.value as number;
        if (Number.isInteger(v) && Math.abs(v) <= MAX_SAFE) {
          if (type === 'int32' && (v | 0) !== v) type = 'int64';
          return { ...a, type: (v | 0) === v ? 'int32' : 'int64', value: v === 0 ? 0 : v };
        }
        type = 'float64';
      }
      return a;
    });
    // a literal that did not fit int32/int64 turned the whole call into float64
    const final = out.map((a) => (a.kind === 'literal' && type === 'float64' && isNumeric(a.type) ? { ...a, type: 'float64' as const } : a));
    return mk(type, final);
  }
}

function widen(a: ValueType, b: ValueType): ValueType {
  if (a === b) return a;
  if ((a === 'int32' && b === 'int64') || (a === 'int64' && b === 'int32')) return 'int64';
  if (isNumeric(a) && isNumeric(b)) return 'float64';
  return a;
}

/** Resolves columns and functions and checks types; throws EXPR_UNKNOWN_COLUMN / EXPR_UNKNOWN_FUNCTION / EXPR_TYPE. */
export function typecheck(expr: Expr, schema: StreamSchema): TypedExpr {
  return new Checker(schema).check(expr);
}
