import { test } from 'node:test';
import assert from 'node:assert/strict';
import { deserializePartial, serializePartial, type Partial } from '../../native-free-kernels/partial.js';
import { AGGREGATES, mergeStates, shapesOf, type AggregateKernel } from '../../native-free-kernels/aggregates.js';
import { AggLayout, AggState } from '../../native-free-kernels/aggregate-state.js';
import { compileAddLoop } from '../../native-free-kernels/fused-aggregate.js';
import { makeSchema, type Column, type ColumnType } from '../../engine/schema.js';
import { mulberry32, randomBatch, type Rng } from '../helpers/random.js';

const ALL_TYPES: readonly ColumnType[] = ['bool', 'int32', 'int64', 'float64', 'string', 'timestamp'];

/** Aggregates whose states cover every init (0, NaN, ±Infinity) and both sketches. */
const KERNELS: [string, ColumnType | null, number | null][] = [
  ['count', null, null],
  ['sum', 'float64', null],
  ['sum', 'int64', null],
  ['min', 'float64', null], // init NaN
  ['max', 'float64', null], // init -Infinity
  ['first', 'float64', null], // init +Infinity
  ['last', 'float64', null], // init -Infinity
  ['var', 'float64', null],
  ['approx_count_distinct', 'string', null],
  ['approx_quantile', 'float64', 0.9],
];

function kernelOf(name: string, type: ColumnType | null, q: number | null): AggregateKernel {
  return AGGREGATES.get(name)!.bind(type, q);
}

function columnLength(c: Column): number {
  return c.type === 'int64' ? c.words.length >> 1 : c.type === 'string' ? c.codes.length : c.values.length;
}

/**
 * A partial of G groups: key columns of every type (random values, nulls, weird strings) and
 * the plan's interleaved state filled by the real fused loop from a random batch, with some
 * groups left empty.
 */
function makePartial(rng: Rng, G: number, opts: { nullRate: number; stateCapacity?: number }): { partial: Partial; kernels: AggregateKernel[] } {
  const schema = makeSchema(ALL_TYPES.map((type, i) => ({ name: `c${i}`, type })));
  const keyBatch = randomBatch(schema, G, rng, { nullRate: opts.nullRate });
  const rows = 4 * G + 10;
  const valueBatch = randomBatch(schema, rows, rng, { nullRate: 0.1 });
  const kernels = KERNELS.map(([name, type, q]) => kernelOf(name, type, q));
  const layout = new AggLayout(shapesOf(kernels));
  const state = new AggState(layout, Math.max(1, opts.stateCapacity ?? G));
  state.ensure(G);
  if (G > 0) {
    const gids = new Int32Array(rows);
    const rowIds = new Int32Array(rows);
    // every third group stays empty (inits survive the trip)
    for (let i = 0; i < rows; i++) {
      gids[i] = Math.floor(rng() * G);
      if (gids[i]! % 3 === 2) gids[i] = 0;
      rowIds[i] = i;
    }
    const args = KERNELS.map(([, type]) => (type === null ? null : valueBatch.columns[ALL_TYPES.indexOf(type)]!));
    const et = valueBatch.columns[ALL_TYPES.indexOf('timestamp')]!;
    const add = compileAddLoop(kernels.map((kernel, k) => ({ kernel, argType: KERNELS[k]![1] })), layout);
    add(state, gids, rowIds, rows, args, { eventTime: et.type === 'timestamp' ? et.values : new Float64Array(rows), seq: 7 });
  }
  const windowStart = Float64Array.from({ length: G }, () => Math.floor((rng() - 0.5) * 1e13));
  const windowEnd = windowStart.map((s) => s + 10_000 * (1 + Math.floor(rng() * 3)));
  return {
    partial: {
      groups: G,
      windowStart,
      windowEnd,
      keys: keyBatch.columns,
      state,
      rowsIn: rows + 5,
      rowsSelected: rows,
      minEventTime: G === 0 ? Infinity : -1.5e12,
      maxEventTime: G === 0 ? -Infinity : 1.7e12 + 0.25,
    },
    kernels,
  };
}

function sameF64(a: Float64Array, b: Float64Array, n: number, what: string): void {
  for (let i = 0; i < n; i++) if (!Object.is(a[i], b[i])) assert.fail(`${what}[${i}]: ${a[i]} vs ${b[i]}`);
}

function checkColumn(got: Column, want: Column, G: number, what: string): void {
  assert.equal(got.type, want.type, what);
  assert.equal(columnLength(got), G, what);
  assert.equal(got.valid === null, want.valid === null, `${what} valid presence`);
  if (got.valid !== null) assert.deepEqual([...got.valid], [...want.valid!.subarray(0, G)], `${what} valid`);
  const present = (i: number): boolean => want.valid === null || want.valid[i] === 1;
  for (let i = 0; i < G; i++) {
    if (!present(i)) continue;
    switch (want.type) {
      case 'string':
        assert.ok(got.type === 'string');
        assert.equal(got.dict[got.codes[i]!], want.dict[want.codes[i]!], `${what}[${i}]`);
        break;
      case 'int64':
        assert.ok(got.type === 'int64');
        assert.equal(got.words[2 * i], want.words[2 * i], `${what}[${i}] lo`);
        assert.equal(got.words[2 * i + 1], want.words[2 * i + 1], `${what}[${i}] hi`);
        break;
      case 'float64':
      case 'timestamp':
        assert.ok(got.type === 'float64' || got.type === 'timestamp');
        assert.ok(Object.is(got.values[i], want.values[i]), `${what}[${i}]: ${got.values[i]} vs ${want.values[i]}`);
        break;
      case 'int32':
      case 'bool':
        assert.ok(got.type === want.type);
        assert.equal(got.values[i], want.values[i], `${what}[${i}]`);
        break;
    }
  }
}

function checkPartial(got: Partial, want: Partial, kernels: readonly AggregateKernel[]): void {
  const G = want.groups;
  assert.equal(got.groups, G);
  assert.equal(got.rowsIn, want.rowsIn);
  assert.equal(got.rowsSelected, want.rowsSelected);
  assert.ok(Object.is(got.minEventTime, want.minEventTime), `minEventTime ${got.minEventTime}`);
  assert.ok(Object.is(got.maxEventTime, want.maxEventTime), `maxEventTime ${got.maxEventTime}`);
  assert.equal(got.windowStart.length, G);
  sameF64(got.windowStart, want.windowStart, G, 'windowStart');
  sameF64(got.windowEnd, want.windowEnd, G, 'windowEnd');
  assert.equal(got.keys.length, want.keys.length);
  want.keys.forEach((c, j) => checkColumn(got.keys[j]!, c, G, `key ${j} (${c.type})`));
  const w = want.state;
  const s = got.state;
  const wl = w.layout;
  const sl = s.layout;
  // the layout comes back from the header: same shapes (inits bit for bit), offsets and stride
  assert.equal(sl.shapes.length, wl.shapes.length);
  assert.equal(sl.stride, wl.stride);
  assert.deepEqual(sl.offsets, wl.offsets);
  assert.equal(sl.inits.length, wl.inits.length);
  sameF64(sl.inits, wl.inits, wl.stride, 'layout inits');
  assert.ok(s.capacity >= G);
  assert.ok(s.data.length >= G * sl.stride);
  // every field of every used group, bit for bit (NaN, ±Infinity and -0 included)
  sameF64(s.data, w.data, G * wl.stride, 'state data');
  wl.shapes.forEach((ws, k) => {
    const what = `aggregate ${k} (${KERNELS[k]?.[0] ?? 'count'})`;
    const ss = sl.shapes[k]!;
    assert.equal(ss.sketch, ws.sketch, what);
    assert.equal(ss.inits.length, ws.inits.length, what);
    ws.inits.forEach((v, j) => assert.ok(Object.is(ss.inits[j], v), `${what} init ${j}: ${ss.inits[j]} vs ${v}`));
    if (ws.sketch !== null) {
      const wk = ws.sketch === 'hll' ? w.hll[k]! : w.qs[k]!;
      const sk = ws.sketch === 'hll' ? s.hll[k]! : s.qs[k]!;
      // the other kind of sketch stays empty for this aggregate
      assert.equal((ws.sketch === 'hll' ? s.qs[k]! : s.hll[k]!).filter((x) => x !== undefined).length, 0, what);
      for (let g = 0; g < G; g++) {
        const a = wk[g];
        const b = sk[g];
        assert.equal(a === undefined, b === undefined, `${what} sketch ${g} presence`);
        if (a !== undefined && b !== undefined) assert.deepEqual(b.serialize(), a.serialize(), `${what} sketch ${g}`);
      }
    } else {
      assert.equal(s.hll[k]!.filter((x) => x !== undefined).length, 0, what);
      assert.equal(s.qs[k]!.filter((x) => x !== undefined).length, 0, what);
    }
    for (let g = 0; g < G; g++) {
      const x = kernels[k]!.final(w, k, g);
      const y = kernels[k]!.final(s, k, g);
      assert.ok(x === null || y === null ? x === y : Object.is(x, y), `${what} final(${g}): ${y} vs ${x}`);
    }
  });
}

test('round trip: every key type with and without nulls, every state kind, sketches, empty groups', () => {
  const rng = mulberry32(61);
  for (const G of [1, 2, 3, 7, 64, 1000]) {
    for (const nullRate of [0, 0.3]) {
      const { partial, kernels } = makePartial(rng, G, { nullRate });
      const buf = serializePartial(partial);
      assert.ok(buf.buffer instanceof ArrayBuffer && buf.byteOffset === 0 && buf.byteLength === buf.buffer.byteLength);
      const back = deserializePartial(buf);
      checkPartial(back, partial, kernels);
      // the format is canonical: serializing the copy gives the same bytes
      assert.deepEqual(serializePartial(back), buf, `G=${G}`);
      // the state is read in place, not copied
      assert.equal(back.state.data.buffer, buf.buffer);
      // into a shared block, after other bytes (a worker's outbox): the same bytes, read in place
      const shared = new SharedArrayBuffer(64 + buf.byteLength);
      const inBlock = serializePartial(partial, (size) => new Uint8Array(shared, 40, size));
      assert.deepEqual(new Uint8Array(inBlock), buf);
      const backShared = deserializePartial(inBlock);
      checkPartial(backShared, partial, kernels);
      assert.equal(backShared.state.data.buffer, shared);
      if (G >= 7) {
        // the trip carried real state: counted groups, both kinds of sketch
        const st = partial.state;
        assert.ok(kernels[0]!.final(st, 0, 0)! > 0);
        assert.ok(st.hll[8]!.some((h) => h !== undefined) && st.qs[9]!.some((q) => q !== undefined));
      }
    }
  }
});

test('a deserialized partial merges into the plan\'s own state exactly as the original does', () => {
  const rng = mulberry32(67);
  const G = 50;
  const parts = [makePartial(rng, G, { nullRate: 0.2 }), makePartial(rng, G, { nullRate: 0.2 })];
  const kernels = parts[0]!.kernels;
  // the window state: its own layout object, many more groups, partial groups scattered in it
  const layout = new AggLayout(shapesOf(kernels));
  const W = 300;
  const dstGids = Int32Array.from({ length: G }, (_, g) => (g * 37) % W);
  const srcRows = Int32Array.from({ length: G }, (_, g) => g);
  const direct = new AggState(layout, 8);
  const viaBytes = new AggState(layout, 8);
  direct.ensure(W);
  viaBytes.ensure(W);
  for (const { partial } of parts) {
    const back = deserializePartial(serializePartial(partial));
    assert.notEqual(back.state.layout, layout);
    mergeStates(kernels, direct, dstGids, partial.state, srcRows, G);
    mergeStates(kernels, viaBytes, dstGids, back.state, srcRows, G);
  }
  sameF64(viaBytes.data, direct.data, W * layout.stride, 'merged data');
  kernels.forEach((kernel, k) => {
    for (let w = 0; w < W; w++) {
      const x = kernel.final(direct, k, w);
      const y = kernel.final(viaBytes, k, w);
      assert.ok(x === null || y === null ? x === y : Object.is(x, y), `aggregate ${k} (${KERNELS[k]![0]}) window group ${w}: ${y} vs ${x}`);
    }
  });
  // and the merge did something: the count of a hit group is the sum of both partials' counts
  const g = 3;
  assert.equal(kernels[0]!.final(direct, 0, dstGids[g]!), kernels[0]!.final(parts[0]!.partial.state, 0, g)! + kernels[0]!.final(parts[1]!.partial.state, 0, g)!);
});

test('round trip of a partial whose arrays are longer than its group count (reused scratch)', () => {
  const rng = mulberry32(62);
  const { partial, kernels } = makePartial(rng, 10, { nullRate: 0.2, stateCapacity: 1024 });
  const padded: Partial = {
    ...partial,
    windowStart: Float64Array.from([...partial.windowStart, 1, 2, 3]),
    windowEnd: Float64Array.from([...partial.windowEnd, 4, 5, 6]),
  };
  const buf = serializePartial(padded);
  const small = serializePartial(partial);
  assert.equal(buf.byteLength, small.byteLength);
  checkPartial(deserializePartial(buf), partial, kernels);
});

test('zero groups: types, dictionaries, inits and the ±Infinity event-time bounds survive', () => {
  const rng = mulberry32(63);
  const { partial, kernels } = makePartial(rng, 0, { nullRate: 0 });
  const back = deserializePartial(serializePartial(partial));
  checkPartial(back, partial, kernels);
  assert.equal(back.minEventTime, Infinity);
  assert.equal(back.maxEventTime, -Infinity);
  assert.deepEqual(back.keys.map((c) => c.type), [...ALL_TYPES]);
  // NaN, -Infinity and +Infinity inits come back as numbers (JSON cannot carry them directly)
  const shapes = back.state.layout.shapes;
  assert.ok(Number.isNaN(shapes[3]!.inits[0]));
  assert.equal(shapes[4]!.inits[0], -Infinity);
  assert.equal(shapes[5]!.inits[1], Infinity);
  assert.equal(shapes[6]!.inits[1], -Infinity);
  assert.deepEqual(shapes.map((sh) => sh.sketch), KERNELS.map(([name]) => (name === 'approx_count_distinct' ? 'hll' : name === 'approx_quantile' ? 'qs' : null)));
  // ... and in the initial row new groups start from
  const layout = back.state.layout;
  assert.ok(Number.isNaN(layout.inits[layout.offsets[3]!]));
  assert.equal(layout.inits[layout.offsets[4]!], -Infinity);
  assert.equal(layout.inits[layout.offsets[5]! + 1], Infinity);
  assert.equal(layout.inits[layout.offsets[6]! + 1], -Infinity);
  assert.equal(back.state.capacity, 0);
  assert.equal(back.state.data.length, 0);
});

test('finite event-time bounds, negative and fractional, round trip exactly', () => {
  const rng = mulberry32(64);
  const { partial, kernels } = makePartial(rng, 3, { nullRate: 0 });
  for (const [lo, hi] of [[-0.5, 0.25], [-8.64e15, 8.64e15], [0, 0], [Infinity, -Infinity]] as const) {
    const p = { ...partial, minEventTime: lo, maxEventTime: hi };
    checkPartial(deserializePartial(serializePartial(p)), p, kernels);
  }
});

test('header of every length mod 8, with strings JSON finds hard (quotes, NUL, lone surrogates, emoji)', () => {
  const rng = mulberry32(65);
  const hard = ['', '"', '\\', 'a\u0000b', '\ud800', 'x\udfffy', '😀', '\u2028\u2029', '\n\r\t', 'Ω'];
  const kernels = [kernelOf('count', null, null)];
  const layout = new AggLayout(shapesOf(kernels));
  const add = compileAddLoop([{ kernel: kernels[0]!, argType: null }], layout);
  for (let pad = 0; pad < 16; pad++) {
    const dict = [...hard, 'p'.repeat(pad)];
    const G = dict.length;
    const codes = Int32Array.from({ length: G }, (_, i) => i);
    const valid = pad % 2 === 0 ? null : Uint8Array.from({ length: G }, (_, i) => (i === 3 ? 0 : 1));
    const st = new AggState(layout, G);
    add(st, codes, codes, G, [null], { eventTime: new Float64Array(0), seq: 0 });
    const partial: Partial = {
      groups: G,
      windowStart: new Float64Array(G).fill(pad),
      windowEnd: new Float64Array(G).fill(pad + 1),
      keys: [
        { type: 'string', codes, dict, valid },
        { type: 'bool', values: Uint8Array.from({ length: G }, () => (rng() < 0.5 ? 1 : 0)), valid },
        { type: 'int32', values: Int32Array.from({ length: G }, () => (rng() * 4294967296) | 0), valid: null },
      ],
      state: st,
      rowsIn: G,
      rowsSelected: G,
      minEventTime: 0,
      maxEventTime: 1,
    };
    const back = deserializePartial(serializePartial(partial));
    checkPartial(back, partial, kernels);
    const s = back.keys[0]!;
    assert.ok(s.type === 'string');
    assert.deepEqual(s.dict, dict);
  }
});

test('a buffer that is not a partial is refused', () => {
  assert.throws(() => deserializePartial(new Uint8Array(0)), /bad magic/);
  assert.throws(() => deserializePartial(new Uint8Array(16)), /bad magic/);
  const buf = serializePartial(makePartial(mulberry32(66), 2, { nullRate: 0 }).partial);
  buf[0] = 0;
  assert.throws(() => deserializePartial(buf), /bad magic/);
});
