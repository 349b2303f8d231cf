import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SluiceError } from '../../../engine/errors.js';
import { schemaFromRecord, type Batch, type Column, type ColumnType, type StreamSchema } from '../../../engine/schema.js';
import type { TypedExpr } from '../../../native-free-kernels/expression/ast.js';
import {
  checkExpression, compileFilter, compileValue, kernelSource, typecheck, parseExpression,
} from '../../../native-free-kernels/expression/index.js';

// ---------------------------------------------------------------------------------------------
// Seeded randomness

function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

type Rng = () => number;
const pick = <T>(rng: Rng, xs: readonly T[]): T => xs[Math.floor(rng() * xs.length)]!;
const int = (rng: Rng, lo: number, hi: number): number => lo + Math.floor(rng() * (hi - lo + 1));

// ---------------------------------------------------------------------------------------------
// Batches built from plain values (null = null), with garbage under nulls

type Plain = null | boolean | number | bigint | string;

function column(type: ColumnType, values: readonly Plain[], rng: Rng, validMode: 'null' | 'array'): Column {
  const n = values.length;
  const hasNull = values.some((v) => v === null);
  const valid = hasNull || validMode === 'array' ? Uint8Array.from(values, (v) => (v === null ? 0 : 1)) : null;
  switch (type) {
    case 'bool':
      return { type, values: Uint8Array.from(values, (v) => (v === null ? int(rng, 0, 1) : v ? 1 : 0)), valid };
    case 'int32':
      return { type, values: Int32Array.from(values, (v) => (v === null ? int(rng, -9, 9) : Number(v))), valid };
    case 'float64':
    case 'timestamp':
      return { type, values: Float64Array.from(values, (v) => (v === null ? (rng() < 0.5 ? NaN : rng() * 1e6) : Number(v))), valid };
    case 'int64': {
      const words = new Int32Array(2 * n);
      values.forEach((v, i) => {
        const x = v === null ? BigInt(int(rng, -1e6, 1e6)) : BigInt.asUintN(64, v as bigint);
        words[2 * i] = Number(BigInt.asIntN(32, x));
        words[2 * i + 1] = Number(BigInt.asIntN(32, x >> 32n));
      });
      return { type, words, valid };
    }
    case 'string': {
      // dictionary: the distinct values in random order, plus unused entries and one duplicate
      const distinct = [...new Set(values.filter((v): v is string => v !== null))];
      const dict = [...distinct, 'unused_zz', ...(distinct.length > 0 ? [distinct[0]!] : [])];
      for (let i = dict.length - 1; i > 0; i--) {
        const j = int(rng, 0, i);
        [dict[i], dict[j]] = [dict[j]!, dict[i]!];
      }
      const codes = Int32Array.from(values, (v) => {
        if (v === null) return rng() < 0.5 ? 0 : int(rng, -5, 1000); // garbage, possibly out of range
        const hits = dict.flatMap((d, k) => (d === v ? [k] : []));
        return pick(rng, hits);
      });
      return { type, codes, dict, valid };
    }
  }
}

function makeBatch(schema: StreamSchema, rows: Record<string, Plain[]>, rng: Rng, validMode: 'null' | 'array' = 'null'): Batch {
  const length = Object.values(rows)[0]?.length ?? 0;
  const columns = schema.fields.map((f) => column(f.type, rows[f.name] ?? Array.from({ length }, () => null), rng, validMode));
  return { schema, length, columns };
}

/** One cell as a plain value (int64 → bigint). */
function cell(col: Column, i: number): Plain {
  if (col.valid !== null && col.valid[i] === 0) return null;
  switch (col.type) {
    case 'bool': return col.values[i] === 1;
    case 'int32': case 'float64': case 'timestamp': return col.values[i]!;
    case 'string': return col.dict[col.codes[i]!]!;
    case 'int64': return (BigInt(col.words[2 * i + 1]!) << 32n) | BigInt(col.words[2 * i]! >>> 0);
  }
}

// ---------------------------------------------------------------------------------------------
// Reference evaluator: one row at a time on plain values; int64 as BigInt; comparisons exact.

function num(v: number | bigint): number {
  return typeof v === 'bigint' ? Number(v) : v;
}

/** Exact order of two numbers where either may be a BigInt; NaN when unordered. */
function exactCmp(a: number | bigint, b: number | bigint): number {
  if (typeof a === 'number' && typeof b === 'number') return a < b ? -1 : a > b ? 1 : a === b ? 0 : NaN;
  if (typeof a === 'number') return -exactCmp(b, a);
  if (typeof b === 'bigint') return a < b ? -1 : a > b ? 1 : 0;
  if (Number.isNaN(b)) return NaN;
  if (b === Infinity) return -1;
  if (b === -Infinity) return 1;
  const fl = Math.floor(b);
  const bf = BigInt(fl);
  if (a < bf) return -1;
  if (a > bf) return 1;
  return fl === b ? 0 : -1;
}

function codePoints(s: string): number[] {
  return Array.from(s, (c) => c.codePointAt(0)!);
}

function cmpPlain(a: Plain, b: Plain): number {
  if (typeof a === 'boolean') return Number(a) - Number(b as boolean);
  if (typeof a === 'string') {
    const x = codePoints(a);
    const y = codePoints(b as string);
    for (let i = 0; i < Math.min(x.length, y.length); i++) if (x[i] !== y[i]) return x[i]! < y[i]! ? -1 : 1;
    return x.length - y.length;
  }
  return exactCmp(a as number | bigint, b as number | bigint);
}

function refRound(x: number): number {
  const f = Math.floor(x);
  const diff = x - f;
  const r = diff > 0.5 ? f + 1 : diff < 0.5 ? f : x >= 0 ? f + 1 : f; // a tie goes away from zero
  return r === 0 && (x < 0 || Object.is(x, -0)) ? -0 : r; // C's round keeps the sign of a zero result
}

function and3(a: Plain, b: Plain): Plain {
  if (a === false || b === false) return false;
  if (a === null || b === null) return null;
  return true;
}
function or3(a: Plain, b: Plain): Plain {
  if (a === true || b === true) return true;
  if (a === null || b === null) return null;
  return false;
}
function not3(a: Plain): Plain {
  return a === null ? null : !a;
}

function compareOp(op: string, c: number): boolean {
  switch (op) {
    case '=': return c === 0;
    case '!=': return c !== 0; // NaN (unordered) is "not equal", as in IEEE
    case '<': return c < 0;
    case '<=': return c <= 0;
    case '>': return c > 0;
    default: return c >= 0;
  }
}

function refEval(e: TypedExpr, b: Batch, i: number): Plain {
  switch (e.kind) {
    case 'column': return cell(b.columns[e.index]!, i);
    case 'literal':
      if (e.value === null) return null;
      return e.type === 'int64' ? BigInt(e.value as number) : e.value;
    case 'neg': {
      const v = refEval(e.arg, b, i);
      return v === null ? null : -num(v as number | bigint);
    }
    case 'arith': {
      const l = refEval(e.left, b, i);
      const r = refEval(e.right, b, i);
      if (l === null || r === null) return null;
      const x = num(l as number | bigint);
      const y = num(r as number | bigint);
      switch (e.op) {
        case '+': return x + y;
        case '-': return x - y;
        case '*': return x * y;
        case '/': return y === 0 ? null : x / y;
        case '%': return y === 0 ? null : x % y;
      }
      break;
    }
    case 'compare': {
      const l = refEval(e.left, b, i);
      const r = refEval(e.right, b, i);
      if (l === null || r === null) return null;
      return compareOp(e.op, cmpPlain(l, r));
    }
    case 'logic': {
      const l = refEval(e.left, b, i);
      const r = refEval(e.right, b, i);
      return e.op === 'and' ? and3(l, r) : or3(l, r);
    }
    case 'not': return not3(refEval(e.arg, b, i));
    case 'isnull': return (refEval(e.arg, b, i) === null) !== e.negated;
    case 'in': {
      const x = refEval(e.arg, b, i);
      let r: Plain;
      if (x === null) r = null;
      else {
        let sawNull = false;
        let hit = false;
        for (const item of e.list) {
          const v = refEval(item, b, i);
          if (v === null) sawNull = true;
          else if (cmpPlain(x, v) === 0) hit = true;
        }
        r = hit ? true : sawNull ? null : false;
      }
      return e.negated ? not3(r) : r;
    }
    case 'between': {
      const x = refEval(e.arg, b, i);
      const lo = refEval(e.low, b, i);
      const hi = refEval(e.high, b, i);
      const ge = x === null || lo === null ? null : cmpPlain(x, lo) >= 0;
      const le = x === null || hi === null ? null : cmpPlain(x, hi) <= 0;
      const r = and3(ge, le);
      return e.negated ? not3(r) : r;
    }
    case 'call': {
      const args = e.args.map((a) => refEval(a, b, i));
      switch (e.fn) {
        case 'abs': case 'floor': case 'ceil': case 'round': {
          if (args[0] === null) return null;
          const x = num(args[0] as number | bigint);
          if (e.fn === 'abs') return Math.abs(x);
          if (e.fn === 'floor') return Math.floor(x);
          if (e.fn === 'ceil') return Math.ceil(x);
          if (e.digits === null) return refRound(x);
          if (e.digits >= 0) {
            const m = 10 ** e.digits;
            const r = refRound(x * m) / m;
            return Number.isFinite(r) ? r : x;
          }
          const m = 10 ** -e.digits;
          const r = refRound(x / m) * m;
          return Number.isFinite(r) ? r : 0;
        }
        case 'length': return args[0] === null ? null : codePoints(args[0] as string).length;
        case 'lower': return args[0] === null ? null : (args[0] as string).toLowerCase();
        case 'upper': return args[0] === null ? null : (args[0] as string).toUpperCase();
        case 'coalesce': {
          const v = args.find((a) => a !== null) ?? null;
          if (v === null) return null;
          if (e.type === 'int64') return typeof v === 'bigint' ? v : BigInt(v as number);
          if (e.type === 'float64') return num(v as number | bigint);
          return v;
        }
      }
    }
  }
  throw new Error('unreachable');
}

function sameValue(a: Plain, b: Plain): boolean {
  if (typeof a === 'number' && typeof b === 'number') return Object.is(a, b) || (Number.isNaN(a) && Number.isNaN(b));
  return a === b;
}

const show = (v: Plain): string => (typeof v === 'bigint' ? `${v}n` : typeof v === 'string' ? JSON.stringify(v) : String(v));

function checkFilterOn(text: string, e: TypedExpr, b: Batch, rng: Rng): void {
  const kernel = compileFilter(e);
  const expected: number[] = [];
  for (let i = 0; i < b.length; i++) if (refEval(e, b, i) === true) expected.push(i);
  const out = new Int32Array(b.length + 1).fill(-7);
  const k = kernel(b, null, b.length, out);
  assert.deepEqual([...out.subarray(0, k)], expected, `filter ${text} (rows ${b.length})`);
  // through a selection vector, written in place
  const sel = Int32Array.from(Array.from({ length: b.length }, (_, i) => i).filter(() => rng() < 0.6));
  const want = [...sel].filter((i) => expected.includes(i));
  const k2 = kernel(b, sel, sel.length, sel);
  assert.deepEqual([...sel.subarray(0, k2)], want, `filter ${text} with a selection vector`);
}

function checkValueOn(text: string, e: TypedExpr, b: Batch): void {
  const col = compileValue(e)(b);
  if (e.type !== 'null') assert.equal(col.type, e.type, `${text}: column type`);
  for (let i = 0; i < b.length; i++) {
    const want = refEval(e, b, i);
    const got = cell(col, i);
    if (!sameValue(got, want)) assert.fail(`value ${text} row ${i}: got ${show(got)}, want ${show(want)}`);
  }
}

// ---------------------------------------------------------------------------------------------
// Random data and expressions

const schema = schemaFromRecord({
  i32: 'int32', a: 'int64', b: 'int64', f: 'float64', g: 'float64', s: 'string', t: 'string',
  ts: 'timestamp', ts2: 'timestamp', flag: 'bool', flag2: 'bool',
});

const T0 = Date.UTC(2024, 0, 1);
const STRINGS = ['', 'a', 'A', 'b', 'spam', 'Spam', 'SPAM', 'web', 'é', 'e\u0301', '🦆', '\uE000', "it's", 'ß', '  x ', 'zz', 'ab', 'abc', 'İ'];
const INT64S = [0n, 1n, -1n, 2n, 5n, -5n, 100n, 4294967295n, 4294967296n, -4294967296n, 9007199254740991n, 9007199254740992n,
  9007199254740993n, -9007199254740993n, 9007199254740994n, (1n << 62n) + 12345n, (1n << 63n) - 1n, -(1n << 63n), 123456789012345678n];
const FLOATS = [0, -0, 0.5, 1.5, 2.5, -2.5, -0.5, 2.675, 1, -1, 2, 3, 100, 99.99, 100.5, -100, 1e20, -1e20, 9007199254740992,
  9007199254740994, 4294967296, 0.1, 1e-9, NaN, Infinity, -Infinity, 1234.5, -1250];

function randomValue(type: ColumnType, rng: Rng): Plain {
  switch (type) {
    case 'bool': return rng() < 0.5;
    case 'int32': return rng() < 0.8 ? int(rng, -5, 5) : pick(rng, [100, -100, 2147483647, -2147483648, 1000, 3]);
    case 'int64': return rng() < 0.6 ? pick(rng, INT64S) : BigInt(int(rng, -10, 10));
    case 'float64': return rng() < 0.6 ? pick(rng, FLOATS) : Math.round((rng() * 400 - 200) * 4) / 4;
    case 'timestamp': return T0 + int(rng, -3, 3) * 3_600_000 * (rng() < 0.5 ? 1 : 24);
    case 'string': return pick(rng, STRINGS);
  }
}

function randomBatch(rng: Rng, length: number, nullRate: number, validMode: 'null' | 'array'): Batch {
  const rows: Record<string, Plain[]> = {};
  for (const f of schema.fields) {
    const rate = rng() < 0.3 ? 0 : nullRate; // some columns without nulls even in null batches
    rows[f.name] = Array.from({ length }, () => (rng() < rate ? null : randomValue(f.type, rng)));
  }
  return makeBatch(schema, rows, rng, validMode);
}

const lit = (s: string): string => `'${s.replace(/'/g, "''")}'`;
const NUM_LITS = ['0', '1', '2', '2.5', '-1', '-2.5', '100', '0.5', '1e20', '-1e20', '9007199254740991', '-9007199254740991',
  '4294967296', '4294967295', '9007199254740992.0', '1e19', '9.3e18', '-9.3e18', '3', '0.1', '-0', '123456789012345678e0'];
const ISO_LITS = ["'2024-01-01'", "'2024-01-01T03:00:00Z'", "'2023-12-31T22:00:00-02:00'", "'2024-01-02 00:00'", "'2023-12-30'"];

class ExprGen {
  constructor(private readonly rng: Rng) {}
  private p(x: number): boolean { return this.rng() < x; }
  private one<T>(xs: readonly T[]): T { return pick(this.rng, xs); }

  num(d: number): string {
    const r = this.rng;
    if (d <= 0 || this.p(0.3)) return this.one(['i32', 'f', 'g', 'a', 'b', 'i32', 'f', ...NUM_LITS.slice(0, 8), this.one(NUM_LITS)]);
    switch (int(r, 0, 9)) {
      case 0: return `(${this.num(d - 1)} ${this.one(['+', '-', '*', '/', '%'])} ${this.num(d - 1)})`;
      case 1: return `-(${this.num(d - 1)})`;
      case 2: return `${this.one(['abs', 'floor', 'ceil', 'round'])}(${this.num(d - 1)})`;
      case 3: return `round(${this.num(d - 1)}, ${int(r, -2, 3)})`;
      case 4: return `length(${this.str(d - 1)})`;
      case 5: return `coalesce(${this.num(d - 1)}, ${this.num(d - 1)}${this.p(0.3) ? ', null' : ''})`;
      case 6: return this.i64(d - 1);
      case 7: return this.p(0.2) ? 'null' : `(${this.num(d - 1)} / ${this.one(['0', 'g', 'i32'])})`;
      default: return `(${this.num(d - 1)} ${this.one(['+', '*', '%'])} ${this.num(d - 1)})`;
    }
  }

  i64(d: number): string {
    if (d <= 0 || this.p(0.5)) return this.one(['a', 'b', 'a', 'b', 'i32']);
    return this.one([
      `coalesce(a, b)`, `coalesce(b, a, ${this.one(['5', '-7', '9007199254740991', '4294967296'])})`, `coalesce(i32, a)`,
      `coalesce(null, a)`, `coalesce(i32, 3000000000)`, `coalesce(i32, 7)`,
    ]);
  }

  str(d: number): string {
    if (d <= 0 || this.p(0.35)) return this.p(0.7) ? this.one(['s', 't', 's']) : lit(this.one(STRINGS));
    switch (int(this.rng, 0, 4)) {
      case 0: return `lower(${this.str(d - 1)})`;
      case 1: return `upper(${this.str(d - 1)})`;
      case 2: return `coalesce(${this.str(d - 1)}, ${this.str(d - 1)})`;
      case 3: return `coalesce(${this.str(d - 1)}, ${this.str(d - 1)}, ${lit(this.one(STRINGS))})`;
      default: return this.p(0.1) ? 'null' : this.one(['s', 't']);
    }
  }

  ts(d: number): string {
    if (d <= 0 || this.p(0.5)) return this.one(['ts', 'ts2']);
    return this.one(['coalesce(ts, ts2)', `coalesce(ts, ${this.one(ISO_LITS)})`, `coalesce(ts2, ${T0})`]);
  }

  bool(d: number): string {
    const r = this.rng;
    if (d <= 0 || this.p(0.1)) return this.one(['flag', 'flag2', 'true', 'false', 'null', 'flag']);
    const cmp = (): string => this.one(['=', '!=', '<>', '<', '<=', '>', '>=']);
    switch (int(r, 0, 15)) {
      case 0: case 1: return `${this.num(d - 1)} ${cmp()} ${this.num(d - 1)}`;
      case 2: return `${this.i64(d - 1)} ${cmp()} ${this.one([...NUM_LITS, 'a', 'b', 'f', 'i32'])}`;
      case 3: case 4: return `${this.str(d - 1)} ${cmp()} ${this.str(d - 1)}`;
      case 5: return `${this.ts(d - 1)} ${cmp()} ${this.one([...ISO_LITS, 'ts', 'ts2', String(T0), 'a', 'f'])}`;
      case 6: return `(${this.bool(d - 1)}) ${this.one(['and', 'or', 'AND', 'Or'])} (${this.bool(d - 1)})`;
      case 7: return `not (${this.bool(d - 1)})`;
      case 8: return `${this.one([this.num(d - 1), this.str(d - 1), this.ts(d - 1), `(${this.bool(d - 1)})`])} is ${this.p(0.5) ? 'not ' : ''}null`;
      case 9: {
        const items = Array.from({ length: int(r, 1, 12) }, () => (this.p(0.1) ? 'null' : this.one(NUM_LITS)));
        return `${this.one([this.num(d - 1), this.i64(d - 1)])} ${this.p(0.3) ? 'not ' : ''}in (${items.join(', ')})`;
      }
      case 10: {
        const items = Array.from({ length: int(r, 1, 12) }, () => (this.p(0.1) ? 'null' : lit(this.one(STRINGS))));
        return `${this.str(d - 1)} ${this.p(0.3) ? 'not ' : ''}in (${items.join(', ')})`;
      }
      case 11: return `${this.num(d - 1)} ${this.p(0.3) ? 'not ' : ''}between ${this.num(d - 1)} and ${this.num(d - 1)}`;
      case 12: return `${this.str(d - 1)} ${this.p(0.3) ? 'not ' : ''}between ${lit(this.one(STRINGS))} and ${this.str(d - 1)}`;
      case 13: return `${this.ts(d - 1)} between ${this.one(ISO_LITS)} and ${this.one([...ISO_LITS, 'ts2'])}`;
      case 14: return `(${this.bool(d - 1)}) ${cmp()} (${this.bool(d - 1)})`;
      default: return `coalesce(${this.one(['flag', 'null', '(f > 1)'])}, ${this.bool(d - 1)}${this.p(0.5) ? ', false' : ''})`;
    }
  }
}

function batchesFor(seed: number): Batch[] {
  const rng = mulberry32(seed);
  const sizes = [0, 1, 3, 5, 8, 33, 130, 257];
  const out: Batch[] = [];
  for (const n of sizes) {
    out.push(randomBatch(rng, n, 0, 'null'));
    out.push(randomBatch(rng, n, 0.25, rng() < 0.5 ? 'null' : 'array'));
  }
  out.push(randomBatch(rng, 300, 0, 'array')); // valid arrays without a null: null-handling path, same answers
  return out;
}

test('random filters agree with the row-at-a-time reference', () => {
  const rng = mulberry32(1234);
  const gen = new ExprGen(rng);
  const batches = batchesFor(99);
  let compiled = 0;
  for (let k = 0; k < 700; k++) {
    const text = gen.bool(int(rng, 1, 4));
    const e = checkExpression(text, schema);
    for (const b of batches) checkFilterOn(text, e, b, rng);
    compiled++;
  }
  assert.equal(compiled, 700);
});

test('random values agree with the row-at-a-time reference', () => {
  const rng = mulberry32(777);
  const gen = new ExprGen(rng);
  const batches = batchesFor(5);
  for (let k = 0; k < 500; k++) {
    const kind = int(rng, 0, 4);
    const d = int(rng, 1, 4);
    const text = kind === 0 ? gen.num(d) : kind === 1 ? gen.str(d) : kind === 2 ? gen.bool(d) : kind === 3 ? gen.i64(d) : gen.ts(d);
    const e = checkExpression(text, schema);
    for (const b of batches) checkValueOn(text, e, b);
  }
});

// ---------------------------------------------------------------------------------------------
// Targeted semantics

const T = true;
const F = false;
const N = null;
const tri = [T, F, N] as const;

function valuesOf(text: string, s: StreamSchema, b: Batch): Plain[] {
  const col = compileValue(checkExpression(text, s))(b);
  return Array.from({ length: b.length }, (_, i) => cell(col, i));
}

function selected(text: string, s: StreamSchema, b: Batch): number[] {
  const out = new Int32Array(b.length);
  const k = compileFilter(checkExpression(text, s))(b, null, b.length, out);
  return [...out.subarray(0, k)];
}

test('three-valued logic truth tables (columns and literals)', () => {
  const s = schemaFromRecord({ p: 'bool', q: 'bool' });
  const rng = mulberry32(3);
  const p = tri.flatMap((x) => tri.map(() => x));
  const q = tri.flatMap(() => [...tri]);
  const b = makeBatch(s, { p, q }, rng);
  //                      p: T T T  F F F  N N N   q: T F N ...
  assert.deepEqual(valuesOf('p and q', s, b), [T, F, N, F, F, F, N, F, N]);
  assert.deepEqual(valuesOf('p or q', s, b), [T, T, T, T, F, N, T, N, N]);
  assert.deepEqual(valuesOf('not p', s, b), [F, F, F, T, T, T, N, N, N]);
  assert.deepEqual(valuesOf('p = q', s, b), [T, F, N, F, T, N, N, N, N]);
  assert.deepEqual(valuesOf('p != q', s, b), [F, T, N, T, F, N, N, N, N]);
  assert.deepEqual(valuesOf('p < q', s, b), [F, F, N, T, F, N, N, N, N]);
  assert.deepEqual(valuesOf('p is null', s, b), [F, F, F, F, F, F, T, T, T]);
  assert.deepEqual(valuesOf('p is not null', s, b), [T, T, T, T, T, T, F, F, F]);
  assert.deepEqual(valuesOf('coalesce(p, q)', s, b), [T, T, T, F, F, F, T, F, N]);
  assert.deepEqual(valuesOf('not (p and q)', s, b), [F, T, N, T, T, T, N, T, N]);
  assert.deepEqual(valuesOf('p and null', s, b), [N, N, N, F, F, F, N, N, N]);
  assert.deepEqual(valuesOf('p or null', s, b), [T, T, T, N, N, N, N, N, N]);
  // a filter selects only TRUE rows
  assert.deepEqual(selected('p or q', s, b), [0, 1, 2, 3, 6]);
  assert.deepEqual(selected('not (p or q)', s, b), [4]);
  // constants fold with the same rules
  const one = makeBatch(s, { p: [T], q: [T] }, rng);
  const constant: [string, Plain][] = [
    ['null and false', F], ['false and null', F], ['null and true', N], ['null or true', T], ['true or null', T],
    ['null or false', N], ['not null', N], ['null is null', T], ['null = null', N], ['1 in (2, null)', N],
    ['1 in (1, null)', T], ['1 not in (2, null)', N], ['null in (1)', N], ['1 between null and 2', N],
    ['3 between null and 2', F], ['(1 / 0) is null', T], ['1 + null is null', T], ["'a' < 'b'", T],
  ];
  for (const [text, want] of constant) assert.deepEqual(valuesOf(text, s, one), [want], text);
  assert.deepEqual(selected('null', s, one), []);
  assert.deepEqual(selected('true', s, one), [0]);
});

test('in with nulls; not in', () => {
  const s = schemaFromRecord({ x: 'float64', w: 'string', n: 'int64' });
  const b = makeBatch(s, { x: [1, 2, N, 3], w: ['a', 'b', N, 'c'], n: [1n, 2n, N, 9007199254740993n] }, mulberry32(4));
  assert.deepEqual(valuesOf('x in (1, null)', s, b), [T, N, N, N]);
  assert.deepEqual(valuesOf('x not in (1, null)', s, b), [F, N, N, N]);
  assert.deepEqual(valuesOf('x in (1, 3)', s, b), [T, F, N, T]);
  assert.deepEqual(valuesOf('x not in (1, 3)', s, b), [F, T, N, F]);
  assert.deepEqual(valuesOf("w in ('a', null)", s, b), [T, N, N, N]);
  assert.deepEqual(valuesOf("w not in ('a', 'c')", s, b), [F, T, N, F]);
  assert.deepEqual(valuesOf('n in (2, 9007199254740991, 2.5)', s, b), [F, T, N, F]);
  assert.deepEqual(valuesOf('x in (null)', s, b), [N, N, N, N]);
  // long lists use a Set
  const many = Array.from({ length: 40 }, (_, i) => i * 7).join(', ');
  assert.deepEqual(valuesOf(`x in (${many}, 1)`, s, b), [T, F, N, F]);
  assert.deepEqual(valuesOf(`w in (${Array.from({ length: 40 }, (_, i) => `'k${i}'`).join(', ')}, 'b')`, s, b), [F, T, N, F]);
});

test('division and modulo by zero are null; % keeps the sign of the dividend', () => {
  const s = schemaFromRecord({ x: 'float64', y: 'float64', i: 'int32' });
  const b = makeBatch(s, { x: [7, -7, 7.5, 0, 5], y: [0, 3, 2, 0, -0], i: [0, 2, 0, 1, 0] }, mulberry32(5));
  assert.deepEqual(valuesOf('x / 0', s, b), [N, N, N, N, N]);
  assert.deepEqual(valuesOf('x % 0', s, b), [N, N, N, N, N]);
  assert.deepEqual(valuesOf('x / y', s, b), [N, -7 / 3, 3.75, N, N]);
  assert.deepEqual(valuesOf('x % y', s, b), [N, -1, 1.5, N, N]);
  assert.deepEqual(valuesOf('x / i', s, b), [N, -3.5, N, 0, N]);
  assert.deepEqual(valuesOf('x % i', s, b), [N, -1, N, 0, N]);
  assert.deepEqual(selected('x / y is null', s, b), [0, 3, 4]);
  assert.deepEqual(selected('not (x / y > 0)', s, b), [1]);
});

test('round: half away from zero, with digits, as DuckDB computes doubles', () => {
  const s = schemaFromRecord({ x: 'float64' });
  const xs = [0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 0.49999999999999994, 2.675, 1234.5, -1250, 1e308, -0.3, 4503599627370497, NaN, Infinity];
  const b = makeBatch(s, { x: xs }, mulberry32(6));
  const r0 = valuesOf('round(x)', s, b);
  assert.deepEqual(r0.slice(0, 13), [1, 2, 3, -1, -2, -3, 0, 3, 1235, -1250, 1e308, -0, 4503599627370497]);
  assert.ok(Number.isNaN(r0[13]) && r0[14] === Infinity);
  // values checked against DuckDB 1.5 (round(x::DOUBLE, d))
  const r2 = valuesOf('round(x, 2)', s, b);
  assert.deepEqual(r2.slice(0, 11), [0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 0.5, 2.68, 1234.5, -1250, 1e308]);
  // 1.005 * 100 is 100.49999999999999 in doubles, so DuckDB gives 1 (not 1.01); 8.345 → 8.35
  const b2 = makeBatch(s, { x: [1.005, 0.285, 8.345, -1.005] }, mulberry32(6));
  assert.deepEqual(valuesOf('round(x, 2)', s, b2), [1, 0.28, 8.35, -1]);
  assert.deepEqual(valuesOf('round(x, -2)', s, b).slice(0, 11), [0, 0, 0, -0, -0, -0, 0, 0, 1200, -1300, 1e308]);
  assert.deepEqual(valuesOf('round(x, 0)', s, b).slice(0, 6), [1, 2, 3, -1, -2, -3]);
  assert.deepEqual(valuesOf('round(-x, 1)', s, b).slice(0, 3), [-0.5, -1.5, -2.5]);
  assert.deepEqual(valuesOf('floor(x)', s, b).slice(0, 6), [0, 1, 2, -1, -2, -3]);
  assert.deepEqual(valuesOf('ceil(x)', s, b).slice(0, 6), [1, 2, 3, -0, -1, -2]);
  assert.deepEqual(valuesOf('abs(x)', s, b).slice(0, 6), [0.5, 1.5, 2.5, 0.5, 1.5, 2.5]);
});

test('int64: comparisons are exact through the two words, beyond 2^53', () => {
  const s = schemaFromRecord({ a: 'int64', b: 'int64', g: 'float64', i: 'int32' });
  const A = [9007199254740992n, 9007199254740993n, 9007199254740994n, -9007199254740993n, (1n << 63n) - 1n, -(1n << 63n), 4294967296n, -1n, N];
  const B = [9007199254740993n, 9007199254740993n, 9007199254740993n, -9007199254740992n, (1n << 63n) - 2n, -(1n << 63n), 4294967295n, -1n, 0n];
  const G = [9007199254740992, 9007199254740992, 9007199254740992, -9007199254740992, 9223372036854775808, -9223372036854775808, 4294967296.5, -1, 0];
  const I = [0, 1, 2, -1, 2147483647, -2147483648, 0, -1, 0];
  const b = makeBatch(s, { a: A, b: B, g: G, i: I }, mulberry32(7));
  assert.deepEqual(selected('a > 9007199254740991', s, b), [0, 1, 2, 4]);
  assert.deepEqual(selected('a >= 9007199254740992.0', s, b), [0, 1, 2, 4]);
  assert.deepEqual(selected('a > 9007199254740992.0', s, b), [1, 2, 4]);
  assert.deepEqual(selected('a = b', s, b), [1, 5, 7]);
  assert.deepEqual(selected('a != b', s, b), [0, 2, 3, 4, 6]);
  assert.deepEqual(selected('a < b', s, b), [0, 3]);
  assert.deepEqual(selected('a > b', s, b), [2, 4, 6]);
  // int64 vs float64 column: exact, not by rounding a to a double
  assert.deepEqual(selected('a > g', s, b), [1, 2]);
  assert.deepEqual(selected('a = g', s, b), [0, 5, 7]);
  assert.deepEqual(selected('a < g', s, b), [3, 4, 6]);
  assert.deepEqual(selected('g < a', s, b), [1, 2]);
  // int64 vs int32 column via widened words
  assert.deepEqual(selected('a = i', s, b), [7]);
  assert.deepEqual(selected('a < i', s, b), [3, 5]);
  // literals outside int64, and fractions
  assert.deepEqual(selected('a < 1e19', s, b), [0, 1, 2, 3, 4, 5, 6, 7]);
  assert.deepEqual(selected('a > -1e19', s, b), [0, 1, 2, 3, 4, 5, 6, 7]);
  assert.deepEqual(selected('a > 1e19', s, b), []);
  assert.deepEqual(selected('a = 9223372036854775808.0', s, b), []);
  assert.deepEqual(selected('a >= 9223372036854775807e0', s, b), []); // the literal is 2^63 as a double
  assert.deepEqual(selected('a <= -9223372036854775808e0', s, b), [5]);
  assert.deepEqual(selected('a = 2.5', s, b), []);
  assert.deepEqual(selected('a != 2.5', s, b), [0, 1, 2, 3, 4, 5, 6, 7]);
  assert.deepEqual(selected('a > -1.5', s, b), [0, 1, 2, 4, 6, 7]);
  assert.deepEqual(selected('a < -0.5', s, b), [3, 5, 7]);
  assert.deepEqual(selected('a in (-1, 4294967296, 0.5)', s, b), [6, 7]);
  assert.deepEqual(selected('a between -1 and 4294967296', s, b), [6, 7]);
  assert.deepEqual(selected('-1 = a', s, b), [7]);
  // values keep every bit
  const co = compileValue(checkExpression('coalesce(a, b)', s))(b);
  assert.equal(co.type, 'int64');
  assert.deepEqual(Array.from({ length: b.length }, (_, k) => cell(co, k)), [...A.slice(0, 8), 0n]);
  const lit = compileValue(checkExpression('coalesce(a, -9007199254740991)', s))(b);
  assert.equal(cell(lit, 8), -9007199254740991n);
  // arithmetic is in doubles
  assert.deepEqual(valuesOf('a + 0', s, b)[1], 9007199254740992);
  // and the generated code never converts or uses BigInt for these comparisons
  const src = kernelSource(compileFilter(checkExpression('a > 9007199254740991 and a != b', s)))!;
  assert.ok(!/BigInt|cmpI64F\(/.test(src.split('return function')[1]!), src);
});

test('timestamps: ISO-8601 literals, numbers as milliseconds, other timestamps', () => {
  const s = schemaFromRecord({ ts: 'timestamp', u: 'timestamp' });
  const t = (iso: string): number => Date.parse(iso);
  const TS = [t('2024-04-30T23:59:59.999Z'), t('2024-05-01T00:00:00Z'), t('2024-05-01T10:00:00Z'), N];
  const U = [t('2024-05-01T00:00:00Z'), t('2024-05-01T00:00:00Z'), N, t('2024-01-01T00:00:00Z')];
  const b = makeBatch(s, { ts: TS, u: U }, mulberry32(8));
  assert.deepEqual(selected("ts >= '2024-05-01'", s, b), [1, 2]);
  assert.deepEqual(selected("ts >= '2024-05-01T02:00:00+02:00'", s, b), [1, 2]);
  assert.deepEqual(selected("ts < '2024-05-01T00:00:00.000Z'", s, b), [0]);
  assert.deepEqual(selected("ts = '2024-05-01T12:00:00+02:00'", s, b), [2]);
  assert.deepEqual(selected(`ts > ${t('2024-05-01T00:00:00Z')}`, s, b), [2]);
  assert.deepEqual(selected('ts < u', s, b), [0]);
  assert.deepEqual(selected("ts between '2024-05-01' and '2024-05-01T10:00Z'", s, b), [1, 2]);
  assert.deepEqual(selected("ts in ('2024-05-01', '2024-05-01T10:00:00Z')", s, b), [1, 2]);
  const co = compileValue(checkExpression("coalesce(ts, u, '2000-01-01')", s))(b);
  assert.equal(co.type, 'timestamp');
  assert.deepEqual(Array.from({ length: 4 }, (_, i) => cell(co, i)), [TS[0], TS[1], TS[2], U[3]]);
});

test('strings: code point order, case mapping, length in code points', () => {
  const s = schemaFromRecord({ x: 'string', y: 'string' });
  const X = ['\uE000', 'a', 'B', '🦆', 'e\u0301', "it's", N, 'Straße'];
  const Y = ['🦆', 'b', 'a', '\uE000', 'é', "it's", 'x', 'x'];
  const b = makeBatch(s, { x: X, y: Y }, mulberry32(9));
  // UTF-16 order would put '🦆' (D83E DD86) before U+E000; code point order puts it after
  assert.deepEqual(selected('x < y', s, b), [0, 1, 2, 4, 7]);
  assert.deepEqual(selected("x > '\uE000'", s, b), [3]);
  assert.deepEqual(selected("x = 'it''s'", s, b), [5]);
  assert.deepEqual(selected('x = y', s, b), [5]);
  assert.deepEqual(selected('lower(x) = lower(y)', s, b), [5]);
  assert.deepEqual(selected("upper(x) < 'C'", s, b), [1, 2]);
  assert.deepEqual(valuesOf('length(x)', s, b), [1, 1, 1, 1, 2, 4, N, 6]);
  assert.deepEqual(valuesOf('upper(x)', s, b), ['\uE000', 'A', 'B', '🦆', 'E\u0301', "IT'S", N, 'STRASSE']);
  assert.deepEqual(valuesOf("coalesce(x, 'none')", s, b), ['\uE000', 'a', 'B', '🦆', 'e\u0301', "it's", 'none', 'Straße']);
  assert.deepEqual(valuesOf('coalesce(x, y)', s, b), [...X.slice(0, 6), 'x', 'Straße']);
  assert.deepEqual(selected("coalesce(x, y) in ('x', 'a')", s, b), [1, 6]);
  assert.deepEqual(selected("x between 'a' and 'z'", s, b), [1, 4, 5]);
});

test('value kernels: shapes of the result columns', () => {
  const s = schemaFromRecord({ x: 'string', f: 'float64', i: 'int32', a: 'int64', ts: 'timestamp', bo: 'bool' });
  const rng = mulberry32(10);
  const b = makeBatch(s, {
    x: ['Ab', N, 'cD', 'Ab'], f: [1, 2.5, 0, -1], i: [1, N, 3, 4], a: [1n, 2n, 3n, N], ts: [1, 2, 3, 4], bo: [T, F, N, T],
  }, rng);
  // a bare column is the batch's own column
  assert.equal(compileValue(checkExpression('f', s))(b), b.columns[1]);
  assert.equal(compileValue(checkExpression('x', s))(b), b.columns[0]);
  // lower() of a string column reuses the codes and the validity; the dictionary is mapped once
  const low = compileValue(checkExpression('lower(x)', s))(b);
  const src = b.columns[0]!;
  assert.ok(low.type === 'string' && src.type === 'string');
  if (low.type !== 'string' || src.type !== 'string') return;
  assert.equal(low.codes, src.codes);
  assert.equal(low.valid, src.valid);
  assert.deepEqual(low.dict, src.dict.map((d) => d.toLowerCase()));
  // a string result that is not null where the input is null needs its own codes
  const co = compileValue(checkExpression("coalesce(x, '?')", s))(b);
  assert.ok(co.type === 'string' && co.codes !== src.codes && co.valid === null);
  assert.deepEqual([0, 1, 2, 3].map((k) => cell(co, k)), ['Ab', '?', 'cD', 'Ab']);
  // numbers
  const len = compileValue(checkExpression('length(x)', s))(b);
  assert.ok(len.type === 'float64' && len.valid !== null);
  const plus = compileValue(checkExpression('f + 1', s))(b);
  assert.ok(plus.type === 'float64' && plus.valid === null, 'no nulls → valid is null');
  const div = compileValue(checkExpression('f / f', s))(b);
  assert.ok(div.type === 'float64' && div.valid !== null);
  assert.deepEqual([0, 1, 2, 3].map((k) => cell(div, k)), [1, 1, N, 1]);
  const ci = compileValue(checkExpression('coalesce(i, 9)', s))(b);
  assert.ok(ci.type === 'int32' && ci.valid === null);
  assert.deepEqual([...ci.values], [1, 9, 3, 4]);
  const bo = compileValue(checkExpression('f > 0', s))(b);
  assert.ok(bo.type === 'bool' && bo.valid === null);
  assert.deepEqual([...bo.values], [1, 1, 0, 0]);
  const bn = compileValue(checkExpression('not bo', s))(b);
  assert.deepEqual([0, 1, 2, 3].map((k) => cell(bn, k)), [F, T, N, F]);
  const nul = compileValue(checkExpression('null', s))(b);
  assert.ok(nul.type === 'float64' && nul.valid !== null && nul.valid.every((v) => v === 0));
  const k = compileValue(checkExpression("'k'", s))(b);
  assert.deepEqual([0, 1, 2, 3].map((r) => cell(k, r)), ['k', 'k', 'k', 'k']);
  const empty = { schema: s, length: 0, columns: b.columns } as Batch;
  assert.equal(compileValue(checkExpression('f * 2', s))(empty).type, 'float64');
});

test('filters: selection vectors, in place, empty input, non-bool rejected', () => {
  const s = schemaFromRecord({ f: 'float64' });
  const b = makeBatch(s, { f: [5, 1, 7, N, 9, 2, 8, 10, 11] }, mulberry32(11));
  const k = compileFilter(checkExpression('f > 4', s));
  const sel = Int32Array.from([0, 1, 3, 4, 6, 8]);
  const n = k(b, sel, sel.length, sel);
  assert.deepEqual([...sel.subarray(0, n)], [0, 4, 6, 8]);
  assert.equal(k(b, null, 0, new Int32Array(0)), 0);
  assert.equal(k(b, new Int32Array(0), 0, new Int32Array(0)), 0);
  const out = new Int32Array(9);
  assert.equal(k(b, null, 9, out), 6);
  assert.deepEqual([...out.subarray(0, 6)], [0, 2, 4, 6, 7, 8]);
  assert.throws(() => compileFilter(checkExpression('f + 1', s)), (err: unknown) =>
    err instanceof SluiceError && err.code === 'SLUICE_EXPR_TYPE' && err.message === 'a filter must be a bool expression, got float64 at 1:3');
});

test('the documented hot path: lifted string predicate, branch-free loop; correct on 200k rows', () => {
  const s = schemaFromRecord({ price: 'float64', channel: 'string' });
  const rng = mulberry32(12);
  const n = 200_000;
  const dict = ['web', 'spam', 'app', 'ios', 'android', 'partner', 'email', 'direct'];
  const price = new Float64Array(n);
  const codes = new Int32Array(n);
  for (let i = 0; i < n; i++) { price[i] = rng() * 200; codes[i] = int(rng, 0, 7); }
  const valid = Uint8Array.from({ length: n }, () => (rng() < 0.97 ? 1 : 0));
  for (const v of [null, valid]) {
    const b: Batch = { schema: s, length: n, columns: [{ type: 'float64', values: price, valid: v }, { type: 'string', codes, dict, valid: null }] };
    const kernel = compileFilter(checkExpression("price > 100 and channel != 'spam'", s));
    const out = new Int32Array(n);
    const k = kernel(b, null, n, out);
    const want: number[] = [];
    for (let i = 0; i < n; i++) if ((v === null || v[i] === 1) && price[i]! > 100 && codes[i] !== 1) want.push(i);
    assert.equal(k, want.length);
    assert.deepEqual([...out.subarray(0, k)], want);
  }
  const src = kernelSource(compileFilter(checkExpression("price > 100 and channel != 'spam'", s)))!;
  const rowCode = src.slice(src.indexOf('return function filter'));
  assert.match(src, /function lift\d+\(D\)/, 'the string predicate is evaluated per dictionary entry');
  assert.ok(!rowCode.includes('cmpStr') && !/\bK\d/.test(rowCode), 'no string comparison per row');
  assert.match(rowCode, /L\d+\[t\d+\]/, 'the row loop indexes the lifted table by code');
  assert.match(rowCode, /out\[k\] = b \+ 1; k \+= p1;/, 'branch-free unrolled writes');
  assert.match(rowCode, /if \(r\d+ === null && r\d+ === null\)/, 'a variant without null checks');
  for (const text of ["lower(channel) in ('web', 'app')", 'length(channel) > 3', "channel is null or channel = 'x'"]) {
    const body = kernelSource(compileFilter(checkExpression(text, s)))!;
    assert.ok(!/toLowerCase|strLen|\bK\d/.test(body.slice(body.indexOf('return function filter'))), text);
  }
});

test('constant subtrees are folded once at compile time', () => {
  const s = schemaFromRecord({ f: 'float64', x: 'string' });
  const src = kernelSource(compileFilter(checkExpression("f > 1 + 2 * 3 and x = lower('ABC')", s)))!;
  const kernel = src.split('/* ---- */').pop()!; // the pieces before it are the one-off folding functions
  assert.match(kernel.slice(kernel.indexOf('return function filter')), /> 7\)/);
  assert.ok(!kernel.includes('toLowerCase'));
  const b = makeBatch(s, { f: [7, 8], x: ['abc', 'abc'] }, mulberry32(13));
  assert.deepEqual(selected("f > 1 + 2 * 3 and x = lower('ABC')", s, b), [1]);
});

test('typecheck + compile of a parsed tree equals checkExpression', () => {
  const e1 = typecheck(parseExpression('price * 2 > 10'), schemaFromRecord({ price: 'float64' }));
  const e2 = checkExpression('price * 2 > 10', schemaFromRecord({ price: 'float64' }));
  assert.deepEqual(e1, e2);
});
