import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DuckDBInstance } from '@duckdb/node-api';
import {
  QuantileSketch,
  quantileDiscIndex,
  QUANTILE_DEFAULT_ALPHA,
  QUANTILE_EXACT_LIMIT,
} from '../../native-free-kernels/quantile-sketch.js';
import { SluiceError } from '../../engine/errors.js';

function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function normal(rnd: () => number): number {
  const u = 1 - rnd();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rnd());
}

const ALPHA = QUANTILE_DEFAULT_ALPHA;
const QS = [0, 0.001, 0.01, 0.1, 0.25, 1 / 3, 0.5, 0.75, 0.9, 0.99, 0.999, 1];

/** Asserts the documented guarantee for every q: exact for 0 / infinities / extremes, else alpha-relative. */
function assertAccurate(s: QuantileSketch, values: ArrayLike<number>, qs: readonly number[], label: string, alpha = ALPHA): void {
  const sorted = Float64Array.from(values).filter((v) => v === v).sort();
  assert.equal(s.count(), sorted.length, `${label}: count`);
  for (const q of qs) {
    const k = quantileDiscIndex(sorted.length, q);
    const v = sorted[k]!;
    const x = s.quantile(q);
    assert.ok(x !== null);
    if (s.isExact() || v === 0 || !Number.isFinite(v) || k === 0 || k === sorted.length - 1) {
      // === on purpose: the sketch answers 0 for -0 (one zero, like SQL).
      assert.ok(x === v, `${label}: q=${q} expected exactly ${v}, got ${x}`);
    } else {
      const rel = Math.abs(x - v) / Math.abs(v);
      assert.ok(rel <= alpha * (1 + 1e-9), `${label}: q=${q} exact ${v} got ${x} relative error ${rel}`);
    }
  }
}

function sketchOf(values: ArrayLike<number>, alpha = ALPHA, maxBuckets?: number): QuantileSketch {
  const s = maxBuckets === undefined ? QuantileSketch.create(alpha) : QuantileSketch.create(alpha, maxBuckets);
  for (let i = 0; i < values.length; i++) s.add(values[i]!);
  return s;
}

function expectCorrupt(bytes: Uint8Array, pattern: RegExp): void {
  assert.throws(() => QuantileSketch.deserialize(bytes), (err: unknown) => {
    assert.ok(err instanceof SluiceError);
    assert.equal(err.code, 'SLUICE_INTERNAL');
    assert.match(err.message, /corrupt quantile sketch state/);
    assert.match(err.message, pattern);
    return true;
  });
}

test('quantileDiscIndex is the rank DuckDB quantile_disc returns', async () => {
  const instance = await DuckDBInstance.create(':memory:');
  const conn = await instance.connect();
  try {
    const qs = [0, 0.01, 0.1, 0.25, 0.3, 1 / 3, 0.5, 0.7, 0.75, 0.9, 0.99, 1];
    for (let n = 1; n <= 40; n++) {
      const cols = qs.flatMap((q) => [`quantile_disc(x, ${q})`, `quantile_disc(x, ${q.toPrecision(17)}::DOUBLE)`]).join(', ');
      const rows = (await conn.runAndReadAll(`SELECT ${cols} FROM range(${n}) t(x)`)).getRows();
      const got = rows[0]!.map(Number);
      qs.forEach((q, i) => {
        assert.equal(quantileDiscIndex(n, q), got[2 * i], `n=${n} q=${q} (DECIMAL literal)`);
        assert.equal(quantileDiscIndex(n, q), got[2 * i + 1], `n=${n} q=${q} (DOUBLE)`);
      });
    }
    // It is not floor(q * (n - 1)): with two values q = 0.7 picks the larger one.
    assert.equal(quantileDiscIndex(2, 0.7), 1);
    // The sketch against DuckDB on real data: alpha-relative agreement.
    const rnd = mulberry32(5);
    const values = Array.from({ length: 2000 }, () => Math.exp(2 * normal(rnd)) * (rnd() < 0.2 ? -1 : 1));
    const s = sketchOf(values);
    const list = values.map((v) => v.toPrecision(17)).join(', ');
    const cols = QS.map((q) => `quantile_disc(x, ${q.toPrecision(17)}::DOUBLE)`).join(', ');
    const row = (await conn.runAndReadAll(`SELECT ${cols} FROM (SELECT unnest([${list}]::DOUBLE[]) AS x)`)).getRows()[0]!;
    QS.forEach((q, i) => {
      const v = Number(row[i]);
      const x = s.quantile(q)!;
      assert.ok(Math.abs(x - v) <= ALPHA * Math.abs(v) * (1 + 1e-9), `q=${q}: DuckDB ${v}, sketch ${x}`);
    });
  } finally {
    conn.closeSync();
    instance.closeSync();
  }
});

test('accuracy against exact quantiles over distributions and sizes', () => {
  const rnd = mulberry32(1);
  const qs = [...QS, ...Array.from({ length: 30 }, () => rnd())];
  const dists: Record<string, () => number> = {
    uniform: () => rnd() * 1000,
    lognormal: () => Math.exp(3 * normal(rnd)),
    mixedSign: () => normal(rnd) * 100,
    zerosAndDuplicates: () => (rnd() < 0.3 ? 0 : Math.round(normal(rnd) * 3)),
    fewDistinct: () => 1 + Math.floor(rnd() * 10),
    wideRange: () => (rnd() < 0.5 ? -1 : 1) * 10 ** (rnd() * 30 - 15),
    integers: () => Math.floor(rnd() * 1e9) - 5e8,
    nearMax: () => Number.MAX_VALUE * (0.5 + rnd() / 2),
    tinyNormals: () => 2.2250738585072014e-308 * (1 + rnd() * 1e6),
  };
  for (const [name, gen] of Object.entries(dists)) {
    for (const n of [1, 2, 3, 10, QUANTILE_EXACT_LIMIT, QUANTILE_EXACT_LIMIT + 1, 1000, 30_000]) {
      const values = Array.from({ length: n }, gen);
      const s = sketchOf(values);
      assert.equal(s.isExact(), n <= QUANTILE_EXACT_LIMIT);
      assertAccurate(s, values, qs, `${name} n=${n}`);
    }
  }
});

test('quantiles are monotone in q', () => {
  const rnd = mulberry32(2);
  const s = sketchOf(Array.from({ length: 10_000 }, () => normal(rnd) * 50));
  let prev = -Infinity;
  for (let q = 0; q <= 1; q += 0.001) {
    const x = s.quantile(q)!;
    assert.ok(x >= prev, `q=${q}: ${x} < ${prev}`);
    prev = x;
  }
});

test('infinities and zeros are counted exactly and returned exactly', () => {
  for (const finite of [5, 500]) {
    const values: number[] = [];
    for (let i = 0; i < 3; i++) values.push(-Infinity);
    for (let i = 0; i < 2; i++) values.push(Infinity);
    for (let i = 0; i < 7; i++) values.push(i % 2 === 0 ? 0 : -0);
    for (let i = 1; i <= finite; i++) values.push(i % 3 === 0 ? -i : i);
    const s = sketchOf(values);
    const grid = Array.from({ length: 1001 }, (_, i) => i / 1000);
    assertAccurate(s, values, grid, `finite=${finite}`);
    assert.equal(s.quantile(0), -Infinity);
    assert.equal(s.quantile(1), Infinity);
  }
  // -0 and 0 are the same value: same state, same bytes.
  assert.deepEqual(sketchOf([-0, 1, 2]).serialize(), sketchOf([0, 1, 2]).serialize());
  assert.ok(Object.is(sketchOf([-0]).quantile(0.5), 0));
});

test('NaN and null rows are ignored; an empty sketch answers null', () => {
  const empty = QuantileSketch.create();
  assert.equal(empty.count(), 0);
  assert.equal(empty.quantile(0.5), null);
  assert.equal(QuantileSketch.deserialize(empty.serialize()).quantile(0), null);
  const onlyNaN = sketchOf([NaN, NaN]);
  assert.equal(onlyNaN.count(), 0);
  assert.equal(onlyNaN.quantile(1), null);

  const rnd = mulberry32(3);
  for (const n of [50, 5000]) {
    const values = new Float64Array(n);
    const valid = new Uint8Array(n);
    const clean: number[] = [];
    const selList: number[] = [];
    for (let i = 0; i < n; i++) {
      const r = rnd();
      values[i] = r < 0.1 ? NaN : normal(rnd) * 10;
      valid[i] = r > 0.9 ? 0 : 1; // invalid rows carry garbage values
      if (i % 3 !== 0) selList.push(i);
    }
    for (const i of selList) if (valid[i] === 1 && values[i] === values[i]) clean.push(values[i]!);
    const viaMany = QuantileSketch.create();
    viaMany.addMany(values, valid, Int32Array.from(selList), selList.length);
    const viaAdd = sketchOf(clean);
    assert.deepEqual(viaMany.serialize(), viaAdd.serialize(), `n=${n}`);
    assertAccurate(viaMany, clean, QS, `n=${n} with NaN/null/sel`);
    // The other addMany variants.
    const allValid = QuantileSketch.create();
    allValid.addMany(values, null, null, n);
    assert.deepEqual(allValid.serialize(), sketchOf(values).serialize());
    const validOnly = QuantileSketch.create();
    validOnly.addMany(values, valid, null, n);
    assert.deepEqual(validOnly.serialize(), sketchOf(Array.from(values).filter((_, i) => valid[i] === 1)).serialize());
    const selOnly = QuantileSketch.create();
    selOnly.addMany(values, null, Int32Array.from(selList), selList.length);
    assert.deepEqual(selOnly.serialize(), sketchOf(selList.map((i) => values[i]!)).serialize());
  }
});

/** Merges sketches pairwise in a random tree; returns the root. */
function randomMergeTree(parts: QuantileSketch[], rnd: () => number): QuantileSketch {
  const list = parts.slice();
  while (list.length > 1) {
    const i = Math.floor(rnd() * list.length);
    let j = Math.floor(rnd() * (list.length - 1));
    if (j >= i) j++;
    list[i]!.merge(list[j]!);
    list.splice(j, 1);
  }
  return list[0]!;
}

test('any split of the input and any merge tree give bit-identical state', () => {
  const rnd = mulberry32(4);
  const datasets: Array<{ name: string; values: Float64Array; maxBuckets: number }> = [];
  const make = (n: number, gen: () => number): Float64Array => Float64Array.from({ length: n }, gen);
  datasets.push({ name: 'exact throughout', values: make(60, () => normal(rnd)), maxBuckets: 4096 });
  datasets.push({ name: 'exact parts, bucket whole', values: make(300, () => Math.round(normal(rnd) * 20)), maxBuckets: 4096 });
  datasets.push({
    name: 'lognormal with zeros, infinities and NaN',
    values: make(40_000, () => {
      const r = rnd();
      return r < 0.05 ? 0 : r < 0.06 ? Infinity : r < 0.07 ? -Infinity : r < 0.08 ? NaN : (r < 0.4 ? -1 : 1) * Math.exp(2 * normal(rnd));
    }),
    maxBuckets: 4096,
  });
  // Collapsing in both stores: magnitudes over 20 decades with only 64 buckets (a factor ~3.6).
  datasets.push({ name: 'collapsing', values: make(20_000, () => (rnd() < 0.5 ? -1 : 1) * 10 ** (rnd() * 20 - 10)), maxBuckets: 64 });
  for (const { name, values, maxBuckets } of datasets) {
    const total = values.length;
    const whole = QuantileSketch.create(ALPHA, maxBuckets);
    whole.addMany(values, null, null, total);
    const expected = whole.serialize();
    const answers = QS.map((q) => whole.quantile(q));
    for (const k of [2, 3, 7, 16]) {
      for (let trial = 0; trial < 3; trial++) {
        const owner = new Int32Array(total);
        for (let i = 0; i < total; i++) owner[i] = Math.floor(rnd() * k);
        const parts: QuantileSketch[] = [];
        for (let p = 0; p < k; p++) {
          const sel: number[] = [];
          for (let i = 0; i < total; i++) if (owner[i] === p) sel.push(i);
          const sketch = QuantileSketch.create(ALPHA, maxBuckets);
          let at = 0;
          while (at < sel.length) {
            const batch = 1 + Math.floor(rnd() * 3000);
            const piece = Int32Array.from(sel.slice(at, at + batch));
            // Alternate entry points: batches, single adds, and a serialize round trip.
            if (rnd() < 0.2) for (const i of piece) sketch.add(values[i]!);
            else sketch.addMany(values, null, piece, piece.length);
            at += batch;
          }
          parts.push(rnd() < 0.3 ? QuantileSketch.deserialize(sketch.serialize()) : sketch);
        }
        const root = randomMergeTree(parts, rnd);
        assert.deepEqual(root.serialize(), expected, `${name} k=${k} trial=${trial}`);
        assert.deepEqual(QS.map((q) => root.quantile(q)), answers);
      }
    }
  }
});

test('collapsing keeps the largest magnitudes accurate and stays bounded', () => {
  const maxBuckets = 64;
  const rnd = mulberry32(6);
  const values = Array.from({ length: 20_000 }, () => 10 ** (rnd() * 10 - 5));
  const s = sketchOf(values, ALPHA, maxBuckets);
  const gamma = (1 + ALPHA) / (1 - ALPHA);
  const max = Math.max(...values);
  // Buckets strictly above the fold bucket are untouched.
  const safe = max / gamma ** (maxBuckets - 2);
  const sorted = Float64Array.from(values).sort();
  let checkedSafe = 0;
  let sawCollapse = false;
  for (let i = 0; i <= 1000; i++) {
    const q = i / 1000;
    const v = sorted[quantileDiscIndex(sorted.length, q)]!;
    const x = s.quantile(q)!;
    if (v >= safe) {
      assert.ok(Math.abs(x - v) <= ALPHA * v * (1 + 1e-9), `q=${q}: ${x} vs ${v}`);
      checkedSafe++;
    } else if (q > 0) {
      // Folded ranks answer the fold bucket's representative: at or below the safe range.
      assert.ok(x <= safe * gamma, `q=${q}: folded answer ${x}`);
      if (Math.abs(x - v) > ALPHA * v) sawCollapse = true;
    }
  }
  assert.ok(checkedSafe > 50 && sawCollapse, `safe ranks ${checkedSafe}, collapse visible ${sawCollapse}`);
  assert.equal(s.quantile(0), sorted[0]); // min is kept exactly
  assert.ok(s.byteSize() <= 64 + 2 * (64 + maxBuckets * 8), `byteSize ${s.byteSize()}`);
});

test('serialize / deserialize round-trips and the result keeps working', () => {
  const rnd = mulberry32(7);
  const inputs = [
    [],
    [3.5],
    [Infinity, -Infinity, 0, NaN, 1e-300, -1e300],
    Array.from({ length: QUANTILE_EXACT_LIMIT }, () => normal(rnd)),
    Array.from({ length: 5000 }, () => Math.exp(normal(rnd) * 4) * (rnd() < 0.5 ? -1 : 1)),
    Array.from({ length: 500 }, (_, i) => (i % 7 === 0 ? Infinity : i % 5 === 0 ? 0 : i)),
  ];
  for (const values of inputs) {
    const s = sketchOf(values);
    const bytes = s.serialize();
    const back = QuantileSketch.deserialize(bytes);
    assert.deepEqual(back.serialize(), bytes);
    assert.equal(back.count(), s.count());
    assert.deepEqual(QS.map((q) => back.quantile(q)), QS.map((q) => s.quantile(q)));
    const more = Array.from({ length: 300 }, () => normal(rnd) * 1e3);
    for (const v of more) {
      back.add(v);
      s.add(v);
    }
    assert.deepEqual(back.serialize(), s.serialize());
  }
  // Canonical: insertion order does not leak into the bytes.
  assert.deepEqual(sketchOf([3, 1, 2]).serialize(), sketchOf([1, 2, 3]).serialize());
  // Bucket counts beyond 2^32 survive (varints up to 2^53).
  const big = sketchOf(Array.from({ length: 200 }, (_, i) => i + 1));
  for (let i = 0; i < 33; i++) big.merge(big);
  assert.equal(big.count(), 200 * 2 ** 33);
  const bigBack = QuantileSketch.deserialize(big.serialize());
  assert.equal(bigBack.count(), big.count());
  assert.equal(bigBack.quantile(0.5), big.quantile(0.5));
  // A subarray view with a non-zero byte offset deserializes too.
  const bytes = sketchOf([1, 2, 3]).serialize();
  const padded = new Uint8Array(bytes.length + 3);
  padded.set(bytes, 3);
  assert.deepEqual(QuantileSketch.deserialize(padded.subarray(3)).serialize(), bytes);
});

/** Writes the documented bucket layout directly, to craft invalid states. */
function craftBuckets(fields: {
  n: number; min: number; max: number; zeros: number; negInf: number; posInf: number;
  neg: number[] | null; negLo?: number; pos: number[] | null; posLo?: number; maxBuckets?: number;
}): Uint8Array {
  const out: number[] = [];
  const varint = (x: number): void => {
    while (x >= 128) {
      out.push((x % 128) | 128);
      x = Math.floor(x / 128);
    }
    out.push(x);
  };
  const f64 = (x: number): void => {
    out.push(...new Uint8Array(new Float64Array([x]).buffer));
  };
  const store = (counts: number[] | null, lo: number): void => {
    if (counts === null) return varint(0);
    varint(counts.length);
    varint(lo >= 0 ? 2 * lo : -2 * lo - 1);
    for (const c of counts) varint(c);
  };
  out.push(1, 1);
  f64(ALPHA);
  varint(fields.maxBuckets ?? 4096);
  varint(fields.n);
  f64(fields.min);
  f64(fields.max);
  varint(fields.zeros);
  varint(fields.negInf);
  varint(fields.posInf);
  store(fields.neg, fields.negLo ?? 0);
  store(fields.pos, fields.posLo ?? 0);
  return Uint8Array.from(out);
}

test('deserialize rejects malformed input', () => {
  const ok = { n: 200, min: -5, max: 9, zeros: 10, negInf: 0, posInf: 0, neg: [40, 0, 50], negLo: -3, pos: [100], posLo: 7 };
  // The crafted layout is the real one: it round-trips.
  const valid = craftBuckets(ok);
  assert.deepEqual(QuantileSketch.deserialize(valid).serialize(), valid);
  expectCorrupt(craftBuckets({ ...ok, n: 201 }), /add up to 200, header says 201/);
  expectCorrupt(craftBuckets({ ...ok, n: 100, zeros: 0, neg: null, pos: [100] }), /bucket sketch with only 100 values/);
  expectCorrupt(craftBuckets({ ...ok, min: 10 }), /min 10 > max 9/);
  expectCorrupt(craftBuckets({ ...ok, min: NaN }), /min NaN > max 9/);
  expectCorrupt(craftBuckets({ ...ok, neg: [0, 40, 50] }), /empty end bucket/);
  expectCorrupt(craftBuckets({ ...ok, neg: [40, 50, 0], zeros: 10 }), /empty end bucket/);
  expectCorrupt(craftBuckets({ ...ok, maxBuckets: 2 }), /spans 3 buckets, more than maxBuckets 2/);
  expectCorrupt(craftBuckets({ ...ok, maxBuckets: 1 }), /maxBuckets 1 out of range/);
  expectCorrupt(valid.subarray(0, valid.length - 1), /truncated/);
  expectCorrupt(Uint8Array.from([...valid, 0]), /1 trailing bytes/);
  expectCorrupt(new Uint8Array(0), /truncated at byte 0/);

  const exact = sketchOf([1, 2, 3]).serialize();
  const edit = (src: Uint8Array, f: (b: Uint8Array, view: DataView) => void): Uint8Array => {
    const b = src.slice();
    f(b, new DataView(b.buffer));
    return b;
  };
  // Layout: [0] format, [1] kind, [2..10) alpha, [10..12) maxBuckets 4096, [12] n, [13..) values.
  expectCorrupt(edit(exact, (b) => { b[0] = 9; }), /unknown format byte 9/);
  expectCorrupt(edit(exact, (b) => { b[1] = 4; }), /unknown kind byte 4/);
  expectCorrupt(edit(exact, (_, v) => v.setFloat64(2, 0, true)), /alpha 0 out of range/);
  expectCorrupt(edit(exact, (_, v) => v.setFloat64(2, NaN, true)), /alpha NaN out of range/);
  expectCorrupt(edit(exact, (b) => { b[12] = 0x80 | 100; b[13] = 1; }), /exact sketch with 228 values exceeds 128/);
  expectCorrupt(edit(exact, (_, v) => v.setFloat64(13 + 8, 0.5, true)), /not ascending, NaN or -0 at value 1/);
  expectCorrupt(edit(exact, (_, v) => v.setFloat64(13, NaN, true)), /at value 0/);
  expectCorrupt(edit(exact, (_, v) => v.setFloat64(13, -0, true)), /at value 0/);
  const longVarint = Uint8Array.from([...exact.subarray(0, 12), 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]);
  expectCorrupt(longVarint, /varint too long/);
});

test('argument errors', () => {
  const s = sketchOf([1, 2, 3]);
  for (const q of [-0.01, 1.01, NaN]) assert.throws(() => s.quantile(q), /quantile must be in \[0, 1\]/);
  for (const a of [0, 1, -0.1, NaN]) assert.throws(() => QuantileSketch.create(a), /alpha must be in \(0, 1\)/);
  for (const b of [1, 2.5, 2 ** 21]) assert.throws(() => QuantileSketch.create(ALPHA, b), /maxBuckets must be an integer/);
  assert.throws(() => s.merge(QuantileSketch.create(0.02)), /cannot merge quantile sketches/);
  assert.throws(() => s.merge(QuantileSketch.create(ALPHA, 128)), /cannot merge quantile sketches/);
});

test('merging a sketch into itself doubles every count', () => {
  for (const n of [10, 1000]) {
    const values = Array.from({ length: n }, (_, i) => i - n / 3);
    const a = sketchOf(values);
    a.merge(a);
    assert.deepEqual(a.serialize(), sketchOf([...values, ...values]).serialize());
  }
});

test('a sketch of a few values is small', () => {
  assert.ok(QuantileSketch.create().byteSize() <= 64);
  const one = sketchOf([42]);
  assert.ok(one.byteSize() <= 128, `1 value: ${one.byteSize()} B`);
  const rnd = mulberry32(8);
  const hundred = sketchOf(Array.from({ length: 100 }, () => rnd() * 1000));
  assert.ok(hundred.byteSize() <= 64 + 8 * 128, `100 values: ${hundred.byteSize()} B`);
  // 10 K distinct values over three decades: ~350 buckets of 8 bytes, the array at most twice
  // that after doubling growth, far below the 4096-bucket bound (32 KiB).
  const tenK = sketchOf(Array.from({ length: 10_000 }, () => 1 + rnd() * 999));
  const span = Math.ceil(Math.log(1000) / Math.log((1 + ALPHA) / (1 - ALPHA))) + 1;
  assert.ok(tenK.byteSize() <= 3 * 64 + 2 * 8 * span, `10K values: ${tenK.byteSize()} B, span ${span}`);
  assert.ok(tenK.serialize().length <= 1024, `10K values serialized: ${tenK.serialize().length} B`);
});
