import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SluiceError } from '../../../engine/errors.js';
import type { Expr } from '../../../native-free-kernels/expression/ast.js';
import { MAX_DEPTH, parseExpression } from '../../../native-free-kernels/expression/parser.js';
import { tokenize } from '../../../native-free-kernels/expression/tokenizer.js';

/** A compact S-expression of a parsed tree, to check shape and precedence. */
function show(e: Expr): string {
  switch (e.kind) {
    case 'column': return e.name;
    case 'number': return e.text;
    case 'string': return `'${e.value}'`;
    case 'bool': return String(e.value);
    case 'null': return 'null';
    case 'unary': return `(${e.op} ${show(e.arg)})`;
    case 'binary': return `(${e.op} ${show(e.left)} ${show(e.right)})`;
    case 'isnull': return `(${e.negated ? 'isnotnull' : 'isnull'} ${show(e.arg)})`;
    case 'in': return `(${e.negated ? 'notin' : 'in'} ${show(e.arg)} [${e.list.map((i) => (i.negative ? '-' : '') + show(i.lit)).join(' ')}])`;
    case 'between': return `(${e.negated ? 'notbetween' : 'between'} ${show(e.arg)} ${show(e.low)} ${show(e.high)})`;
    case 'call': return `(${e.name}() ${e.args.map(show).join(' ')})`.replace(' )', ')');
  }
}

function syntaxError(text: string): string {
  try {
    parseExpression(text);
  } catch (err) {
    assert.ok(err instanceof SluiceError, `expected a SluiceError for ${JSON.stringify(text)}`);
    assert.equal(err.code, 'SLUICE_EXPR_SYNTAX', `${JSON.stringify(text)}: ${err.message}`);
    return err.message;
  }
  assert.fail(`expected a syntax error for ${JSON.stringify(text)}`);
}

test('tokenizer: kinds, case-insensitive keywords, values and positions', () => {
  const toks = tokenize("Price >= 1.5e3 AND\n  chan <> 'it''s' Or x IS NOT NULL");
  assert.deepEqual(toks.map((t) => [t.kind, t.text, t.line, t.col]), [
    ['ident', 'Price', 1, 1], ['op', '>=', 1, 7], ['number', '1.5e3', 1, 10], ['keyword', 'and', 1, 16],
    ['ident', 'chan', 2, 3], ['op', '!=', 2, 8], ['string', "it's", 2, 11], ['keyword', 'or', 2, 19],
    ['ident', 'x', 2, 22], ['keyword', 'is', 2, 24], ['keyword', 'not', 2, 27], ['keyword', 'null', 2, 31],
    ['eof', '', 2, 35],
  ]);
});

test('tokenizer: columns count code points; CRLF is one line break; strings may span lines', () => {
  const toks = tokenize("'🦆é' = a\r\n  and 'x\ny' = b");
  assert.deepEqual(toks.map((t) => [t.text, t.line, t.col]), [
    ['🦆é', 1, 1], ['=', 1, 6], ['a', 1, 8], ['and', 2, 3], ['x\ny', 2, 7], ['=', 3, 4], ['b', 3, 6], ['', 3, 7],
  ]);
});

test('tokenizer: numbers', () => {
  for (const [text, ok] of [['0', true], ['42', true], ['3.25', true], ['1e9', true], ['1E-3', true], ['2.5e+10', true]] as const) {
    const toks = tokenize(text);
    assert.equal(toks[0]!.kind, 'number');
    assert.equal(toks[0]!.text, text, String(ok));
  }
});

const SYNTAX_ERRORS: [text: string, message: string][] = [
  ['', 'empty expression at 1:1'],
  ['   ', 'empty expression at 1:4'],
  ['price > `x`', "unexpected character '`' at 1:9"],
  ['"price" > 1', `unexpected character '"' (string literals use single quotes; quoted names are not supported) at 1:1`],
  ['price > 1; drop', "unexpected character ';' at 1:10"],
  ['$price', "unexpected character '$' at 1:1"],
  ['price[0]', "unexpected character '[' at 1:6"],
  ['price]', "unexpected character ']' at 1:6"],
  ['{a}', "unexpected character '{' at 1:1"],
  ['a}', "unexpected character '}' at 1:2"],
  ['a.b = 1', "unexpected character '.' at 1:2"],
  ['process.exit(1)', "unexpected character '.' at 1:8"],
  ['a : 1', "unexpected character ':' at 1:3"],
  ['a # 1', "unexpected character '#' at 1:3"],
  ['@a', "unexpected character '@' at 1:1"],
  ['a ? 1', "unexpected character '?' at 1:3"],
  ['\\u0061', "unexpected character '\\' at 1:1"],
  ['a ^ 1', "unexpected character '^' at 1:3"],
  ['~a', "unexpected character '~' at 1:1"],
  ['a & b', "unexpected character '&' at 1:3"],
  ['a | b', "unexpected character '|' at 1:3"],
  ['a\u00a0= 1', 'unexpected character U+00A0 at 1:2'],
  ['a = 1 \u{1F986}', 'unexpected character U+1F986 at 1:7'],
  ['a => b', "unexpected '=>' at 1:3"],
  ['a == b', "unexpected '==' (use '=') at 1:3"],
  ['a && b', "unexpected '&&' (use 'and') at 1:3"],
  ['a || b', "unexpected '||' (use 'or') at 1:3"],
  ['!a', "unexpected '!' (use 'not') at 1:1"],
  ['a = 1 -- note', "unexpected '--' (comments are not supported) at 1:7"],
  ["channel = 'spam", 'unterminated string at 1:11'],
  ["a = 'x''", 'unterminated string at 1:5'],
  ['price > 12abc', "invalid number '12abc' at 1:9"],
  ['1. + 2', "invalid number '1.' at 1:1"],
  ['1e + 2', "invalid number '1e' at 1:1"],
  ['0x1F', "invalid number '0x1F' at 1:1"],
  ['1.2.3', "invalid number '1.2.3' at 1:1"],
  ['(price > 100 and x', "expected ')' at 1:19"],
  ['(price > (1 + 2)', "expected ')' at 1:17"],
  ['abs(price', "expected ',' or ')' at 1:10"],
  ['abs(price price)', "expected ',' or ')' at 1:11"],
  ['price >', 'unexpected end of expression at 1:8'],
  ['price > and', "unexpected 'and' at 1:9"],
  ['* 3', "unexpected '*' at 1:1"],
  ['+5', "unexpected '+' at 1:1"],
  ['price 100', 'unexpected number 100 at 1:7'],
  ["price 'x'", 'unexpected string literal at 1:7'],
  ['price channel', "unexpected name 'channel' at 1:7"],
  ['a)', "unexpected ')' at 1:2"],
  [')', "unexpected ')' at 1:1"],
  ['()', "unexpected ')' at 1:2"],
  ['a, b', "unexpected ',' at 1:2"],
  ['a < b < c', 'comparisons cannot be chained (add parentheses) at 1:7'],
  ['a = b is null', 'comparisons cannot be chained (add parentheses) at 1:7'],
  ['a is null = true', 'comparisons cannot be chained (add parentheses) at 1:11'],
  ['a in (1) in (2)', 'comparisons cannot be chained (add parentheses) at 1:10'],
  ['x in 1', "expected '(' at 1:6"],
  ['x in ()', 'expected a literal (number, string, true, false or null) at 1:7'],
  ['x in (a)', 'expected a literal (number, string, true, false or null) at 1:7'],
  ['x in (1 + 2)', "expected ',' or ')' at 1:9"],
  ['x in (1, 2', "expected ',' or ')' at 1:11"],
  ["x in (- 'a')", 'expected a number at 1:9'],
  ['x between 1', "expected 'and' at 1:12"],
  ['x between 1 or 2', "expected 'and' at 1:13"],
  ['x is 5', "expected 'null' at 1:6"],
  ['x is not true', "expected 'null' at 1:10"],
  ["x not like 'a'", "expected 'in' or 'between' at 1:7"],
  ['not', 'unexpected end of expression at 1:4'],
  ['-', 'unexpected end of expression at 1:2'],
  ['a = (', 'unexpected end of expression at 1:6'],
  ['new Function(1)', "unexpected name 'Function' at 1:5"],
  ['a = 1\n  and b = ', 'unexpected end of expression at 2:11'],
  ["a = 1\n  and `b`", "unexpected character '`' at 2:7"],
];

test('syntax errors: every category, with line:column', () => {
  for (const [text, message] of SYNTAX_ERRORS) assert.equal(syntaxError(text), message, JSON.stringify(text));
});

test('nesting is limited so hostile input cannot exhaust the stack', () => {
  const deep = `${'('.repeat(MAX_DEPTH + 5)}a${')'.repeat(MAX_DEPTH + 5)}`;
  assert.match(syntaxError(deep), /^expression is nested too deeply \(more than 100 levels\) at 1:\d+$/);
  assert.match(syntaxError(`${'not '.repeat(MAX_DEPTH + 5)}a`), /nested too deeply/);
  assert.match(syntaxError(`${'- '.repeat(MAX_DEPTH + 5)}a`), /nested too deeply/);
  assert.match(syntaxError(Array.from({ length: MAX_DEPTH + 5 }, () => 'a').join(' + ')), /nested too deeply/);
  assert.match(syntaxError(`${'abs('.repeat(MAX_DEPTH + 5)}a${')'.repeat(MAX_DEPTH + 5)}`), /nested too deeply/);
  // a hundred thousand levels still fails cleanly, not with a RangeError
  assert.match(syntaxError(`${'('.repeat(100_000)}a`), /nested too deeply/);
  // within the limit is fine, and a long flat in-list is not deep
  parseExpression(`${'('.repeat(MAX_DEPTH - 5)}a${')'.repeat(MAX_DEPTH - 5)}`);
  parseExpression(`a in (${Array.from({ length: 5000 }, (_, i) => i).join(', ')})`);
});

const SHAPES: [text: string, shape: string][] = [
  ['a or b and c', '(or a (and b c))'],
  ['a and b or c', '(or (and a b) c)'],
  ['not a and b', '(and (not a) b)'],
  ['not a = b', '(not (= a b))'],
  ['not not a', '(not (not a))'],
  ['a = b and c != d', '(and (= a b) (!= c d))'],
  ['a <> b', '(!= a b)'],
  ['a + b * c', '(+ a (* b c))'],
  ['a * b + c', '(+ (* a b) c)'],
  ['a - b - c', '(- (- a b) c)'],
  ['a / b % c', '(% (/ a b) c)'],
  ['-a * b', '(* (- a) b)'],
  ['- -a', '(- (- a))'],
  ['a - -1', '(- a (- 1))'],
  ['(a + b) * c', '(* (+ a b) c)'],
  ['a + b > c * 2', '(> (+ a b) (* c 2))'],
  ['x between 1 and 2 and y', '(and (between x 1 2) y)'],
  ['x not between a + 1 and b * 2', '(notbetween x (+ a 1) (* b 2))'],
  ["x in (1, -2.5, 'a', null, true)", "(in x [1 -2.5 'a' null true])"],
  ['x NOT IN (false)', '(notin x [false])'],
  ['x is null or y is not null', '(or (isnull x) (isnotnull y))'],
  ['coalesce(a, b + 1, null)', '(coalesce() a (+ b 1) null)'],
  ['LOWER(Name) = \'x\'', "(= (lower() Name) 'x')"],
  ['round(x, -2)', '(round() x (- 2))'],
  ['f()', '(f())'],
  ['((a))', 'a'],
  ['A AnD b Or NOT c', '(or (and A b) (not c))'],
  ['TRUE or False or NULL', '(or (or true false) null)'],
  ['x In (1) aNd y BETWEEN 1 AND 2', '(and (in x [1]) (between y 1 2))'],
];

test('precedence and shapes', () => {
  for (const [text, shape] of SHAPES) assert.equal(show(parseExpression(text)), shape, text);
});

test('nodes carry the position of their operator / name', () => {
  const e = parseExpression('price > 1 and\n lower(ch) in (\'a\')');
  assert.equal(e.kind, 'binary');
  if (e.kind !== 'binary') return;
  assert.deepEqual([e.line, e.col], [1, 11]);
  assert.deepEqual([e.left.line, e.left.col], [1, 7]);
  const r = e.right;
  assert.equal(r.kind, 'in');
  if (r.kind !== 'in') return;
  assert.deepEqual([r.line, r.col], [2, 12]);
  assert.deepEqual([r.arg.line, r.arg.col], [2, 2]);
  assert.deepEqual([r.list[0]!.line, r.list[0]!.col], [2, 16]);
});

test('number literals record whether they were written as integers', () => {
  const lit = (t: string): Expr => parseExpression(t);
  assert.deepEqual(lit('42'), { kind: 'number', value: 42, text: '42', integer: true, line: 1, col: 1 });
  assert.equal((lit('4.0') as { integer: boolean }).integer, false);
  assert.equal((lit('4e0') as { integer: boolean }).integer, false);
  assert.equal((lit('9007199254740993') as { text: string }).text, '9007199254740993');
});
