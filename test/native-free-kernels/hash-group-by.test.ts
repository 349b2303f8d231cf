import { test } from 'node:test';
import assert from 'node:assert/strict';
import { GroupTable, keyInputOf, keyKindOf, type KeyInput, type KeyKind, type KeySpec } from '../../native-free-kernels/hash-group-by.js';
import type { Column } from '../../engine/schema.js';
import { mulberry32, type Rng } from '../helpers/random.js';

/**
 * Reference: a Map from a canonical string of the key to a dense id in first-seen order —
 * exactly the ids GroupTable hands out, so ids are compared position by position.
 */

/** One key component as test data: the array the table reads plus what it means. */
interface Comp {
  readonly kind: KeyKind;
  readonly perPosition: boolean;
  readonly values: Int32Array | Float64Array | Uint8Array;
  readonly valid: Uint8Array | null;
  /** str only */
  readonly dict?: readonly string[];
}

const TWO_32 = 4294967296;

/** Canonical text of component c at array index x (null / -0 / NaN folded as SQL groups them). */
function canon(c: Comp, x: number): string {
  if (c.valid !== null && c.valid[x] === 0) return 'null';
  switch (c.kind) {
    case 'i32':
    case 'u8':
      return `n${c.values[x]!}`;
    case 'str':
      return `s${JSON.stringify(c.dict![c.values[x]!]!)}`;
    case 'i64': {
      const w = c.values as Int32Array;
      return `l${(BigInt(w[2 * x + 1]!) << 32n) | BigInt(w[2 * x]! >>> 0)}`;
    }
    case 'f64': {
      const v = c.values[x]!;
      return v === 0 ? 'f0' : Number.isNaN(v) ? 'fNaN' : `f${String(v)}`;
    }
  }
}

function refIds(comps: readonly Comp[], sel: Int32Array | null, n: number, ids: Map<string, number>): Int32Array {
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const r = sel === null ? i : sel[i]!;
    const k = comps.map((c) => canon(c, c.perPosition ? i : r)).join('|');
    let id = ids.get(k);
    if (id === undefined) {
      id = ids.size;
      ids.set(k, id);
    }
    out[i] = id;
  }
  return out;
}

function specsOf(comps: readonly Comp[]): KeySpec[] {
  return comps.map((c) => ({ kind: c.kind, perPosition: c.perPosition }));
}

/** KeyInputs for the table; each str component gets its own map array. */
function inputsOf(table: GroupTable, comps: readonly Comp[]): KeyInput[] {
  return comps.map((c) => ({
    values: c.values,
    valid: c.valid,
    map: c.kind === 'str' ? table.mapDictionary(c.dict!, new Int32Array(c.dict!.length)) : null,
  }));
}

function insertAll(table: GroupTable, comps: readonly Comp[], sel: Int32Array | null, n: number): Int32Array {
  const out = new Int32Array(n);
  table.insert(inputsOf(table, comps), sel, n, out);
  return out;
}

function validity(rng: Rng, n: number, rate: number): Uint8Array | null {
  if (rate === 0) return null;
  const v = new Uint8Array(n);
  for (let i = 0; i < n; i++) v[i] = rng() < rate ? 0 : 1;
  return v;
}

/** Random component of `kind` with `distinct` rough cardinality; null values hold garbage. */
function randomComp(rng: Rng, kind: KeyKind, n: number, distinct: number, nullRate: number, perPosition = false): Comp {
  const valid = validity(rng, n, nullRate);
  const pick = (): number => Math.floor(rng() * distinct);
  switch (kind) {
    case 'i32': {
      const values = new Int32Array(n);
      for (let i = 0; i < n; i++) values[i] = rng() < 0.05 ? [-0x80000000, 0x7fffffff, 0, -1][pick() & 3]! : pick() - (distinct >> 1);
      return { kind, perPosition, values, valid };
    }
    case 'u8': {
      const values = new Uint8Array(n);
      for (let i = 0; i < n; i++) values[i] = pick() & 1;
      return { kind, perPosition, values, valid };
    }
    case 'str': {
      const dict: string[] = [];
      for (let d = 0; d < distinct; d++) dict.push(d === 0 ? '' : d === 1 ? 'é😀' : `s${d}`);
      const values = new Int32Array(n);
      for (let i = 0; i < n; i++) values[i] = pick();
      return { kind, perPosition, values, valid, dict };
    }
    case 'i64': {
      // a pool of distinct int64s: small negatives, around ±2^53, and anywhere in int64
      const pool: [number, number][] = [];
      for (let d = 0; d < distinct; d++) {
        const r = d % 3;
        if (r === 0) pool.push([-d | 0, -1]);
        else if (r === 1) pool.push([d | 0, 0x200000 * (d & 1 ? 1 : -1)]);
        else pool.push([(rng() * TWO_32) | 0, (rng() * TWO_32) | 0]);
      }
      pool.push([0, -0x80000000], [-1, 0x7fffffff]);
      const values = new Int32Array(2 * n);
      for (let i = 0; i < n; i++) {
        const [lo, hi] = pool[Math.floor(rng() * pool.length)]!;
        values[2 * i] = lo;
        values[2 * i + 1] = hi;
      }
      return { kind, perPosition, values, valid };
    }
    case 'f64': {
      const special = [0, -0, NaN, Infinity, -Infinity, 5e-324, -Number.MAX_VALUE, 0.1, 2 ** 53 + 2];
      const values = new Float64Array(n);
      for (let i = 0; i < n; i++) values[i] = rng() < 0.2 ? special[Math.floor(rng() * special.length)]! : (pick() - distinct / 2) / 4;
      return { kind, perPosition, values, valid };
    }
  }
}

/** Compare every key column with the component's value of the first position that made each group. */
function checkKeyColumns(table: GroupTable, comps: readonly Comp[], sel: Int32Array | null, n: number, ids: Int32Array): void {
  const firstPos = new Int32Array(table.size).fill(-1);
  for (let i = 0; i < n; i++) if (firstPos[ids[i]!] === -1) firstPos[ids[i]!] = i;
  comps.forEach((c, j) => {
    const type: Column['type'] = c.kind === 'i32' ? 'int32' : c.kind === 'u8' ? 'bool' : c.kind === 'str' ? 'string' : c.kind === 'i64' ? 'int64' : 'float64';
    const col = table.keyColumn(j, type);
    assert.equal(col.type, type);
    let anyNull = false;
    for (let g = 0; g < table.size; g++) {
      const i = firstPos[g]!;
      const x = c.perPosition ? i : sel === null ? i : sel[i]!;
      const isNull = c.valid !== null && c.valid[x] === 0;
      anyNull ||= isNull;
      assert.equal(table.isNull(g, j), isNull, `isNull(${g}, ${j})`);
      if (col.valid !== null) assert.equal(col.valid[g], isNull ? 0 : 1, `valid[${g}] of component ${j}`);
      if (isNull) continue;
      switch (col.type) {
        case 'int32':
        case 'bool':
          assert.equal(col.values[g], c.values[x]);
          break;
        case 'string':
          assert.equal(col.dict[col.codes[g]!], c.dict![c.values[x]!]);
          break;
        case 'int64':
          assert.equal(col.words[2 * g], c.values[2 * x]);
          assert.equal(col.words[2 * g + 1], c.values[2 * x + 1]);
          break;
        case 'float64': {
          const v = c.values[x]!;
          // -0 comes back as 0 (one group), NaN as a NaN
          assert.ok(Object.is(col.values[g], v === 0 ? 0 : v), `float key ${g}: ${col.values[g]} vs ${v}`);
          break;
        }
        default:
          assert.fail('unexpected key column type');
      }
    }
    assert.equal(col.valid === null, !anyNull, `component ${j}: valid array present iff some group is null`);
  });
}

function checkAgainstReference(rng: Rng, comps: readonly Comp[], n: number, useSel: boolean, initialCapacity = 1024): void {
  let sel: Int32Array | null = null;
  let m = n;
  if (useSel) {
    const picked: number[] = [];
    for (let r = 0; r < n; r++) if (rng() < 0.6) picked.push(r);
    sel = Int32Array.from(picked);
    m = picked.length;
  }
  const table = new GroupTable(specsOf(comps), initialCapacity);
  const ids = insertAll(table, comps, sel, m);
  const ref = new Map<string, number>();
  const expected = refIds(comps, sel, m, ref);
  assert.deepEqual(ids, expected);
  assert.equal(table.size, ref.size);
  checkKeyColumns(table, comps, sel, m, ids);
}

test('every key kind alone, with and without nulls and selection, matches a Map reference', () => {
  const rng = mulberry32(1);
  for (const kind of ['i32', 'u8', 'str', 'i64', 'f64'] as const) {
    for (const nullRate of [0, 0.15]) {
      for (const useSel of [false, true]) {
        checkAgainstReference(rng, [randomComp(rng, kind, 5000, 300, nullRate)], 5000, useSel);
      }
    }
  }
});

test('several components at once, nulls in some, selection vector', () => {
  const rng = mulberry32(2);
  for (let round = 0; round < 6; round++) {
    const n = 4000;
    const comps = [
      randomComp(rng, 'i32', n, 7, round % 2 === 0 ? 0.1 : 0),
      randomComp(rng, 'str', n, 5, 0.1),
      randomComp(rng, 'i64', n, 6, 0),
      randomComp(rng, 'f64', n, 4, 0.2),
      randomComp(rng, 'u8', n, 2, 0.3),
    ];
    checkAgainstReference(rng, comps, n, round >= 3, 16);
  }
});

test('perPosition components are read by position, the others by selected row', () => {
  const rng = mulberry32(3);
  const n = 3000;
  // window numbers per position (perPosition), keys per row
  const comps = [randomComp(rng, 'i32', n, 9, 0, true), randomComp(rng, 'i64', n, 11, 0.1), randomComp(rng, 'f64', n, 5, 0, true), randomComp(rng, 'str', n, 8, 0.05)];
  checkAgainstReference(rng, comps, n, true);
  checkAgainstReference(rng, comps, n, false);
  // explicit: position 1 selects row 5; the perPosition value at index 1 must be used, not at 5
  const t = new GroupTable([{ kind: 'i32', perPosition: true }, { kind: 'i32', perPosition: false }]);
  const pos = Int32Array.from([10, 20, 30, 40, 50, 60]);
  const row = Int32Array.from([0, 1, 2, 3, 4, 5]);
  const out = new Int32Array(2);
  t.insert([{ values: pos, valid: null, map: null }, { values: row, valid: null, map: null }], Int32Array.from([5, 0]), 2, out);
  const c0 = t.keyColumn(0, 'int32');
  assert.ok(c0.type === 'int32');
  assert.deepEqual([...c0.values], [10, 20]);
  const c1 = t.keyColumn(1, 'int32');
  assert.ok(c1.type === 'int32');
  assert.deepEqual([...c1.values], [5, 0]);
});

test('f64 keys: -0 and 0 are one group, every NaN bit pattern is one group, ±Infinity are their own', () => {
  const raw = new Float64Array(8);
  const w = new Int32Array(raw.buffer);
  raw[0] = 0;
  raw[1] = -0;
  raw[2] = NaN;
  w[6] = 1; w[7] = 0x7ff80000; // quiet NaN with a payload
  w[8] = 0; w[9] = -0x80000 | 0; // negative quiet NaN 0xfff80000_00000000
  w[10] = 1; w[11] = 0x7ff00000; // signalling NaN
  raw[6] = Infinity;
  raw[7] = -Infinity;
  assert.ok(Number.isNaN(raw[3]!) && Number.isNaN(raw[4]!) && Number.isNaN(raw[5]!));
  const t = new GroupTable([{ kind: 'f64', perPosition: false }]);
  const out = new Int32Array(8);
  t.insert([{ values: raw, valid: null, map: null }], null, 8, out);
  assert.deepEqual([...out], [0, 0, 1, 1, 1, 1, 2, 3]);
  const col = t.keyColumn(0, 'float64');
  assert.ok(col.type === 'float64');
  assert.ok(Object.is(col.values[0], 0));
  assert.ok(Number.isNaN(col.values[1]));
  assert.deepEqual([...col.values.subarray(2)], [Infinity, -Infinity]);
  // timestamps read through the same kind
  const ts = t.keyColumn(0, 'timestamp');
  assert.equal(ts.type, 'timestamp');
});

test('null keys form their own group per component, distinct from 0 and from the empty string', () => {
  // i32: values under nulls are garbage (0 and 7) and must not matter
  const t = new GroupTable([{ kind: 'i32', perPosition: false }]);
  const out = new Int32Array(5);
  t.insert([{ values: Int32Array.from([0, 0, 7, 0, 7]), valid: Uint8Array.from([1, 0, 0, 1, 1]), map: null }], null, 5, out);
  assert.deepEqual([...out], [0, 1, 1, 0, 2]);
  const c = t.keyColumn(0, 'int32');
  assert.deepEqual(c.valid === null ? null : [...c.valid], [1, 0, 1]);

  // str: '' vs null
  const s = new GroupTable([{ kind: 'str', perPosition: false }]);
  const dict = ['', 'x'];
  const sOut = new Int32Array(4);
  s.insert([{ values: Int32Array.from([0, 0, 1, 1]), valid: Uint8Array.from([1, 0, 1, 0]), map: s.mapDictionary(dict) }], null, 4, sOut);
  assert.deepEqual([...sOut], [0, 1, 2, 1]);
  const sc = s.keyColumn(0, 'string');
  assert.ok(sc.type === 'string');
  assert.equal(sc.dict[sc.codes[0]!], '');
  assert.deepEqual(sc.valid === null ? null : [...sc.valid], [1, 0, 1]);

  // i64: 0 vs null; f64: 0 vs null; u8: false vs null
  for (const kind of ['i64', 'f64', 'u8'] as const) {
    const tk = new GroupTable([{ kind, perPosition: false }]);
    const values = kind === 'i64' ? new Int32Array(6) : kind === 'f64' ? new Float64Array(3) : new Uint8Array(3);
    const o = new Int32Array(3);
    tk.insert([{ values, valid: Uint8Array.from([1, 0, 1]), map: null }], null, 3, o);
    assert.deepEqual([...o], [0, 1, 0], kind);
  }

  // two nullable components: (null, 0), (0, null), (null, null), (0, 0) are four groups
  const two = new GroupTable([{ kind: 'i32', perPosition: false }, { kind: 'i32', perPosition: false }]);
  const o2 = new Int32Array(5);
  two.insert(
    [
      { values: new Int32Array(5), valid: Uint8Array.from([0, 1, 0, 1, 0]), map: null },
      { values: new Int32Array(5), valid: Uint8Array.from([1, 0, 0, 1, 1]), map: null },
    ],
    null,
    5,
    o2,
  );
  assert.deepEqual([...o2], [0, 1, 2, 3, 0]);
  assert.ok(two.isNull(0, 0) && !two.isNull(0, 1));
  assert.ok(!two.isNull(1, 0) && two.isNull(1, 1));
  assert.ok(two.isNull(2, 0) && two.isNull(2, 1));
});

test('a key inserted without a validity array and with an all-ones validity array is one group', () => {
  // the two inserts use different generated loops; they must hash and store identically
  const t = new GroupTable([{ kind: 'i64', perPosition: false }, { kind: 'str', perPosition: false }]);
  const words = Int32Array.from([5, -1, 6, 0x200000]);
  const dict = ['a', 'b'];
  const codes = Int32Array.from([0, 1]);
  const a = new Int32Array(2);
  const b = new Int32Array(2);
  t.insert([{ values: words, valid: null, map: null }, { values: codes, valid: null, map: t.mapDictionary(dict, new Int32Array(2)) }], null, 2, a);
  t.insert(
    [{ values: words, valid: Uint8Array.from([1, 1]), map: null }, { values: codes, valid: Uint8Array.from([1, 1]), map: t.mapDictionary(dict, new Int32Array(2)) }],
    null,
    2,
    b,
  );
  assert.deepEqual([...a], [0, 1]);
  assert.deepEqual([...b], [0, 1]);
  assert.equal(t.size, 2);
});

test('i64 keys beyond 2^53 that are equal as doubles stay distinct', () => {
  // 2^53 and 2^53 + 1 round to the same double; -2^63 and -2^63 + 1 likewise
  const words = Int32Array.from([0, 0x200000, 1, 0x200000, 0, -0x80000000, 1, -0x80000000, 0, 0x200000]);
  const t = new GroupTable([{ kind: 'i64', perPosition: false }]);
  const out = new Int32Array(5);
  t.insert([{ values: words, valid: null, map: null }], null, 5, out);
  assert.deepEqual([...out], [0, 1, 2, 3, 0]);
  const col = t.keyColumn(0, 'int64');
  assert.ok(col.type === 'int64');
  assert.deepEqual([...col.words], [...words.subarray(0, 8)]);
});

test('growth from the smallest capacity through many rehashes keeps every id (250 K distinct keys)', () => {
  const N = 250_000;
  const t = new GroupTable([{ kind: 'i64', perPosition: false }, { kind: 'i32', perPosition: false }], 1);
  const words = new Int32Array(2 * N);
  const small = new Int32Array(N);
  for (let i = 0; i < N; i++) {
    // structured keys (sequential low words, few high words) are the classic bad case for weak hashes
    words[2 * i] = i * 4;
    words[2 * i + 1] = (i & 3) - 2;
    small[i] = i & 1;
  }
  const inputs: KeyInput[] = [{ values: words, valid: null, map: null }, { values: small, valid: null, map: null }];
  const first = new Int32Array(N);
  // in chunks, so growth happens both between and inside insert calls
  const chunk = 7919;
  for (let from = 0; from < N; from += chunk) {
    const sel = new Int32Array(Math.min(chunk, N - from));
    for (let i = 0; i < sel.length; i++) sel[i] = from + i;
    const out = new Int32Array(sel.length);
    t.insert(inputs, sel, sel.length, out);
    first.set(out, from);
  }
  assert.equal(t.size, N);
  for (let i = 0; i < N; i++) if (first[i] !== i) assert.fail(`key ${i} got id ${first[i]}`);
  assert.ok(t.capacity >= N);
  // every key is found again, in a different order, with no new group
  const sel = new Int32Array(N);
  for (let i = 0; i < N; i++) sel[i] = N - 1 - i;
  const again = new Int32Array(N);
  t.insert(inputs, sel, N, again);
  assert.equal(t.size, N);
  for (let i = 0; i < N; i++) if (again[i] !== N - 1 - i) assert.fail(`key ${N - 1 - i} found as ${again[i]}`);
  const col = t.keyColumn(0, 'int64');
  assert.ok(col.type === 'int64');
  assert.deepEqual(col.words, words);
});

test('clear() forgets every group and string and the table is reusable', () => {
  const rng = mulberry32(4);
  const t = new GroupTable([{ kind: 'str', perPosition: false }, { kind: 'i32', perPosition: false }], 16);
  const comps1 = [randomComp(rng, 'str', 2000, 50, 0.1), randomComp(rng, 'i32', 2000, 20, 0)];
  insertAll(t, comps1, null, 2000);
  assert.ok(t.size > 16);
  t.clear();
  assert.equal(t.size, 0);
  assert.equal(t.strings.length, 0);
  // after clear, ids restart at 0 in first-seen order, and keys of the old content are new groups
  const comps2 = [randomComp(rng, 'str', 1500, 30, 0.1), randomComp(rng, 'i32', 1500, 10, 0.2)];
  const ids = insertAll(t, comps2, null, 1500);
  assert.deepEqual(ids, refIds(comps2, null, 1500, new Map()));
  checkKeyColumns(t, comps2, null, 1500, ids);
  // clear on an empty table is harmless
  const e = new GroupTable([{ kind: 'i32', perPosition: false }]);
  e.clear();
  assert.equal(e.size, 0);
});

test('batches with different dictionaries map the same strings to the same group', () => {
  const rng = mulberry32(5);
  const words = ['', 'web', 'mobile', 'café', '日本語', 'emoji 🎉', 'a\u0000b', 'x'.repeat(100)];
  const t = new GroupTable([{ kind: 'str', perPosition: false }, { kind: 'str', perPosition: false }]);
  const ref = new Map<string, number>();
  for (let b = 0; b < 20; b++) {
    // each batch has its own dictionary: a shuffled subset, sometimes with duplicates
    const dict = words.filter(() => rng() < 0.7);
    if (dict.length === 0) dict.push('web');
    for (let i = dict.length - 1; i > 0; i--) {
      const j = Math.floor(rng() * (i + 1));
      [dict[i], dict[j]] = [dict[j]!, dict[i]!];
    }
    if (rng() < 0.3) dict.push(dict[0]!); // the same string twice in one dictionary
    const n = 500;
    const a = new Int32Array(n);
    const c = new Int32Array(n);
    for (let i = 0; i < n; i++) {
      a[i] = Math.floor(rng() * dict.length);
      c[i] = Math.floor(rng() * dict.length);
    }
    const valid = validity(rng, n, 0.1);
    const comps: Comp[] = [
      { kind: 'str', perPosition: false, values: a, valid: null, dict },
      { kind: 'str', perPosition: false, values: c, valid, dict },
    ];
    // keyInputOf with separate `into` arrays, as the aggregator does for several string keys
    const inputs = [
      keyInputOf(t, { type: 'string', codes: a, dict, valid: null }, new Int32Array(dict.length)),
      keyInputOf(t, { type: 'string', codes: c, dict, valid }, new Int32Array(dict.length)),
    ];
    const out = new Int32Array(n);
    t.insert(inputs, null, n, out);
    assert.deepEqual(out, refIds(comps, null, n, ref), `batch ${b}`);
  }
  assert.equal(t.size, ref.size);
  assert.ok(t.strings.length <= words.length);
});

test('mapDictionary without `into` returns scratch that follows the latest dictionary', () => {
  const t = new GroupTable([{ kind: 'str', perPosition: false }]);
  const m1 = t.mapDictionary(['a', 'b']);
  assert.deepEqual([...m1.subarray(0, 2)], [0, 1]);
  const big = Array.from({ length: 200 }, (_, i) => `k${i}`);
  const m2 = t.mapDictionary(big);
  assert.ok(m2.length >= 200);
  assert.equal(m2[199], 201);
  // a too short `into` falls back to scratch rather than writing out of bounds
  const short = new Int32Array(1);
  const m3 = t.mapDictionary(['b', 'a', 'c'], short);
  assert.deepEqual([...m3.subarray(0, 3)], [1, 0, 202]);
  assert.equal(short[0], 0);
  assert.equal(t.intern('a'), 0);
});

test('keyKindOf and keyInputOf cover every column type', () => {
  assert.equal(keyKindOf('int32'), 'i32');
  assert.equal(keyKindOf('bool'), 'u8');
  assert.equal(keyKindOf('string'), 'str');
  assert.equal(keyKindOf('int64'), 'i64');
  assert.equal(keyKindOf('float64'), 'f64');
  assert.equal(keyKindOf('timestamp'), 'f64');
  const cols: Column[] = [
    { type: 'int32', values: Int32Array.from([1, 2, 1]), valid: null },
    { type: 'bool', values: Uint8Array.from([1, 0, 1]), valid: null },
    { type: 'string', codes: Int32Array.from([0, 1, 0]), dict: ['p', 'q'], valid: null },
    { type: 'int64', words: Int32Array.from([1, 2, 3, 4, 1, 2]), valid: null },
    { type: 'timestamp', values: Float64Array.from([1.5, -2, 1.5]), valid: Uint8Array.from([1, 1, 1]) },
  ];
  const t = new GroupTable(cols.map((c) => ({ kind: keyKindOf(c.type), perPosition: false })));
  const maps = cols.map(() => new Int32Array(2));
  const out = new Int32Array(3);
  t.insert(cols.map((c, j) => keyInputOf(t, c, maps[j])), null, 3, out);
  assert.deepEqual([...out], [0, 1, 0]);
  const ts = t.keyColumn(4, 'timestamp');
  assert.ok(ts.type === 'timestamp');
  assert.deepEqual([...ts.values], [1.5, -2]);
  assert.equal(ts.valid, null);
});

test('more than 30 components is refused; 30 components work with nulls in the last one', () => {
  assert.throws(() => new GroupTable(Array.from({ length: 31 }, () => ({ kind: 'u8' as const, perPosition: false }))), /at most 30/);
  const specs = Array.from({ length: 30 }, () => ({ kind: 'u8' as const, perPosition: false }));
  const t = new GroupTable(specs);
  const inputs: KeyInput[] = specs.map((_, j) => ({ values: Uint8Array.from([1, 1, 1]), valid: j === 29 ? Uint8Array.from([1, 0, 0]) : null, map: null }));
  const out = new Int32Array(3);
  t.insert(inputs, null, 3, out);
  assert.deepEqual([...out], [0, 1, 1]);
  assert.ok(t.isNull(1, 29));
  assert.ok(!t.isNull(0, 29));
  assert.equal(t.width, 31);
});

test('appendNew: appended keys are found by later inserts with their ids, across slot growth', () => {
  for (const kind of ['i32', 'i64'] as const) {
    const table = new GroupTable([{ kind, perPosition: false }], 16);
    const input = (keys: readonly number[]): KeyInput => {
      if (kind === 'i32') return { values: Int32Array.from(keys), valid: null, map: null };
      const w = new Int32Array(2 * keys.length);
      keys.forEach((k, i) => { w[2 * i] = k; w[2 * i + 1] = k < 0 ? -1 : 0; });
      return { values: w, valid: null, map: null };
    };
    // 5,000 keys appended in three calls (past the initial slots and capacity), none looked up
    const all = Array.from({ length: 5_000 }, (_, i) => 3 * i - 7_000);
    let at = 0;
    for (const n of [10, 990, 4_000]) {
      const keys = all.slice(at, at + n);
      const out = new Int32Array(n);
      table.appendNew([input(keys)], null, n, out);
      assert.deepEqual(Array.from(out), keys.map((_, i) => at + i));
      at += n;
    }
    assert.equal(table.size, 5_000);
    // an insert mixing appended keys and new ones: old ids found, new ones numbered after
    const probe = [all[4_999]!, 1, all[0]!, 3, all[2_500]!, 1]; // 1 and 3 are not among them (all ≡ 2 mod 3)
    const out = new Int32Array(probe.length);
    table.insert([input(probe)], null, probe.length, out);
    assert.deepEqual(Array.from(out), [4_999, 5_000, 0, 5_001, 2_500, 5_000], kind);
    assert.deepEqual(table.keyColumn(0, kind === 'i32' ? 'int32' : 'int64', Int32Array.from([0, 5_000])),
      kind === 'i32'
        ? { type: 'int32', values: Int32Array.from([all[0]!, 1]), valid: null }
        : { type: 'int64', words: Int32Array.from([all[0]!, -1, 1, 0]), valid: null });
    assert.throws(() => table.appendNew([{ ...input([9]), valid: Uint8Array.of(1) }], null, 1, new Int32Array(1)), /without nulls/);
  }
});

test('reserve: room for more groups keeps the ones held, their ids and keys', () => {
  const table = new GroupTable([{ kind: 'i32', perPosition: false }], 16);
  const keys = Int32Array.from({ length: 40 }, (_, i) => 1000 - 7 * i);
  const out = new Int32Array(40);
  table.insert([{ values: keys, valid: null, map: null }], null, 40, out);
  table.reserve(10);
  assert.ok(table.capacity >= 40);
  table.reserve(5_000);
  assert.equal(table.capacity, 5_000);
  const again = new Int32Array(40);
  table.insert([{ values: keys.slice().reverse(), valid: null, map: null }], null, 40, again);
  assert.deepEqual(Array.from(again), Array.from(out).reverse());
  assert.deepEqual(table.keyColumn(0, 'int32'), { type: 'int32', values: keys, valid: null });
});
