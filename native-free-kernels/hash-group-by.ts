/**
 * Hash group-by: maps composite keys to dense group ids 0..size-1.
 *
 * A key is a fixed list of components; each component is one or two 32-bit words:
 *
 *   kind   reads                               words
 *   i32    Int32Array (int32 column, window #)  1
 *   u8     Uint8Array (bool column)             1
 *   str    Int32Array codes → per-batch map     1   (dictionary entry → interned id)
 *   i64    Int32Array [lo, hi] pairs            2
 *   f64    Float64Array (float64, timestamp)    2   (-0 → 0, every NaN → one NaN)
 *
 * plus one word holding a null bit per component. Open addressing with linear probing: each
 * slot of `slots` holds `group id + 1` (0 = empty) followed by the key's W words, so a lookup
 * is ONE random memory access — the key compare reads the same cache line as the id. (Keeping
 * ids in the slots and keys in a separate per-group array cost three dependent cache misses
 * per row: 14 against 10.5 ns per row at 10 K groups.) Keys are also kept per group (`keys[g * W + j]`)
 * for output and rehashing. Slot count is a power of two, load ≤ 0.6. The table never holds a
 * JS object per group.
 *
 * The probe loop is generated once per (component kinds × which components carry a validity
 * array) and cached — STYLE: pick the specialised function once, never per row. The generated
 * source is built only from the component kinds, never from user text.
 *
 * Strings are hashed through the dictionary: `mapDictionary` interns each distinct string of a
 * batch's dictionary once and the probe loop reads `map[codes[r]]`, an int.
 */

import type { Column } from '../engine/schema.js';

export type KeyKind = 'i32' | 'u8' | 'str' | 'i64' | 'f64';

export interface KeySpec {
  readonly kind: KeyKind;
  /**
   * true: the component array is indexed by position in the selection (0..n-1), as for window
   * numbers computed per selected row; false: by row id (`sel[i]`).
   */
  readonly perPosition: boolean;
}

export interface KeyInput {
  readonly values: Int32Array | Float64Array | Uint8Array;
  readonly valid: Uint8Array | null;
  /** str only: dictionary code → interned id, from `GroupTable.mapDictionary` */
  readonly map: Int32Array | null;
}

type InsertFn = (t: GroupTable, inputs: readonly KeyInput[], sel: Int32Array | null, n: number, out: Int32Array) => void;

const WORDS: Record<KeyKind, number> = { i32: 1, u8: 1, str: 1, i64: 2, f64: 2 };
const insertCache = new Map<string, InsertFn>();

export class GroupTable {
  readonly specs: readonly KeySpec[];
  /** words per key: components + 1 null-mask word */
  readonly width: number;
  size = 0;
  /** room for this many groups in `keys` / `hashes` */
  capacity: number;
  /** per group: key words (W each) and hash */
  keys: Int32Array;
  hashes: Int32Array;
  /** slotCount × (1 + W): [group id + 1, key words...] */
  slots: Int32Array;
  slotMask: number;
  /** rehash into a larger slot table when size reaches this */
  slotLimit: number;
  /** interned strings of every str component (one pool; ids are indexes) */
  readonly strings: string[] = [];
  private readonly stringIds = new Map<string, number>();
  private mapScratch = new Int32Array(64);
  private readonly insertVariants: (InsertFn | undefined)[];
  private appendVariant: InsertFn | undefined;
  /** groups were added by appendNew without a slot: the slots must be rebuilt before a lookup */
  private slotsStale = false;

  constructor(specs: readonly KeySpec[], initialCapacity = 1024) {
    if (specs.length > 30) throw new Error('at most 30 key components');
    this.specs = specs;
    this.width = specs.reduce((w, s) => w + WORDS[s.kind], 0) + 1;
    this.capacity = Math.max(16, initialCapacity);
    this.keys = new Int32Array(this.capacity * this.width);
    this.hashes = new Int32Array(this.capacity);
    const slotCount = nextPow2(Math.ceil(this.capacity / MAX_LOAD));
    this.slots = new Int32Array(slotCount * (this.width + 1));
    this.slotMask = slotCount - 1;
    this.slotLimit = Math.floor(slotCount * MAX_LOAD);
    this.insertVariants = new Array<InsertFn | undefined>(1 << Math.min(specs.length, 12));
  }

  /** Forget every group, keep the allocated memory (per-batch tables are reused). */
  clear(): void {
    const slotCount = this.slotMask + 1;
    if (this.slotsStale) {
      this.slots.fill(0);
      this.slotsStale = false;
    } else if (this.size * 16 < slotCount) {
      // a table grown by one big batch stays big; zeroing all of it for every small batch
      // made later batches 15× slower. Find each group's slot from its hash instead.
      const SW = this.width + 1;
      for (let g = 0; g < this.size; g++) {
        let s = this.hashes[g]! & this.slotMask;
        while (this.slots[s * SW] !== g + 1) s = (s + 1) & this.slotMask;
        this.slots[s * SW] = 0;
      }
    } else if (this.size > 0) {
      this.slots.fill(0);
    }
    this.size = 0;
    this.strings.length = 0;
    this.stringIds.clear();
  }

  intern(s: string): number {
    let id = this.stringIds.get(s);
    if (id === undefined) {
      id = this.strings.length;
      this.strings.push(s);
      this.stringIds.set(s, id);
    }
    return id;
  }

  /**
   * Intern every entry of a batch dictionary; returns code → id. The returned array is scratch
   * owned by the table and valid until the next call — pass `into` to keep several at once.
   */
  mapDictionary(dict: readonly string[], into?: Int32Array): Int32Array {
    let map = into;
    if (map === undefined || map.length < dict.length) {
      if (this.mapScratch.length < dict.length) this.mapScratch = new Int32Array(nextPow2(dict.length));
      map = this.mapScratch;
    }
    for (let i = 0; i < dict.length; i++) map[i] = this.intern(dict[i]!);
    return map;
  }

  /**
   * Look up (inserting when new) the key of each selected row; writes the group id of
   * position i to out[i]. `sel` null means rows 0..n-1.
   */
  insert(inputs: readonly KeyInput[], sel: Int32Array | null, n: number, out: Int32Array): void {
    if (this.slotsStale) this.rebuildSlots();
    let validMask = 0;
    for (let j = 0; j < inputs.length; j++) if (inputs[j]!.valid !== null) validMask |= 1 << j;
    let fn = validMask < this.insertVariants.length ? this.insertVariants[validMask] : undefined;
    if (fn === undefined) {
      fn = insertFunction(this.specs, validMask);
      if (validMask < this.insertVariants.length) this.insertVariants[validMask] = fn;
    }
    fn(this, inputs, sel, n, out);
  }

  /** Double the per-group arrays (called from the generated loop when size reaches capacity). */
  growGroups(): void {
    this.reserve(this.capacity * 2);
  }

  /** Room for `groups` groups in the per-group arrays (the slot table grows as it fills). */
  reserve(groups: number): void {
    if (groups <= this.capacity) return;
    const cap = groups;
    const keys = new Int32Array(cap * this.width);
    keys.set(this.keys.subarray(0, this.size * this.width));
    const hashes = new Int32Array(cap);
    hashes.set(this.hashes.subarray(0, this.size));
    this.capacity = cap;
    this.keys = keys;
    this.hashes = hashes;
  }

  /** Double the slot table and reinsert every group (called when size reaches slotLimit). */
  growSlots(): void {
    this.placeAll((this.slotMask + 1) * 2);
  }

  /** A slot table of `slotCount` slots holding every group (from its hash and key words); the current one, cleared, when it has that size. */
  private placeAll(slotCount: number): void {
    const W = this.width;
    const SW = W + 1;
    const slots = slotCount === this.slotMask + 1 ? this.slots.fill(0) : new Int32Array(slotCount * SW);
    const mask = slotCount - 1;
    const keys = this.keys;
    for (let g = 0; g < this.size; g++) {
      let s = this.hashes[g]! & mask;
      while (slots[s * SW] !== 0) s = (s + 1) & mask;
      const b = s * SW;
      slots[b] = g + 1;
      for (let w = 0; w < W; w++) slots[b + 1 + w] = keys[g * W + w]!;
    }
    this.slots = slots;
    this.slotMask = mask;
    this.slotLimit = Math.floor(slotCount * MAX_LOAD);
  }

  /**
   * Add the key of each selected row as a new group, without looking it up: the caller knows
   * that none of them is in the table yet and that they are distinct and not null (a
   * DenseKeyIndex that has seen every group of the table). Ids are size, size + 1, ... in
   * order, written to out[i]. Inputs come without validity arrays (the caller drops them once
   * it knows the selected rows are not null). Keys and hashes are stored as insert stores them;
   * the slots are not touched — the next insert rebuilds them first (rebuildSlots).
   */
  appendNew(inputs: readonly KeyInput[], sel: Int32Array | null, n: number, out: Int32Array): void {
    for (const input of inputs) if (input.valid !== null) throw new Error('appendNew takes keys without nulls');
    this.appendVariant ??= insertFunction(this.specs, 0, true);
    this.appendVariant(this, inputs, sel, n, out);
    if (n > 0) this.slotsStale = true;
  }

  /** Place every group in a slot table with room for `size` (after appendNew). */
  private rebuildSlots(): void {
    this.placeAll(Math.max(this.slotMask + 1, nextPow2(Math.ceil((this.size + 1) / MAX_LOAD))));
    this.slotsStale = false;
  }

  /** Word offset of component j inside a key. */
  wordOffset(j: number): number {
    let o = 0;
    for (let i = 0; i < j; i++) o += WORDS[this.specs[i]!.kind];
    return o;
  }

  /** Is component j of group g null? */
  isNull(g: number, j: number): boolean {
    return (this.keys[g * this.width + this.width - 1]! & (1 << j)) !== 0;
  }

  /**
   * Component j as a column: of every group, or of the groups listed in `ids` (in that order)
   * — for partial results and output.
   */
  keyColumn(j: number, type: Column['type'], ids?: Int32Array): Column {
    const n = ids === undefined ? this.size : ids.length;
    const w = this.width;
    const o = this.wordOffset(j);
    // the key words of the wanted groups, gathered once (row g of `keys` is group ids[g])
    let keys = this.keys;
    if (ids !== undefined) {
      keys = new Int32Array(n * w);
      for (let i = 0; i < n; i++) keys.set(this.keys.subarray(ids[i]! * w, ids[i]! * w + w), i * w);
    }
    const bit = 1 << j;
    let valid: Uint8Array | null = null;
    for (let g = 0; g < n; g++) {
      if ((keys[g * w + w - 1]! & bit) !== 0) {
        valid ??= new Uint8Array(n).fill(1);
        valid[g] = 0;
      }
    }
    switch (type) {
      case 'int32': {
        const values = new Int32Array(n);
        for (let g = 0; g < n; g++) values[g] = keys[g * w + o]!;
        return { type, values, valid };
      }
      case 'bool': {
        const values = new Uint8Array(n);
        for (let g = 0; g < n; g++) values[g] = keys[g * w + o]!;
        return { type, values, valid };
      }
      case 'string': {
        // only the strings these groups use, not the whole pool
        const codes = new Int32Array(n);
        const remap = new Map<number, number>();
        const dict: string[] = [];
        for (let g = 0; g < n; g++) {
          if ((keys[g * w + w - 1]! & bit) !== 0) continue;
          const id = keys[g * w + o]!;
          let code = remap.get(id);
          if (code === undefined) {
            code = dict.length;
            remap.set(id, code);
            dict.push(this.strings[id]!);
          }
          codes[g] = code;
        }
        return { type, codes, dict, valid };
      }
      case 'int64': {
        const words = new Int32Array(2 * n);
        for (let g = 0; g < n; g++) {
          words[2 * g] = keys[g * w + o]!;
          words[2 * g + 1] = keys[g * w + o + 1]!;
        }
        return { type, words, valid };
      }
      case 'float64':
      case 'timestamp': {
        const values = new Float64Array(n);
        const asWords = new Int32Array(values.buffer);
        for (let g = 0; g < n; g++) {
          asWords[2 * g] = keys[g * w + o]!;
          asWords[2 * g + 1] = keys[g * w + o + 1]!;
        }
        return { type, values, valid };
      }
    }
  }

  /** Bytes held by the table (for memory accounting). */
  byteSize(): number {
    return this.keys.byteLength + this.hashes.byteLength + this.slots.byteLength;
  }
}

const MAX_LOAD = 0.6;

export function nextPow2(n: number): number {
  let p = 1;
  while (p < n) p *= 2;
  return p;
}

/** The key component kind that reads a column of this type. */
export function keyKindOf(type: Column['type']): KeyKind {
  switch (type) {
    case 'int32': return 'i32';
    case 'bool': return 'u8';
    case 'string': return 'str';
    case 'int64': return 'i64';
    case 'float64':
    case 'timestamp': return 'f64';
  }
}

/** The KeyInput that feeds a column into a table (strings interned through the dictionary). */
export function keyInputOf(table: GroupTable, col: Column, mapInto?: Int32Array): KeyInput {
  switch (col.type) {
    case 'string': return { values: col.codes, valid: col.valid, map: table.mapDictionary(col.dict, mapInto) };
    case 'int64': return { values: col.words, valid: col.valid, map: null };
    default: return { values: col.values, valid: col.valid, map: null };
  }
}

/**
 * Generate the probe loop for one layout. Hash: each word is folded in with a multiply, then
 * an xor-shift-multiply-xor-shift finaliser spreads the bits into the low ones linear probing
 * uses. (Measured: a full murmur3 fmix32 was no better for probe lengths and cost more.)
 */
function insertFunction(specs: readonly KeySpec[], validMask: number, append = false): InsertFn {
  const cacheKey = specs.map((s) => (s.perPosition ? s.kind.toUpperCase() : s.kind)).join(',') + '/' + validMask + (append ? '/append' : '');
  const cached = insertCache.get(cacheKey);
  if (cached !== undefined) return cached;

  const W = specs.reduce((w, s) => w + WORDS[s.kind], 0) + 1;
  const bind: string[] = [];
  const body: string[] = [];
  const words: string[] = [];
  specs.forEach((s, j) => {
    bind.push(`const a${j} = I[${j}].values, v${j} = I[${j}].valid, m${j} = I[${j}].map;`);
    const idx = s.perPosition ? 'i' : 'r';
    const nullable = (validMask & (1 << j)) !== 0;
    switch (s.kind) {
      case 'i32':
      case 'u8':
        body.push(`let k${j}_0 = a${j}[${idx}];`);
        words.push(`k${j}_0`);
        break;
      case 'str':
        body.push(`let k${j}_0 = m${j}[a${j}[${idx}]];`);
        words.push(`k${j}_0`);
        break;
      case 'i64':
        body.push(`let k${j}_0 = a${j}[2 * ${idx}], k${j}_1 = a${j}[2 * ${idx} + 1];`);
        words.push(`k${j}_0`, `k${j}_1`);
        break;
      case 'f64':
        // Canonicalise -0 and NaN so SQL-equal keys are bit-equal.
        body.push(`{ const x = a${j}[${idx}]; F[0] = x === 0 ? 0 : (x !== x ? NaN : x); }`);
        body.push(`let k${j}_0 = FW[0], k${j}_1 = FW[1];`);
        words.push(`k${j}_0`, `k${j}_1`);
        break;
    }
    if (nullable) {
      const zero = WORDS[s.kind] === 2 ? `k${j}_0 = 0; k${j}_1 = 0;` : `k${j}_0 = 0;`;
      body.push(`if (v${j}[${idx}] === 0) { ${zero} nm |= ${1 << j}; }`);
    }
  });
  // The null-mask word takes part only when non-zero, so the hash of a key does not depend
  // on whether its batch carried validity arrays (both variants must agree).
  const mixes = words.map((k) => `h = Math.imul(h ^ ${k}, 0x9e3779b1);`).join(' ');
  const allWords = [...words, 'nm'];
  const eq = allWords.map((k, w) => `slots[b + ${w + 1}] === ${k}`).join(' && ');
  const slotStores = allWords.map((k, w) => `slots[b + ${w + 1}] = ${k};`).join(' ');
  const keyStores = allWords.map((k, w) => `keys[kb + ${w}] = ${k};`).join(' ');

  const hash = `let h = ${0x2545f491};
      ${mixes}
      if (nm !== 0) h = Math.imul(h ^ nm, 0x85ebca6b);
      h ^= h >>> 15; h = Math.imul(h, 0xc2b2ae35); h ^= h >>> 13;`;
  // appendNew: the same key words and hash, stored as a new group without a slot
  const appendSrc = `
    ${bind.join('\n    ')}
    let keys = T.keys, hashes = T.hashes;
    let size = T.size, cap = T.capacity;
    for (let i = 0; i < n; i++) {
      const r = sel === null ? i : sel[i];
      let nm = 0;
      ${body.join('\n      ')}
      ${hash}
      if (size === cap) { T.size = size; T.growGroups(); keys = T.keys; hashes = T.hashes; cap = T.capacity; }
      const kb = size * ${W};
      ${keyStores}
      hashes[size] = h;
      out[i] = size++;
    }
    T.size = size;`;
  const src = append ? appendSrc : `
    ${bind.join('\n    ')}
    let keys = T.keys, hashes = T.hashes, slots = T.slots, mask = T.slotMask;
    let size = T.size, cap = T.capacity, limit = T.slotLimit;
    for (let i = 0; i < n; i++) {
      const r = sel === null ? i : sel[i];
      let nm = 0;
      ${body.join('\n      ')}
      ${hash}
      let s = h & mask;
      for (;;) {
        const b = s * ${W + 1};
        const g1 = slots[b];
        if (g1 === 0) {
          if (size >= limit || size === cap) {
            T.size = size;
            if (size === cap) { T.growGroups(); keys = T.keys; hashes = T.hashes; cap = T.capacity; }
            if (size >= limit) { T.growSlots(); slots = T.slots; mask = T.slotMask; limit = T.slotLimit; }
            s = h & mask;
            continue;
          }
          slots[b] = size + 1;
          ${slotStores}
          const kb = size * ${W};
          ${keyStores}
          hashes[size] = h;
          out[i] = size++;
          break;
        }
        if (${eq}) { out[i] = g1 - 1; break; }
        s = (s + 1) & mask;
      }
    }
    T.size = size;`;
  const factory = new Function('F', 'FW', `return function insert(T, I, sel, n, out) {${src}\n};`) as (
    f: Float64Array,
    fw: Int32Array,
  ) => InsertFn;
  const scratch = new Float64Array(1);
  const fn = factory(scratch, new Int32Array(scratch.buffer));
  insertCache.set(cacheKey, fn);
  return fn;
}
