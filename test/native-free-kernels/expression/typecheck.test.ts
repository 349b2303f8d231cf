import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { SluiceError } from '../../../engine/errors.js';
import { schemaFromRecord } from '../../../engine/schema.js';
import type { TypedExpr } from '../../../native-free-kernels/expression/ast.js';
import { checkExpression, checkFilter, parseIsoTimestamp } from '../../../native-free-kernels/expression/index.js';
import { repoRoot } from '../../helpers/paths.js';

const schema = schemaFromRecord({
  auction: 'int64', bidder: 'int64', price: 'float64', channel: 'string', ts: 'timestamp',
  qty: 'int32', flag: 'bool', note: 'string', ts2: 'timestamp',
});

function failure(text: string): { code: string; message: string } {
  try {
    checkExpression(text, schema);
  } catch (err) {
    assert.ok(err instanceof SluiceError, `expected a SluiceError for ${text}`);
    return { code: err.code, message: err.message };
  }
  assert.fail(`expected ${text} to be rejected`);
}

test('unknown columns: case-sensitive, prototype keys are plain unknown names', () => {
  const cases: [string, string][] = [
    ['prise > 1', "unknown column 'prise' at 1:1"],
    ['Price > 1', "unknown column 'Price' at 1:1"],
    ['price > 1 and\n  chanel = \'x\'', "unknown column 'chanel' at 2:3"],
    ['constructor', "unknown column 'constructor' at 1:1"],
    ['__proto__ = 1', "unknown column '__proto__' at 1:1"],
    ['toString > 1', "unknown column 'toString' at 1:1"],
    ['hasOwnProperty', "unknown column 'hasOwnProperty' at 1:1"],
    ['valueOf + 1', "unknown column 'valueOf' at 1:1"],
    ['this', "unknown column 'this' at 1:1"],
    ['globalThis', "unknown column 'globalThis' at 1:1"],
    ['abs(nope)', "unknown column 'nope' at 1:5"],
  ];
  for (const [text, message] of cases) {
    const f = failure(text);
    assert.equal(f.code, 'SLUICE_EXPR_UNKNOWN_COLUMN', text);
    assert.equal(f.message, message);
  }
});

test('unknown functions (case-insensitive names; prototype keys are unknown too)', () => {
  const cases: [string, string][] = [
    ['sum(price)', "unknown function 'sum' at 1:1"],
    ['price > 1 and foo()', "unknown function 'foo' at 1:15"],
    ['constructor(1)', "unknown function 'constructor' at 1:1"],
    ['__proto__(1)', "unknown function '__proto__' at 1:1"],
    ['toString(price)', "unknown function 'tostring' at 1:1"],
    ['import(channel)', "unknown function 'import' at 1:1"],
    ['eval(channel)', "unknown function 'eval' at 1:1"],
  ];
  for (const [text, message] of cases) {
    const f = failure(text);
    assert.equal(f.code, 'SLUICE_EXPR_UNKNOWN_FUNCTION', text);
    assert.equal(f.message, message);
  }
  assert.equal(checkExpression('ABS(price)', schema).type, 'float64');
  assert.equal(checkExpression('Lower(channel)', schema).type, 'string');
});

const TYPE_ERRORS: [text: string, message: string][] = [
  ["price > 'abc'", "operator '>' cannot compare float64 with string at 1:7"],
  ["'abc' = price", "operator '=' cannot compare string with float64 at 1:7"],
  ['channel = 1', "operator '=' cannot compare string with float64 at 1:9"],
  ['flag > 1', "operator '>' cannot compare bool with float64 at 1:6"],
  ['flag = channel', "operator '=' cannot compare bool with string at 1:6"],
  ['ts = channel', "operator '=' cannot compare timestamp with string at 1:4"],
  ['ts = flag', "operator '=' cannot compare timestamp with bool at 1:4"],
  ["ts > 'yesterday'", "invalid timestamp literal 'yesterday' (expected ISO-8601 such as 2024-05-01T12:00:00Z) at 1:6"],
  ["ts > '2024-13-01'", "invalid timestamp literal '2024-13-01' (expected ISO-8601 such as 2024-05-01T12:00:00Z) at 1:6"],
  ["ts in ('2024-01-01', '2024-02-30')", "invalid timestamp literal '2024-02-30' (expected ISO-8601 such as 2024-05-01T12:00:00Z) at 1:22"],
  ['channel + 1', "operator '+' cannot be applied to string and float64 at 1:9"],
  ['ts - 1000', "operator '-' cannot be applied to timestamp and float64 at 1:4"],
  ['flag * 2', "operator '*' cannot be applied to bool and float64 at 1:6"],
  ['-channel', "operator '-' cannot be applied to string at 1:1"],
  ['- flag', "operator '-' cannot be applied to bool at 1:1"],
  ['not price', "operator 'not' cannot be applied to float64 at 1:1"],
  ['price and flag', "operator 'and' cannot be applied to float64 and bool at 1:7"],
  ["flag or 'x'", "operator 'or' cannot be applied to bool and string at 1:6"],
  ['lower(price)', "function 'lower' cannot be applied to float64 at 1:1"],
  ['length(ts)', "function 'length' cannot be applied to timestamp at 1:1"],
  ['abs(channel)', "function 'abs' cannot be applied to string at 1:1"],
  ['round(flag)', "function 'round' cannot be applied to bool at 1:1"],
  ['abs(1, 2)', "function 'abs' takes 1 argument, got 2 at 1:1"],
  ['upper()', "function 'upper' takes 1 argument, got 0 at 1:1"],
  ['round(price, 1, 2)', "function 'round' takes 1 or 2 arguments, got 3 at 1:1"],
  ['round(price, 1.5)', "function 'round' needs an integer literal between -308 and 308 as its second argument at 1:14"],
  ['round(price, qty)', "function 'round' needs an integer literal between -308 and 308 as its second argument at 1:14"],
  ['round(price, 400)', "function 'round' needs an integer literal between -308 and 308 as its second argument at 1:14"],
  ['coalesce()', "function 'coalesce' takes at least 1 argument, got 0 at 1:1"],
  ['coalesce(price, channel)', "function 'coalesce' cannot mix float64 and string at 1:17"],
  ['coalesce(ts, price)', "function 'coalesce' cannot mix timestamp and float64 at 1:14"],
  ["coalesce(price, 'x')", "function 'coalesce' cannot mix float64 and string at 1:17"],
  ["coalesce(1, 'x')", "function 'coalesce' cannot mix float64 and string at 1:13"],
  ["coalesce(ts, 'soon')", "invalid timestamp literal 'soon' (expected ISO-8601 such as 2024-05-01T12:00:00Z) at 1:14"],
  ['channel in (1, 2)', "operator 'in' cannot compare string with float64 at 1:13"],
  ["price in (1, 'two')", "operator 'in' cannot compare float64 with string at 1:14"],
  ["price between 'a' and 5", "operator 'between' cannot compare float64 with string at 1:7"],
  ['auction = 9007199254740993', 'integer literal 9007199254740993 cannot be represented exactly (integer literals are limited to ±9007199254740991) at 1:11'],
  ['auction > -9007199254740992', 'integer literal -9007199254740992 cannot be represented exactly (integer literals are limited to ±9007199254740991) at 1:11'],
  ['auction in (1, 18446744073709551616)', 'integer literal 18446744073709551616 cannot be represented exactly (integer literals are limited to ±9007199254740991) at 1:16'],
  ['price > 1e400', 'numeric literal 1e400 is out of range at 1:9'],
  ['price > -1e400', 'numeric literal -1e400 is out of range at 1:9'],
];

test('type errors: every rule, with the position of the operator / argument', () => {
  for (const [text, message] of TYPE_ERRORS) {
    const f = failure(text);
    assert.equal(f.code, 'SLUICE_EXPR_TYPE', `${text}: ${f.message}`);
    assert.equal(f.message, message, text);
  }
});

test('checkFilter requires bool (or the null literal)', () => {
  assert.equal(checkFilter('price > 1', schema).type, 'bool');
  assert.equal(checkFilter('null', schema).type, 'null');
  assert.equal(checkFilter('flag', schema).type, 'bool');
  for (const [text, type] of [['price', 'float64'], ['channel', 'string'], ['ts', 'timestamp'], ['abs(qty)', 'float64']]) {
    assert.throws(() => checkFilter(text!, schema), (err: unknown) =>
      err instanceof SluiceError && err.code === 'SLUICE_EXPR_TYPE' && err.message === `a filter must be a bool expression, got ${type} at 1:1`);
  }
});

function typeOf(text: string): string {
  return checkExpression(text, schema).type;
}

test('result types', () => {
  const cases: [string, string][] = [
    ['auction', 'int64'], ['qty', 'int32'], ['price', 'float64'], ['ts', 'timestamp'], ['channel', 'string'], ['flag', 'bool'],
    ['null', 'null'], ['1', 'float64'], ["'x'", 'string'], ['true', 'bool'],
    ['qty + 1', 'float64'], ['auction * 2', 'float64'], ['-qty', 'float64'], ['price % 2', 'float64'], ['null + 1', 'float64'],
    ['abs(qty)', 'float64'], ['floor(auction)', 'float64'], ['round(price, 2)', 'float64'], ['length(channel)', 'float64'],
    ['lower(channel)', 'string'], ['upper(null)', 'string'], ['length(null)', 'float64'],
    ['price > 1', 'bool'], ['channel is null', 'bool'], ['price in (1, 2)', 'bool'], ['not null', 'bool'], ['null and flag', 'bool'],
    ['coalesce(qty, 5)', 'int32'], ['coalesce(qty, 3000000000)', 'int64'], ['coalesce(qty, auction)', 'int64'],
    ['coalesce(auction, 5)', 'int64'], ['coalesce(auction, -9007199254740991)', 'int64'], ['coalesce(auction, 1.5)', 'float64'],
    ['coalesce(auction, price)', 'float64'], ['coalesce(qty, 1e300)', 'float64'], ['coalesce(null, null)', 'null'],
    ["coalesce(null, 'a')", 'string'], ['coalesce(1, 2)', 'float64'], ["coalesce(channel, note, 'x')", 'string'],
    ["coalesce(ts, '2024-01-01')", 'timestamp'], ['coalesce(ts, 0)', 'timestamp'], ['coalesce(flag, false)', 'bool'],
    ['ts > 1700000000000', 'bool'], ['ts = ts2', 'bool'], ['ts > auction', 'bool'], ["'a' < 'b'", 'bool'],
  ];
  for (const [text, type] of cases) assert.equal(typeOf(text), type, text);
});

test('literals are coerced for their context', () => {
  const cmp = checkExpression("ts >= '2024-05-01T12:00:00+02:00'", schema);
  assert.equal(cmp.kind, 'compare');
  if (cmp.kind !== 'compare') return;
  assert.deepEqual(cmp.right, { kind: 'literal', type: 'timestamp', value: Date.UTC(2024, 4, 1, 10), line: 1, col: 7 });
  const left = checkExpression("'2024-01-01' < ts", schema);
  assert.equal(left.kind === 'compare' && left.left.type, 'timestamp');

  const neg = checkExpression('auction > -5', schema);
  assert.ok(neg.kind === 'compare' && neg.right.kind === 'literal' && neg.right.value === -5);
  const negZero = checkExpression('-0', schema);
  assert.ok(negZero.kind === 'literal' && Object.is(negZero.value, -0));

  const co = checkExpression("coalesce(auction, 7, 3000000000, null)", schema);
  assert.ok(co.kind === 'call');
  if (co.kind !== 'call') return;
  assert.deepEqual(co.args.map((a: TypedExpr) => a.type), ['int64', 'int32', 'int64', 'null']);
  const cf = checkExpression('coalesce(qty, 7, 0.5)', schema);
  assert.ok(cf.kind === 'call' && cf.type === 'float64' && cf.args.every((a) => a.kind !== 'literal' || a.type === 'float64'));
  const ct = checkExpression("coalesce(ts, '1970-01-02', 5)", schema);
  assert.ok(ct.kind === 'call' && ct.args[1]!.kind === 'literal' && ct.args[1]!.value === 86_400_000 && ct.args[2]!.type === 'timestamp');

  const r = checkExpression('round(price, -2)', schema);
  assert.ok(r.kind === 'call' && r.digits === -2 && r.args.length === 1);

  const col = checkExpression('bidder', schema);
  assert.deepEqual(col, { kind: 'column', type: 'int64', index: 1, name: 'bidder', line: 1, col: 1 });
});

/** Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm), independent of Date. */
function daysFromCivil(y: number, m: number, d: number): number {
  y -= m <= 2 ? 1 : 0;
  const era = Math.floor(y / 400);
  const yoe = y - era * 400;
  const doy = Math.floor((153 * (m + (m > 2 ? -3 : 9)) + 2) / 5) + d - 1;
  const doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy;
  return era * 146097 + doe - 719468;
}

test('ISO-8601 timestamp literals', () => {
  const ok: [string, number][] = [
    ['2024-05-01', Date.UTC(2024, 4, 1)],
    ['2024-05-01T12:30', Date.UTC(2024, 4, 1, 12, 30)],
    ['2024-05-01 12:30:15', Date.UTC(2024, 4, 1, 12, 30, 15)],
    ['2024-05-01T12:30:15.25Z', Date.UTC(2024, 4, 1, 12, 30, 15, 250)],
    ['2024-05-01T12:30:15.123000000z', Date.UTC(2024, 4, 1, 12, 30, 15, 123)],
    ['2024-05-01T12:00:00+02:00', Date.UTC(2024, 4, 1, 10)],
    ['2024-05-01T12:00:00-0130', Date.UTC(2024, 4, 1, 13, 30)],
    ['2024-05-01T12:00:00+05', Date.UTC(2024, 4, 1, 7)],
    ['2024-02-29', Date.UTC(2024, 1, 29)],
    ['2000-02-29', Date.UTC(2000, 1, 29)],
    ['1969-12-31T23:59:59.999Z', -1],
    // years below 100 are not shifted to 19xx (a Date.UTC pitfall)
    ['0050-06-15', daysFromCivil(50, 6, 15) * 86_400_000],
    ['0001-01-01T00:00:00Z', daysFromCivil(1, 1, 1) * 86_400_000],
  ];
  for (const [text, ms] of ok) assert.equal(parseIsoTimestamp(text), ms, text);
  // digits beyond the millisecond are floored away, as for decoded timestamps (one parser)
  assert.equal(parseIsoTimestamp('2024-01-01T12:00:00.0009Z'), Date.UTC(2024, 0, 1, 12));
  assert.equal(parseIsoTimestamp('1969-12-31T23:59:59.9995Z'), -1);
  const bad = ['', '2024', '2024-5-1', '2024-13-01', '2024-00-10', '2024-04-31', '2023-02-29', '1900-02-29', '2024-01-01T24:00',
    '2024-01-01T12:60', '2024-01-01T12:00:60', '2024-01-01T12:00:00+24:00', '2024-01-01X12:00',
    '2024-01-01T12', ' 2024-01-01', '2024-01-01T12:00:00ZZ', 'May 1, 2024', '2024-05-01Z'];
  for (const text of bad) assert.ok(Number.isNaN(parseIsoTimestamp(text)), text);
});

test('the error examples in docs/expressions.md are what the checker says', () => {
  const doc = readFileSync(join(repoRoot, 'docs', 'expressions.md'), 'utf8');
  const docSchema = schemaFromRecord({ price: 'float64', channel: 'string', ts: 'timestamp', auction: 'int64', x: 'bool', a: 'float64', b: 'float64', c: 'float64' });
  let code = '';
  let checked = 0;
  for (const line of doc.split('\n')) {
    const m = /^\| (`SLUICE_[A-Z_]+`)? ?\| (where )?`(.+?)` \| `(.+)` \|$/.exec(line);
    if (m === null) continue;
    if (m[1] !== undefined) code = m[1].slice(1, -1);
    const [text, message] = [m[3]!, m[4]!];
    assert.throws(() => (m[2] ? checkFilter(text, docSchema) : checkExpression(text, docSchema)), (err: unknown) =>
      err instanceof SluiceError && err.code === code && err.message === message, `${text} → ${message}`);
    checked++;
  }
  assert.ok(checked >= 15, `only ${checked} examples found`);
});
