import { test } from 'node:test';
import assert from 'node:assert/strict';
import { HyperLogLog, hllSparseLimit, HLL_DEFAULT_PRECISION, HLL_SEED_H1, HLL_SEED_H2 } from '../../native-free-kernels/hyperloglog.js';
import { hashInt64 } from '../../native-free-kernels/hash.js';
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

const SEED_A = HLL_SEED_H1;
const SEED_B = HLL_SEED_H2;
const M = 1 << HLL_DEFAULT_PRECISION;
const SIGMA = 1.04 / Math.sqrt(M);
const LIMIT = hllSparseLimit(HLL_DEFAULT_PRECISION);

/** Two independent hashes of the int64 value (id, family): distinct ids give distinct values. */
function fillHashes(h1: Int32Array, h2: Int32Array, firstId: number, count: number, family: number): void {
  for (let i = 0; i < count; i++) {
    h1[i] = hashInt64(firstId + i, family, SEED_A);
    h2[i] = hashInt64(firstId + i, family, SEED_B);
  }
}

/** Adds values with ids [0, n) of a family in chunks through addMany. */
function addRange(s: HyperLogLog, n: number, family: number): void {
  const chunk = 65536;
  const h1 = new Int32Array(chunk);
  const h2 = new Int32Array(chunk);
  for (let start = 0; start < n; start += chunk) {
    const c = Math.min(chunk, n - start);
    fillHashes(h1, h2, start, c, family);
    s.addMany(h1, h2, null, c);
  }
}

function sketchOf(ids: readonly number[] | Int32Array, family: number): HyperLogLog {
  const s = HyperLogLog.create();
  for (let i = 0; i < ids.length; i++) s.add(hashInt64(ids[i]!, family, SEED_A), hashInt64(ids[i]!, family, SEED_B));
  return s;
}

function expectCorrupt(bytes: Uint8Array, pattern: RegExp): void {
  assert.throws(() => HyperLogLog.deserialize(bytes), (err: unknown) => {
    assert.ok(err instanceof SluiceError);
    assert.equal(err.code, 'SLUICE_INTERNAL');
    assert.match(err.message, /corrupt HyperLogLog state/);
    assert.match(err.message, pattern);
    return true;
  });
}

test('estimates are within 3 sigma over cardinalities 0 .. 5M', () => {
  for (const n of [0, 1, 10, 100, 1_000, 10_000, 30_000, 50_000, 100_000, 1_000_000, 5_000_000]) {
    const s = HyperLogLog.create();
    addRange(s, n, n);
    const est = s.estimate();
    if (n <= LIMIT) {
      assert.equal(est, n, `n=${n} should be counted exactly while sparse`);
      assert.ok(s.isSparse());
    } else {
      assert.ok(!s.isSparse());
      const rel = Math.abs(est - n) / n;
      assert.ok(rel <= 3 * SIGMA, `n=${n} estimate ${est} relative error ${rel} > ${3 * SIGMA}`);
    }
  }
});

test('the estimator is unbiased with the expected spread (30 trials at 50K)', () => {
  const trials = 30;
  const n = 50_000;
  const errs: number[] = [];
  for (let t = 0; t < trials; t++) {
    const s = HyperLogLog.create();
    addRange(s, n, 1000 + t);
    errs.push((s.estimate() - n) / n);
  }
  const mean = errs.reduce((a, b) => a + b, 0) / trials;
  const sd = Math.sqrt(errs.reduce((a, b) => a + (b - mean) ** 2, 0) / (trials - 1));
  assert.ok(Math.abs(mean) <= 3 * SIGMA / Math.sqrt(trials), `mean relative error ${mean}`);
  // Ertl's estimator reaches ~1.04/sqrt(m) only asymptotically; at n ~ 3m it is no worse.
  assert.ok(sd <= 1.5 * SIGMA && sd >= 0.3 * SIGMA, `spread ${sd} vs sigma ${SIGMA}`);
});

test('duplicates do not change the state', () => {
  const n = 100_000;
  const ids = new Int32Array(n * 10);
  for (let i = 0; i < ids.length; i++) ids[i] = i % n;
  const rnd = mulberry32(7);
  for (let i = ids.length - 1; i > 0; i--) {
    const j = Math.floor(rnd() * (i + 1));
    const t = ids[i]!;
    ids[i] = ids[j]!;
    ids[j] = t;
  }
  const withDups = sketchOf(ids, 3);
  const once = HyperLogLog.create();
  addRange(once, n, 3);
  assert.deepEqual(withDups.serialize(), once.serialize());
  assert.ok(Math.abs(withDups.estimate() - n) / n <= 3 * SIGMA);

  const small = sketchOf([5, 5, 5, 6, 6, 7], 4);
  assert.equal(small.estimate(), 3);
});

test('small cardinalities are exact up to the sparse limit, then the sketch turns dense', () => {
  assert.equal(LIMIT, 1536);
  const s = HyperLogLog.create();
  assert.equal(s.estimate(), 0);
  for (let i = 0; i < LIMIT; i++) {
    s.add(hashInt64(i, 9, SEED_A), hashInt64(i, 9, SEED_B));
    s.add(hashInt64(i, 9, SEED_A), hashInt64(i, 9, SEED_B)); // duplicate
    assert.equal(s.estimate(), i + 1);
  }
  assert.ok(s.isSparse());
  const sparseBytes = s.serialize();
  assert.equal(sparseBytes.length, 7 + 8 * LIMIT);
  s.add(hashInt64(LIMIT, 9, SEED_A), hashInt64(LIMIT, 9, SEED_B));
  assert.ok(!s.isSparse());
  assert.equal(s.serialize().length, 3 + M);
  const est = s.estimate();
  assert.ok(Math.abs(est - (LIMIT + 1)) / (LIMIT + 1) <= 3 * SIGMA, `estimate ${est} just after densifying`);
  // The dense registers are those of the whole set, whatever order it arrived in.
  const reversed = HyperLogLog.create();
  for (let i = LIMIT; i >= 0; i--) reversed.add(hashInt64(i, 9, SEED_A), hashInt64(i, 9, SEED_B));
  assert.deepEqual(reversed.serialize(), s.serialize());
});

test('two sparse sketches merge to dense exactly when their union exceeds the limit', () => {
  const ids = (from: number, to: number): number[] => Array.from({ length: to - from }, (_, i) => from + i);
  // Overlapping halves whose union is exactly the limit: stays sparse and exact.
  const a = sketchOf(ids(0, 1000), 11);
  const b = sketchOf(ids(536, LIMIT), 11);
  a.merge(b);
  assert.ok(a.isSparse());
  assert.equal(a.estimate(), LIMIT);
  // One more distinct value anywhere in the union: dense, same bytes as one sketch of everything.
  const c = sketchOf(ids(0, 1000), 11);
  const d = sketchOf(ids(536, LIMIT + 1), 11);
  c.merge(d);
  assert.ok(!c.isSparse());
  assert.deepEqual(c.serialize(), sketchOf(ids(0, LIMIT + 1), 11).serialize());
  // Sparse into dense and dense into sparse.
  const big = HyperLogLog.create();
  addRange(big, 20_000, 12);
  const smallS = sketchOf(ids(19_000, 21_000).slice(0, 10), 12);
  const x = big.clone();
  x.merge(smallS);
  const y = smallS.clone();
  y.merge(big);
  assert.deepEqual(x.serialize(), y.serialize());
  assert.ok(smallS.isSparse(), 'merge must not change its argument');
  assert.equal(smallS.estimate(), 10);
});

/** Merges the sketches pairwise in a random tree; returns the root. */
function randomMergeTree(parts: HyperLogLog[], rnd: () => number): HyperLogLog {
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
  const rnd = mulberry32(42);
  // Distinct-count regimes: all sparse, around the limit, dense; with duplicates across parts.
  for (const [distinct, total] of [[300, 900], [LIMIT, 3 * LIMIT], [LIMIT + 1, 2 * LIMIT], [60_000, 150_000], [100_000, 100_000]] as const) {
    const ids = new Int32Array(total);
    for (let i = 0; i < total; i++) ids[i] = i < distinct ? i : Math.floor(rnd() * distinct);
    const h1 = new Int32Array(total);
    const h2 = new Int32Array(total);
    for (let i = 0; i < total; i++) {
      h1[i] = hashInt64(ids[i]!, 21, SEED_A);
      h2[i] = hashInt64(ids[i]!, 21, SEED_B);
    }
    const whole = HyperLogLog.create();
    whole.addMany(h1, h2, null, total);
    const expected = whole.serialize();
    const expectedEstimate = whole.estimate();
    if (distinct <= LIMIT) assert.equal(expectedEstimate, distinct);
    for (const k of [2, 3, 7, 16]) {
      for (let trial = 0; trial < 3; trial++) {
        // Random assignment of rows to parts, each part fed through selection vectors in
        // random batch sizes.
        const owner = new Int32Array(total);
        for (let i = 0; i < total; i++) owner[i] = Math.floor(rnd() * k);
        const parts: HyperLogLog[] = [];
        for (let p = 0; p < k; p++) {
          const sel: number[] = [];
          for (let i = 0; i < total; i++) if (owner[i] === p) sel.push(i);
          const sketch = HyperLogLog.create();
          let at = 0;
          while (at < sel.length) {
            const batch = 1 + Math.floor(rnd() * 4000);
            const piece = Int32Array.from(sel.slice(at, at + batch));
            sketch.addMany(h1, h2, piece, piece.length);
            at += batch;
          }
          parts.push(sketch);
        }
        const root = randomMergeTree(parts, rnd);
        assert.deepEqual(root.serialize(), expected, `distinct=${distinct} k=${k} trial=${trial}`);
        assert.equal(root.estimate(), expectedEstimate);
      }
    }
  }
});

test('dense merge is the register-wise max: disjoint halves merge to the sketch of the union', () => {
  for (let family = 100; family < 108; family++) {
    const a = HyperLogLog.create();
    const b = HyperLogLog.create();
    const all = HyperLogLog.create();
    const h1 = new Int32Array(40_000);
    const h2 = new Int32Array(40_000);
    fillHashes(h1, h2, 0, 40_000, family);
    a.addMany(h1, h2, null, 20_000);
    b.addMany(h1.subarray(20_000), h2.subarray(20_000), null, 20_000);
    all.addMany(h1, h2, null, 40_000);
    const ab = a.clone();
    ab.merge(b);
    b.merge(a);
    assert.deepEqual(ab.serialize(), all.serialize(), `family ${family}`);
    assert.deepEqual(b.serialize(), all.serialize(), `family ${family}`);
  }
});

test('merge is idempotent and rejects a different precision', () => {
  const a = HyperLogLog.create();
  addRange(a, 5000, 31);
  const before = a.serialize();
  a.merge(a);
  a.merge(a.clone());
  assert.deepEqual(a.serialize(), before);
  assert.throws(() => a.merge(HyperLogLog.create(12)), /precision 14 and 12/);
  assert.throws(() => HyperLogLog.create(3), /precision must be an integer/);
  assert.throws(() => HyperLogLog.create(19), /precision must be an integer/);
  assert.throws(() => HyperLogLog.create(14.5), /precision must be an integer/);
});

test('other precisions stay within 3 sigma', () => {
  for (const p of [4, 10, 18]) {
    const m = 1 << p;
    const n = 40 * m;
    const s = HyperLogLog.create(p);
    addRange(s, n, 40 + p);
    const rel = Math.abs(s.estimate() - n) / n;
    assert.ok(rel <= 3 * 1.04 / Math.sqrt(m), `p=${p} relative error ${rel}`);
  }
});

test('the all-zero hash pair is a member like any other', () => {
  const s = HyperLogLog.create();
  s.add(0, 0);
  s.add(0, 0);
  s.add(1, 0);
  assert.equal(s.estimate(), 2);
  const back = HyperLogLog.deserialize(s.serialize());
  assert.deepEqual(back.serialize(), s.serialize());
  assert.equal(back.estimate(), 2);
  // Densified, (0, 0) sets register 0 to the maximum rank 33 (h2 = 0 has 32 leading zeros).
  addRange(s, LIMIT, 50);
  const bytes = s.serialize();
  assert.equal(bytes[2], 1);
  assert.equal(bytes[3], 33);
});

test('serialize / deserialize round-trips every form and the result keeps working', () => {
  const forms: HyperLogLog[] = [HyperLogLog.create(), HyperLogLog.create(), HyperLogLog.create(), HyperLogLog.create(10)];
  forms[1]!.add(-1, -1);
  addRange(forms[2]!, 100_000, 60);
  addRange(forms[3]!, 50, 61);
  for (const s of forms) {
    const bytes = s.serialize();
    const back = HyperLogLog.deserialize(bytes);
    assert.equal(back.p, s.p);
    assert.deepEqual(back.serialize(), bytes);
    assert.equal(back.estimate(), s.estimate());
    addRange(back, 3000, 62);
    addRange(s, 3000, 62);
    assert.deepEqual(back.serialize(), s.serialize());
  }
  // Serialization is canonical: insertion order does not leak into the sparse bytes.
  assert.deepEqual(sketchOf([1, 2, 3, 4, 5], 70).serialize(), sketchOf([5, 3, 1, 4, 2], 70).serialize());
  // A subarray view with a non-zero byte offset deserializes too.
  const bytes = forms[3]!.serialize();
  const padded = new Uint8Array(bytes.length + 5);
  padded.set(bytes, 5);
  assert.deepEqual(HyperLogLog.deserialize(padded.subarray(5)).serialize(), bytes);
});

test('deserialize rejects malformed input', () => {
  const sparse = sketchOf([1, 2, 3], 80).serialize();
  const dense = HyperLogLog.create();
  addRange(dense, 5000, 81);
  const denseBytes = dense.serialize();
  const edit = (src: Uint8Array, f: (b: Uint8Array) => void): Uint8Array => {
    const b = src.slice();
    f(b);
    return b;
  };
  expectCorrupt(new Uint8Array(0), /shorter than the header/);
  expectCorrupt(edit(sparse, (b) => { b[0] = 2; }), /unknown format byte 2/);
  expectCorrupt(edit(sparse, (b) => { b[1] = 3; }), /precision 3 out of range/);
  expectCorrupt(edit(sparse, (b) => { b[1] = 19; }), /precision 19 out of range/);
  expectCorrupt(edit(sparse, (b) => { b[2] = 7; }), /unknown kind byte 7/);
  expectCorrupt(sparse.subarray(0, 5), /sparse header truncated/);
  expectCorrupt(sparse.subarray(0, sparse.length - 1), /needs 31 bytes, got 30/);
  expectCorrupt(edit(sparse, (b) => { new DataView(b.buffer).setUint32(3, LIMIT + 1, true); }), /exceeds the limit 1536/);
  // Pairs swapped: not ascending. Pair duplicated: not strictly ascending.
  expectCorrupt(edit(sparse, (b) => { b.copyWithin(7, 15, 23); b.set(sparse.subarray(7, 15), 15); }), /not strictly ascending at pair 1/);
  expectCorrupt(edit(sparse, (b) => { b.copyWithin(15, 7, 15); }), /not strictly ascending at pair 1/);
  expectCorrupt(denseBytes.subarray(0, denseBytes.length - 1), /needs 16387 bytes, got 16386/);
  expectCorrupt(edit(denseBytes, (b) => { b[3 + 100] = 34; }), /register 100 holds 34/);
});

test('a sketch of a few values is small', () => {
  const empty = HyperLogLog.create();
  assert.ok(empty.byteSize() <= 64, `empty sketch ${empty.byteSize()} B`);
  const ten = sketchOf([0, 1, 2, 3, 4, 5, 6, 7, 8, 9], 90);
  assert.ok(ten.byteSize() < 256, `10-value sketch ${ten.byteSize()} B`);
  assert.equal(ten.serialize().length, 7 + 80);
  const dense = HyperLogLog.create();
  addRange(dense, 10_000, 91);
  assert.equal(dense.byteSize(), 64 + M);
});
