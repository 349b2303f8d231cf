/**
 * The compiler generates JavaScript with `new Function`. These tests pin down that user text
 * never becomes code: hostile expressions die in the parser or the type checker, and valid
 * expressions full of odd strings and names produce source that contains none of them.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SluiceError } from '../../../engine/errors.js';
import { makeSchema, schemaFromRecord, type Batch } from '../../../engine/schema.js';
import type { TypedExpr } from '../../../native-free-kernels/expression/ast.js';
import { checkExpression, compileFilter, compileValue, kernelSource } from '../../../native-free-kernels/expression/index.js';

const schema = schemaFromRecord({ price: 'float64', channel: 'string', auction: 'int64', ts: 'timestamp' });

const REJECTED: [text: string, code: string, message: string][] = [
  ['process.exit(1)', 'SLUICE_EXPR_SYNTAX', "unexpected character '.' at 1:8"],
  ['price > 1; process.exit(1)', 'SLUICE_EXPR_SYNTAX', "unexpected character ';' at 1:10"],
  ["channel = 'a'; while(true){}", 'SLUICE_EXPR_SYNTAX', "unexpected character ';' at 1:14"],
  ['constructor', 'SLUICE_EXPR_UNKNOWN_COLUMN', "unknown column 'constructor' at 1:1"],
  ['__proto__', 'SLUICE_EXPR_UNKNOWN_COLUMN', "unknown column '__proto__' at 1:1"],
  ['this', 'SLUICE_EXPR_UNKNOWN_COLUMN', "unknown column 'this' at 1:1"],
  ['price > 0 and globalThis', 'SLUICE_EXPR_UNKNOWN_COLUMN', "unknown column 'globalThis' at 1:15"],
  ['constructor.constructor("return process")()', 'SLUICE_EXPR_SYNTAX', "unexpected character '.' at 1:12"],
  ['constructor("return 1")', 'SLUICE_EXPR_SYNTAX', `unexpected character '"' (string literals use single quotes; quoted names are not supported) at 1:13`],
  ["constructor('return 1')", 'SLUICE_EXPR_UNKNOWN_FUNCTION', "unknown function 'constructor' at 1:1"],
  ['__proto__(price)', 'SLUICE_EXPR_UNKNOWN_FUNCTION', "unknown function '__proto__' at 1:1"],
  ["eval('1')", 'SLUICE_EXPR_UNKNOWN_FUNCTION', "unknown function 'eval' at 1:1"],
  ["require('fs')", 'SLUICE_EXPR_UNKNOWN_FUNCTION', "unknown function 'require' at 1:1"],
  ["channel = 'a' + (function(){})", 'SLUICE_EXPR_SYNTAX', "unexpected character '{' at 1:28"],
  ["'a' + (function(){ return 1 })", 'SLUICE_EXPR_SYNTAX', "unexpected character '{' at 1:18"],
  ['() => 1', 'SLUICE_EXPR_SYNTAX', "unexpected '=>' at 1:4"],
  ['price => 1', 'SLUICE_EXPR_SYNTAX', "unexpected '=>' at 1:7"],
  ['`${process.exit(1)}`', 'SLUICE_EXPR_SYNTAX', "unexpected character '`' at 1:1"],
  ['${price}', 'SLUICE_EXPR_SYNTAX', "unexpected character '$' at 1:1"],
  ['channel = "spam"', 'SLUICE_EXPR_SYNTAX', `unexpected character '"' (string literals use single quotes; quoted names are not supported) at 1:11`],
  ["channel = 'spam", 'SLUICE_EXPR_SYNTAX', 'unterminated string at 1:11'],
  ["channel = 'it's'", 'SLUICE_EXPR_SYNTAX', 'unterminated string at 1:16'],
  ["channel = '' ') + process.exit(1)", 'SLUICE_EXPR_SYNTAX', 'unterminated string at 1:14'],
  ["channel = 'x' -- ' + process.exit(1)", 'SLUICE_EXPR_SYNTAX', "unexpected '--' (comments are not supported) at 1:15"],
  ['price > 0 /* */', 'SLUICE_EXPR_SYNTAX', "unexpected '*' at 1:12"],
  ['price[0]', 'SLUICE_EXPR_SYNTAX', "unexpected character '[' at 1:6"],
  ["channel['length']", 'SLUICE_EXPR_SYNTAX', "unexpected character '[' at 1:8"],
  ['price > 0 || true', 'SLUICE_EXPR_SYNTAX', "unexpected '||' (use 'or') at 1:11"],
  ['new Function()', 'SLUICE_EXPR_SYNTAX', "unexpected name 'Function' at 1:5"],
  ['\\u0070rocess', 'SLUICE_EXPR_SYNTAX', "unexpected character '\\' at 1:1"],
  ['price = 0x41', 'SLUICE_EXPR_SYNTAX', "invalid number '0x41' at 1:9"],
  ['price > 1e999', 'SLUICE_EXPR_TYPE', 'numeric literal 1e999 is out of range at 1:9'],
  ['auction = 9007199254740993', 'SLUICE_EXPR_TYPE', 'integer literal 9007199254740993 cannot be represented exactly (integer literals are limited to ±9007199254740991) at 1:11'],
  ["ts > 'Date.now()'", 'SLUICE_EXPR_TYPE', "invalid timestamp literal 'Date.now()' (expected ISO-8601 such as 2024-05-01T12:00:00Z) at 1:6"],
  ['price > 0 ;', 'SLUICE_EXPR_SYNTAX', "unexpected character ';' at 1:11"],
];

test('injection attempts are rejected by the parser or the type checker, before any code exists', () => {
  for (const [text, code, message] of REJECTED) {
    let typed: TypedExpr | null = null;
    try {
      typed = checkExpression(text, schema);
    } catch (err) {
      assert.ok(err instanceof SluiceError, `${text}: not a SluiceError`);
      assert.equal(err.code, code, `${text}: ${err.message}`);
      assert.equal(err.message, message, text);
    }
    assert.equal(typed, null, `${text} was accepted`);
  }
});

// Odd but legal column names: JavaScript keywords and prototype keys are ordinary names here.
// (makeSchema, not an object literal: `{ __proto__: ... }` would set a prototype, not a key)
const oddSchema = makeSchema([
  { name: 'constructor', type: 'float64' }, { name: '__proto__', type: 'string' }, { name: 'this', type: 'int64' },
  { name: 'process', type: 'bool' }, { name: 'eval', type: 'timestamp' }, { name: 'Function', type: 'string' },
  { name: 'return', type: 'float64' }, { name: 'zq_plain', type: 'float64' },
]);

/** Valid expressions and the user text each must not leak into generated source. */
const VALID: [text: string, forbidden: string[]][] = [
  ["__proto__ = 'process.exit(1)'", ['__proto__', 'process', 'exit(1)']],
  ["Function in ('${globalThis}', '`rm -rf /`', '\"); throw 1; (\"', 'zq''quote')", ['Function', '${globalThis}', 'rm -rf', 'throw 1', "zq'quote"]],
  ['constructor > 1 and this < 5 and process', ['constructor', 'this', 'process']],
  // ('return' is a column here too, but the generator's own `return` statements contain the word)
  ["eval >= '2024-01-01T00:00:00Z' and return * 2 > zq_plain", ['eval', 'zq_plain', '2024-01-01']],
  ["lower(__proto__) = 'zq_lower_lit' or upper(Function) between 'zq_a' and 'zq_b'", ['__proto__', 'Function', 'zq_lower_lit', 'zq_a', 'zq_b']],
  ["coalesce(__proto__, Function, 'zq_default') in ('zq_1', 'zq_2')", ['__proto__', 'Function', 'zq_default', 'zq_1', 'zq_2']],
  ["length(__proto__ ) + constructor > 3 and __proto__ < Function", ['__proto__', 'Function', 'constructor']],
  ["__proto__ in ('zq0', 'zq1', 'zq2', 'zq3', 'zq4', 'zq5', 'zq6', 'zq7', 'zq8', 'zq9', 'zq10')", ['__proto__', 'zq0', 'zq10']],
  ["'</script><script>alert(1)</script>' = __proto__", ['script', 'alert']],
  ["'\u2028\u2029' = __proto__ or '\\' = Function", ['\u2028', '\u2029', "'\\'"]],
  ["lower('ZQ_FOLDED') = __proto__", ['ZQ_FOLDED', 'zq_folded']],
  // a doubled quote is an escaped quote: this is one (harmless) string literal
  ["__proto__ = ''') + process.exit(1) + ('", ['process', "')"]],
];

test('generated source contains none of the user text', () => {
  for (const [text, forbidden] of VALID) {
    const e = checkExpression(text, oddSchema);
    const sources: string[] = [];
    if (e.type === 'bool') sources.push(kernelSource(compileFilter(e))!);
    sources.push(kernelSource(compileValue(e))!);
    for (const src of sources) {
      assert.ok(src.length > 0);
      for (const bad of forbidden) assert.ok(!src.includes(bad), `${text}: generated source contains ${JSON.stringify(bad)}\n${src}`);
    }
  }
});

test('odd names and strings still evaluate correctly', () => {
  const b: Batch = {
    schema: oddSchema,
    length: 3,
    columns: [
      { type: 'float64', values: Float64Array.from([1, 2, 3]), valid: null },
      { type: 'string', codes: Int32Array.from([0, 1, 0]), dict: ['process.exit(1)', '${x}'], valid: null },
      { type: 'int64', words: Int32Array.from([1, 0, 4, 0, 9, 0]), valid: null },
      { type: 'bool', values: Uint8Array.from([1, 1, 0]), valid: null },
      { type: 'timestamp', values: Float64Array.from([0, 1, 2]), valid: null },
      { type: 'string', codes: Int32Array.from([0, 0, 0]), dict: ['`'], valid: null },
      { type: 'float64', values: Float64Array.from([0, 0, 0]), valid: null },
      { type: 'float64', values: Float64Array.from([0, 0, 0]), valid: null },
    ],
  };
  const run = (text: string): number[] => {
    const out = new Int32Array(3);
    return [...out.subarray(0, compileFilter(checkExpression(text, oddSchema))(b, null, 3, out))];
  };
  assert.deepEqual(run("__proto__ = 'process.exit(1)'"), [0, 2]);
  assert.deepEqual(run("__proto__ = '${x}'"), [1]);
  assert.deepEqual(run('constructor > 1 and this < 5 and process'), [1]);
  assert.deepEqual(run("Function = '`'"), [0, 1, 2]);
});

test('forged typed trees cannot smuggle text into code either', () => {
  // A caller building TypedExpr by hand (bypassing the checker) with a hostile column name and
  // a string where a number belongs: names are never emitted, odd values go to constants.
  const col: TypedExpr = { kind: 'column', type: 'float64', index: 0, name: "x'); process.exit(1); ('", line: 1, col: 1 };
  const forged: TypedExpr = {
    kind: 'compare', type: 'bool', op: '>', left: col, line: 1, col: 3,
    right: { kind: 'literal', type: 'float64', value: '1) || process.exit(1) || (1', line: 1, col: 5 },
  };
  const src = kernelSource(compileFilter(forged))!;
  assert.ok(!src.includes('process'), src);
  const nonFinite: TypedExpr = { kind: 'arith', type: 'float64', op: '+', left: col, right: { kind: 'literal', type: 'float64', value: Infinity, line: 1, col: 1 }, line: 1, col: 1 };
  const vsrc = kernelSource(compileValue(nonFinite))!;
  assert.ok(!vsrc.includes('Infinity'), 'non-finite numbers are passed as constants');
  const bad: TypedExpr = { kind: 'column', type: 'float64', index: -1, name: 'x', line: 1, col: 1 };
  assert.throws(() => compileFilter({ kind: 'isnull', type: 'bool', negated: false, arg: bad, line: 1, col: 1 }),
    (err: unknown) => err instanceof SluiceError && err.code === 'SLUICE_INTERNAL');
});
