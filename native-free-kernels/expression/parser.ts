/**
 * Recursive-descent parser: text → Expr. Precedence, lowest first (as in SQL):
 *
 *   or  <  and  <  not  <  comparison (= != <> < <= > >=, is [not] null, [not] in, [not] between)
 *       <  + -  <  * / %  <  unary minus
 *
 * Comparisons do not chain (`a < b < c` is an error, as in DuckDB and PostgreSQL). The
 * bounds of `between` are parsed above `and`, so `x between 1 and 5 and y` means
 * `(x between 1 and 5) and y`. `in` lists hold literals only.
 *
 * Nesting is limited (MAX_DEPTH) so that hostile input cannot exhaust the stack of the
 * parser, the type checker or the code generator.
 */
import { sluiceError } from '../../engine/errors.js';
import type { BinaryOp, CompareOp, Expr, ListItem, Literal, Pos } from './ast.js';
import { tokenize, type Token } from './tokenizer.js';

/** Deepest allowed nesting of the tree (parentheses, operator chains, calls). */
export const MAX_DEPTH = 100;

const COMPARE_OPS: ReadonlySet<string> = new Set(['=', '!=', '<', '<=', '>', '>=']);

function describe(t: Token): string {
  switch (t.kind) {
    case 'eof': return 'end of expression';
    case 'ident': return `name '${t.text}'`;
    case 'keyword': return `'${t.text}'`;
    case 'op': return `'${t.text}'`;
    case 'number': return `number ${t.text}`;
    case 'string': return 'string literal';
  }
}

class Parser {
  private pos = 0;
  private nesting = 0;
  private readonly depthOf = new WeakMap<Expr, number>();

  constructor(private readonly tokens: readonly Token[]) {}

  private peek(offset = 0): Token {
    return this.tokens[Math.min(this.pos + offset, this.tokens.length - 1)]!;
  }

  private next(): Token {
    const t = this.peek();
    if (this.pos < this.tokens.length - 1) this.pos++;
    return t;
  }

  private fail(message: string, p: Pos): never {
    throw sluiceError('EXPR_SYNTAX', `${message} at ${p.line}:${p.col}`);
  }

  private isKeyword(t: Token, word: string): boolean {
    return t.kind === 'keyword' && t.text === word;
  }

  private isOp(t: Token, op: string): boolean {
    return t.kind === 'op' && t.text === op;
  }

  private expectOp(op: string): Token {
    const t = this.peek();
    if (!this.isOp(t, op)) this.fail(`expected '${op}'`, t);
    return this.next();
  }

  private expectKeyword(word: string): Token {
    const t = this.peek();
    if (!this.isKeyword(t, word)) this.fail(`expected '${word}'`, t);
    return this.next();
  }

  /** Records the depth of a new node and rejects trees deeper than MAX_DEPTH. */
  private node<T extends Expr>(e: T, ...children: Expr[]): T {
    let d = 0;
    for (const c of children) d = Math.max(d, this.depthOf.get(c) ?? 1);
    if (d + 1 > MAX_DEPTH) this.fail(`expression is nested too deeply (more than ${MAX_DEPTH} levels)`, e);
    this.depthOf.set(e, d + 1);
    return e;
  }

  /** Guards the recursion of the parser itself (parentheses, `not not ...`, `- - ...`). */
  private enter(p: Pos): void {
    if (++this.nesting > MAX_DEPTH) this.fail(`expression is nested too deeply (more than ${MAX_DEPTH} levels)`, p);
  }

  parse(): Expr {
    const first = this.peek();
    if (first.kind === 'eof') this.fail('empty expression', first);
    const e = this.parseOr();
    const t = this.peek();
    if (t.kind !== 'eof') {
      if (t.kind === 'op' && t.text === ')') this.fail("unexpected ')'", t);
      this.fail(`unexpected ${describe(t)}`, t);
    }
    return e;
  }

  private parseOr(): Expr {
    let left = this.parseAnd();
    while (this.isKeyword(this.peek(), 'or')) {
      const op = this.next();
      const right = this.parseAnd();
      left = this.node({ kind: 'binary', op: 'or', left, right, line: op.line, col: op.col }, left, right);
    }
    return left;
  }

  private parseAnd(): Expr {
    let left = this.parseNot();
    while (this.isKeyword(this.peek(), 'and')) {
      const op = this.next();
      const right = this.parseNot();
      left = this.node({ kind: 'binary', op: 'and', left, right, line: op.line, col: op.col }, left, right);
    }
    return left;
  }

  private parseNot(): Expr {
    const t = this.peek();
    if (this.isKeyword(t, 'not')) {
      this.next();
      this.enter(t);
      const arg = this.parseNot();
      this.nesting--;
      return this.node({ kind: 'unary', op: 'not', arg, line: t.line, col: t.col }, arg);
    }
    return this.parseComparison();
  }

  private isComparisonStart(t: Token): boolean {
    if (t.kind === 'op') return COMPARE_OPS.has(t.text);
    if (t.kind !== 'keyword') return false;
    if (t.text === 'is' || t.text === 'in' || t.text === 'between') return true;
    return t.text === 'not' && (this.isKeyword(this.peek(1), 'in') || this.isKeyword(this.peek(1), 'between'));
  }

  private parseComparison(): Expr {
    const left = this.parseAdditive();
    const t = this.peek();
    let result: Expr;
    if (t.kind === 'op' && COMPARE_OPS.has(t.text)) {
      this.next();
      const right = this.parseAdditive();
      result = this.node({ kind: 'binary', op: t.text as CompareOp, left, right, line: t.line, col: t.col }, left, right);
    } else if (this.isKeyword(t, 'is')) {
      this.next();
      let negated = false;
      if (this.isKeyword(this.peek(), 'not')) { this.next(); negated = true; }
      this.expectKeyword('null');
      result = this.node({ kind: 'isnull', negated, arg: left, line: t.line, col: t.col }, left);
    } else if (this.isKeyword(t, 'in') || this.isKeyword(t, 'between') || this.isKeyword(t, 'not')) {
      let negated = false;
      let kw = t;
      if (this.isKeyword(t, 'not')) {
        this.next();
        negated = true;
        kw = this.peek();
        if (!this.isKeyword(kw, 'in') && !this.isKeyword(kw, 'between')) this.fail("expected 'in' or 'between'", kw);
      }
      this.next();
      if (kw.text === 'in') {
        const list = this.parseInList();
        result = this.node({ kind: 'in', negated, arg: left, list, line: t.line, col: t.col }, left);
      } else {
        const low = this.parseAdditive();
        this.expectKeyword('and');
        const high = this.parseAdditive();
        result = this.node({ kind: 'between', negated, arg: left, low, high, line: t.line, col: t.col }, left, low, high);
      }
    } else {
      return left;
    }
    const after = this.peek();
    if (this.isComparisonStart(after)) this.fail('comparisons cannot be chained (add parentheses)', after);
    return result;
  }

  private parseInList(): ListItem[] {
    this.expectOp('(');
    const items: ListItem[] = [];
    for (;;) {
      const t = this.peek();
      let negative = false;
      if (this.isOp(t, '-')) {
        this.next();
        negative = true;
        if (this.peek().kind !== 'number') this.fail('expected a number', this.peek());
      }
      const lit = this.parseLiteral();
      if (lit === null) this.fail('expected a literal (number, string, true, false or null)', this.peek());
      items.push({ lit, negative, line: t.line, col: t.col });
      const sep = this.peek();
      if (this.isOp(sep, ',')) { this.next(); continue; }
      if (this.isOp(sep, ')')) { this.next(); return items; }
      this.fail("expected ',' or ')'", sep);
    }
  }

  /** A literal at the cursor, consumed; null (nothing consumed) when the token is not one. */
  private parseLiteral(): Literal | null {
    const t = this.peek();
    if (t.kind === 'number') {
      this.next();
      return { kind: 'number', value: Number(t.text), text: t.text, integer: !/[.eE]/.test(t.text), line: t.line, col: t.col };
    }
    if (t.kind === 'string') {
      this.next();
      return { kind: 'string', value: t.text, line: t.line, col: t.col };
    }
    if (this.isKeyword(t, 'true') || this.isKeyword(t, 'false')) {
      this.next();
      return { kind: 'bool', value: t.text === 'true', line: t.line, col: t.col };
    }
    if (this.isKeyword(t, 'null')) {
      this.next();
      return { kind: 'null', line: t.line, col: t.col };
    }
    return null;
  }

  private parseAdditive(): Expr {
    let left = this.parseMultiplicative();
    for (;;) {
      const t = this.peek();
      if (!this.isOp(t, '+') && !this.isOp(t, '-')) return left;
      this.next();
      const right = this.parseMultiplicative();
      left = this.node({ kind: 'binary', op: t.text as BinaryOp, left, right, line: t.line, col: t.col }, left, right);
    }
  }

  private parseMultiplicative(): Expr {
    let left = this.parseUnary();
    for (;;) {
      const t = this.peek();
      if (!this.isOp(t, '*') && !this.isOp(t, '/') && !this.isOp(t, '%')) return left;
      this.next();
      const right = this.parseUnary();
      left = this.node({ kind: 'binary', op: t.text as BinaryOp, left, right, line: t.line, col: t.col }, left, right);
    }
  }

  private parseUnary(): Expr {
    const t = this.peek();
    if (this.isOp(t, '-')) {
      this.next();
      this.enter(t);
      const arg = this.parseUnary();
      this.nesting--;
      return this.node({ kind: 'unary', op: '-', arg, line: t.line, col: t.col }, arg);
    }
    return this.parsePrimary();
  }

  private parsePrimary(): Expr {
    const lit = this.parseLiteral();
    if (lit !== null) return this.node(lit);
    const t = this.peek();
    if (t.kind === 'ident') {
      this.next();
      if (this.isOp(this.peek(), '(')) return this.parseCall(t);
      return this.node({ kind: 'column', name: t.text, line: t.line, col: t.col });
    }
    if (this.isOp(t, '(')) {
      this.next();
      this.enter(t);
      const e = this.parseOr();
      this.nesting--;
      this.expectOp(')');
      return e;
    }
    if (t.kind === 'eof') this.fail('unexpected end of expression', t);
    this.fail(`unexpected ${describe(t)}`, t);
  }

  private parseCall(name: Token): Expr {
    this.expectOp('(');
    this.enter(name);
    const args: Expr[] = [];
    if (this.isOp(this.peek(), ')')) {
      this.next();
    } else {
      for (;;) {
        args.push(this.parseOr());
        const sep = this.peek();
        if (this.isOp(sep, ',')) { this.next(); continue; }
        if (this.isOp(sep, ')')) { this.next(); break; }
        this.fail("expected ',' or ')'", sep);
      }
    }
    this.nesting--;
    return this.node({ kind: 'call', name: name.text.toLowerCase(), args, line: name.line, col: name.col }, ...args);
  }
}

/** Parses an expression; throws SLUICE_EXPR_SYNTAX with the line:column of the problem. */
export function parseExpression(text: string): Expr {
  return new Parser(tokenize(text)).parse();
}
