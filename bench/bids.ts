/**
 * A seeded, Nexmark-style stream of bids, cheap enough at run time that one core can feed a
 * server millions of events per second (`sluice gen`, and the benchmarks of issue 5).
 *
 * The bids follow Nexmark's BidGenerator in spirit:
 * - hot auctions: half of the bids go to a small hot set, the rest spread over every auction;
 * - hot bidders: three quarters of the bids come from a small hot set, the rest from anyone;
 * - prices are log-uniform from $1 to $1,000,000 (Nexmark's `10^(6u)` cents, here dollars with
 *   two decimals): many small bids, a few huge ones;
 * - channels: half from four hot channels, the rest from a few others (one of them `spam`,
 *   which the default pipeline of configs/sluice.yaml filters out);
 * - event times advance with the event rate; `disorder` moves each event back by a uniform
 *   0..disorder ms, so events arrive out of order by up to that much.
 * Unlike Nexmark, auction and bidder ids come from fixed ranges and there are no Person or
 * Auction events: this is the simple bids workload of configs/sluice.yaml. The full Nexmark
 * generator (the 1 : 3 : 46 mix, ids that grow with the event number) is bench/nexmark.ts.
 *
 * Why it is cheap: the events are generated once, into a ring of `ringEvents` events, cut into
 * batches and encoded once per wire format. The endless stream is that ring repeated, each lap
 * shifted forward in event time by the ring's time span. Only the timestamps must change from
 * one lap to the next, and every format keeps them at fixed byte positions — Arrow's int64
 * buffer, MessagePack float64s, NDJSON's 13 digits — so a lap re-stamps them in place:
 *
 *   ring (K batches of B rows, encoded once)     the stream (batch k = ring[k mod K], lap ⌊k/K⌋)
 *   ┌────┬────┬─────┬──────┐                     ┌────┬────┬─────┬──────┬────┬────┬─────┐
 *   │ b0 │ b1 │ ... │ bK-1 │                     │ b0 │ b1 │ ... │ bK-1 │ b0'│ b1'│ ... │
 *   └────┴────┴─────┴──────┘                     └────┴────┴─────┴──────┴────┴────┴─────┘
 *     ts = base times − disorder                   b0' = b0 with ts + spanMs (re-stamped in place)
 *
 * Same options and seed, same events, in every format.
 */

import { int64At, schemaFromRecord, setInt64At, sliceBatch, type Batch, type Column, type ColumnType, type StreamSchema } from '../engine/schema.js';
import { concatBatches } from '../native-free-kernels/concat.js';
import { encodeArrow } from '../native-free-kernels/encode-arrow.js';
import { encodeMsgpackColumns } from '../native-free-kernels/encode-msgpack.js';
import { encodeNdjson } from '../native-free-kernels/encode-json.js';
import { mulberry32 } from './random.js';

/** The bid columns, in the order of configs/sluice.yaml. */
export const BID_COLUMNS = {
  auction: 'int64',
  bidder: 'int64',
  price: 'float64',
  channel: 'string',
  ts: 'timestamp',
} as const satisfies Record<string, ColumnType>;

export type BidColumn = keyof typeof BID_COLUMNS;

/** bid_stats' event-time settings: the watermark trails by maxOutOfOrder, windows wait lateness more. */
export const BID_STATS_TIMING = { maxOutOfOrderMs: 2000, latenessMs: 5000 } as const;

export interface BidStatsOptions {
  readonly dir: string;
  readonly archive: boolean;
  readonly durable?: boolean;
  /** tumbling window size in ms (default 10 s) */
  readonly windowMs?: number;
  readonly parquetEvery: string;
  /** storage.memoryLimit (DuckDB's buffer pool), when not DuckDB's default */
  readonly memoryLimit?: string;
  /** other top-level sections (server, workers) */
  readonly extra?: Record<string, unknown>;
}

/**
 * The benchmarks' configuration: the bid stream and the bid_stats pipeline of DESIGN.md A2 (and
 * configs/sluice.yaml) — filter, tumbling window, group by auction, count / max / avg / sum.
 */
export function bidStatsConfig(o: BidStatsOptions): Record<string, unknown> {
  return {
    ...o.extra,
    storage: { dir: o.dir, checkpoint: { every: '5s' }, parquet: { every: o.parquetEvery }, ...(o.memoryLimit === undefined ? {} : { memoryLimit: o.memoryLimit }) },
    streams: {
      bids: {
        schema: { ...BID_COLUMNS },
        eventTime: { column: 'ts', maxOutOfOrder: `${BID_STATS_TIMING.maxOutOfOrderMs}ms` },
        archive: o.archive,
        ack: o.durable === true ? 'durable' : 'accepted',
      },
    },
    pipelines: {
      bid_stats: {
        from: 'bids',
        where: "price > 100 and channel != 'spam'",
        window: { tumbling: `${o.windowMs ?? 10_000}ms` },
        groupBy: ['auction'],
        select: { bids: 'count()', max_price: 'max(price)', avg_price: 'avg(price)', total: 'sum(price)' },
        lateness: `${BID_STATS_TIMING.latenessMs}ms`,
      },
    },
  };
}

/** Wire formats of generated batches: Arrow IPC stream, MessagePack column map, NDJSON. */
export const BID_FORMATS = ['arrow', 'msgpack', 'ndjson'] as const;
export type BidFormat = (typeof BID_FORMATS)[number];

/** The shape of the bid population (Nexmark's ratios by default). */
export interface BidShape {
  /** auction ids are firstAuction .. firstAuction + auctions − 1 */
  readonly auctions: number;
  readonly firstAuction: number;
  /** the hot auctions are the first `hotAuctions` ids */
  readonly hotAuctions: number;
  /** fraction of bids that go to a hot auction (Nexmark: 1/2) */
  readonly hotAuctionRatio: number;
  readonly bidders: number;
  readonly firstBidder: number;
  readonly hotBidders: number;
  /** fraction of bids placed by a hot bidder (Nexmark: 3/4) */
  readonly hotBidderRatio: number;
  readonly hotChannels: readonly string[];
  readonly otherChannels: readonly string[];
  /** fraction of bids on a hot channel (Nexmark: 1/2) */
  readonly hotChannelRatio: number;
}

export const NEXMARK_SHAPE: BidShape = Object.freeze({
  auctions: 10_000,
  firstAuction: 1_000,
  hotAuctions: 8,
  hotAuctionRatio: 0.5,
  bidders: 100_000,
  firstBidder: 1_000_000,
  hotBidders: 8,
  hotBidderRatio: 0.75,
  hotChannels: Object.freeze(['Google', 'Facebook', 'Baidu', 'Apple']),
  otherChannels: Object.freeze(['channel-0', 'channel-1', 'channel-2', 'channel-3', 'channel-4', 'channel-5', 'channel-6', 'spam']),
  hotChannelRatio: 0.5,
});

/** 2023-11-14T22:13:20Z: the default event time of the first bid. */
export const DEFAULT_START = 1_700_000_000_000;

export interface BidOptions {
  readonly seed: number;
  /** event-time rate: base event times advance by 1000 / eventsPerSecond ms per event */
  readonly eventsPerSecond: number;
  /** event time of the first event, ms since the epoch */
  readonly start?: number;
  /** each event's time is moved back by a uniform integer 0..disorder ms */
  readonly disorder?: number;
  readonly shape?: BidShape;
}

/**
 * The ring: `events` bids in BID_COLUMNS order, times of the first lap. Lap c of the stream is
 * the same bids with `spanMs · c` added to ts. Base times are spread evenly over the span, so
 * the stream's event rate is exactly events / spanMs per ms (the requested rate, up to the
 * rounding of spanMs to whole ms).
 */
export interface BidRingData {
  readonly batch: Batch;
  readonly spanMs: number;
}

const TWO_32 = 4294967296;

export function generateBidRing(o: BidOptions, events: number): BidRingData {
  if (!Number.isInteger(events) || events < 1) throw new RangeError(`ring events must be a positive integer, got ${events}`);
  if (!(o.eventsPerSecond > 0)) throw new RangeError(`eventsPerSecond must be > 0, got ${o.eventsPerSecond}`);
  const s = o.shape ?? NEXMARK_SHAPE;
  const start = o.start ?? DEFAULT_START;
  const disorder = o.disorder ?? 0;
  const spanMs = Math.max(1, Math.round((events * 1000) / o.eventsPerSecond));
  const rnd = mulberry32(o.seed);
  const auction = new Int32Array(2 * events);
  const bidder = new Int32Array(2 * events);
  const price = new Float64Array(events);
  const codes = new Int32Array(events);
  const ts = new Float64Array(events);
  const dict = [...s.hotChannels, ...s.otherChannels];
  const hotC = s.hotChannels.length;
  const otherC = s.otherChannels.length;
  for (let i = 0; i < events; i++) {
    // a fixed number of draws per event, in a fixed order: the same seed gives the same bids
    const a = rnd() < s.hotAuctionRatio ? s.firstAuction + Math.floor(rnd() * s.hotAuctions) : s.firstAuction + Math.floor(rnd() * s.auctions);
    const b = rnd() < s.hotBidderRatio ? s.firstBidder + Math.floor(rnd() * s.hotBidders) : s.firstBidder + Math.floor(rnd() * s.bidders);
    const hotChannel = rnd() < s.hotChannelRatio;
    const c = hotChannel ? Math.floor(rnd() * hotC) : hotC + Math.floor(rnd() * otherC);
    const cents = Math.round(10 ** (rnd() * 6) * 100);
    const back = disorder > 0 ? Math.floor(rnd() * (disorder + 1)) : 0;
    setInt64At(auction, i, a);
    setInt64At(bidder, i, b);
    price[i] = cents / 100;
    codes[i] = c;
    ts[i] = start + Math.floor((i * spanMs) / events) - back;
  }
  const batch: Batch = {
    schema: schemaFromRecord(BID_COLUMNS),
    length: events,
    columns: [
      { type: 'int64', words: auction, valid: null },
      { type: 'int64', words: bidder, valid: null },
      { type: 'float64', values: price, valid: null },
      { type: 'string', codes, dict, valid: null },
      { type: 'timestamp', values: ts, valid: null },
    ],
  };
  return { batch, spanMs };
}

/** A column of `n` nulls (for stream columns the generator does not fill). */
function nullColumn(type: ColumnType, n: number): Column {
  const valid = new Uint8Array(n);
  switch (type) {
    case 'bool': return { type, values: new Uint8Array(n), valid };
    case 'int32': return { type, values: new Int32Array(n), valid };
    case 'int64': return { type, words: new Int32Array(2 * n), valid };
    case 'float64': return { type, values: new Float64Array(n), valid };
    case 'timestamp': return { type, values: new Float64Array(n), valid };
    case 'string': return { type, codes: new Int32Array(n), dict: [], valid };
  }
}

/**
 * Check that `schema` (a stream's) has every generated column (`columns`: BID_COLUMNS, or a
 * Nexmark stream's) with its type; the problems, or []. Columns beyond them are allowed: the
 * generator sends them as nulls.
 */
export function schemaProblems(columns: Readonly<Record<string, ColumnType>>, schema: Readonly<Record<string, string>>): string[] {
  const problems: string[] = [];
  for (const [name, type] of Object.entries(columns)) {
    const got = Object.hasOwn(schema, name) ? schema[name] : undefined;
    if (got === undefined) problems.push(`no column '${name}' (${type})`);
    else if (got !== type) problems.push(`column '${name}' is ${got}, the generator writes ${type}`);
  }
  return problems;
}

/** `bids` in the column order of `target`; target columns that are not bid columns are null. */
export function toStreamSchema(bids: Batch, target: StreamSchema): Batch {
  const extra = new Map<ColumnType, Column>();
  const columns = target.fields.map((f) => {
    const i = bids.schema.index.get(f.name);
    if (i !== undefined) {
      const col = bids.columns[i]!;
      if (col.type !== f.type) throw new Error(`column '${f.name}' is ${f.type} in the stream, ${col.type} in the bids`);
      return col;
    }
    let nulls = extra.get(f.type);
    if (nulls === undefined) extra.set(f.type, (nulls = nullColumn(f.type, bids.length)));
    return nulls;
  });
  return { schema: target, length: bids.length, columns };
}

/** One batch on the wire: binary (Arrow, MessagePack) or text (NDJSON) WebSocket message. */
export interface Payload {
  readonly data: Buffer;
  readonly rows: number;
  readonly binary: boolean;
}

export function encodeBids(batch: Batch, format: BidFormat): Payload {
  let bytes: Uint8Array;
  switch (format) {
    case 'arrow': bytes = encodeArrow(batch); break;
    case 'msgpack': bytes = encodeMsgpackColumns(batch); break;
    case 'ndjson': bytes = encodeNdjson(batch); break;
  }
  return { data: Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength), rows: batch.length, binary: format !== 'ndjson' };
}

// --- re-stamping ---------------------------------------------------------------------------------

/**
 * Where a batch's timestamps sit in its encoded bytes, and how to overwrite them. Found once per
 * ring batch (Arrow: by a marker probe; MessagePack, NDJSON: by searching for the bytes the
 * encoder wrote for the timestamp column, unique as no other column holds 13-digit or ~1.7e12
 * values); a format change in an encoder makes the search fail loudly instead of corrupting data.
 */
interface Stamper {
  stamp(data: Buffer, ts: Float64Array, shift: number): void;
}

/** probe values: valid millisecond timestamps no generated column holds */
const MARKER_BASE = 7e15;
const MARKER_COLUMN_STRIDE = 1e8;

/**
 * Where the int64 value buffers of `columns` (int64 or timestamp) sit in encodeArrow(batch).
 * Found by encoding the batch once more with marker values in those columns — the layout of an
 * Arrow record batch depends only on lengths, nulls and string bytes, which the markers keep —
 * and searching for each marker run (which must occur exactly once).
 */
export function arrowInt64Sites(batch: Batch, columns: readonly number[]): number[] {
  if (batch.length >= MARKER_COLUMN_STRIDE) throw new RangeError(`a batch of ${batch.length} rows is too long to probe`);
  const probe = batch.columns.slice();
  const runs: Buffer[] = [];
  columns.forEach((c, j) => {
    const values = new Float64Array(batch.length);
    const words = new Int32Array(2 * batch.length);
    for (let i = 0; i < batch.length; i++) {
      values[i] = MARKER_BASE + j * MARKER_COLUMN_STRIDE + i;
      setInt64At(words, i, values[i]!);
    }
    const col = batch.columns[c]!;
    if (col.type === 'timestamp') probe[c] = { type: 'timestamp', values, valid: col.valid };
    else if (col.type === 'int64') probe[c] = { type: 'int64', words, valid: col.valid };
    else throw new TypeError(`column ${c} is ${col.type}: only int64 and timestamp columns can be re-stamped`);
    // the words in memory order are the little-endian int64s Arrow writes (as writeInt64Run assumes)
    runs.push(Buffer.from(words.buffer));
  });
  const bytes = Buffer.from(encodeArrow({ ...batch, columns: probe }));
  return runs.map((run, j) => {
    const at = bytes.indexOf(run);
    if (at < 0 || bytes.indexOf(run, at + 1) >= 0) throw new Error(`Arrow probe of column ${columns[j]}: ${at < 0 ? 'not found' : 'found twice'}`);
    return at;
  });
}

/** Writes base[i] + shift as little-endian int64s at `at`: through an Int32Array view when aligned. */
export function writeInt64Run(data: Buffer, at: number, base: Float64Array, shift: number): void {
  const offset = data.byteOffset + at;
  if (offset % 4 === 0) {
    const words = new Int32Array(data.buffer, offset, 2 * base.length);
    for (let i = 0; i < base.length; i++) setInt64At(words, i, base[i]! + shift);
    return;
  }
  for (let i = 0; i < base.length; i++) {
    const v = base[i]! + shift;
    const hi = Math.floor(v / TWO_32);
    data.writeInt32LE((v - hi * TWO_32) | 0, at + 8 * i);
    data.writeInt32LE(hi | 0, at + 8 * i + 4);
  }
}

/** Arrow: the timestamp column's int64 buffer (bench/nexmark.ts re-stamps id columns the same way). */
function arrowStamper(batch: Batch): Stamper {
  const [at] = arrowInt64Sites(batch, [batch.schema.index.get('ts')!]);
  return {
    stamp(d, t, shift) {
      writeInt64Run(d, at!, t, shift);
    },
  };
}

/** MessagePack column map: the ts array holds `float 64` values (0xcb + 8 bytes big-endian). */
function msgpackStamper(data: Buffer, ts: Float64Array): Stamper {
  const expect = Buffer.alloc(9 * ts.length);
  for (let i = 0; i < ts.length; i++) {
    // msgpackr writes an integral double beyond 2^32 as float 64; below that it would pick an
    // int of another width and the positions would not be fixed
    if (!(ts[i]! >= TWO_32) || !Number.isInteger(ts[i])) throw new RangeError(`timestamp ${ts[i]} is before 1970-02-20 or not whole ms: the generator needs later times`);
    expect[9 * i] = 0xcb;
    expect.writeDoubleBE(ts[i]!, 9 * i + 1);
  }
  const at = uniqueIndex(data, expect, 'MessagePack timestamp array');
  return {
    stamp(d, t, shift) {
      for (let i = 0; i < t.length; i++) d.writeDoubleBE(t[i]! + shift, at + 9 * i + 1);
    },
  };
}

const MIN_13_DIGITS = 1e12; // 2001-09-09
const MAX_13_DIGITS = 1e13 - 1; // 2286-11-20

/** ASCII of the tens and ones digit of 0..99 */
const TENS = Uint8Array.from({ length: 100 }, (_, r) => 48 + Math.floor(r / 10));
const ONES = Uint8Array.from({ length: 100 }, (_, r) => 48 + (r % 10));

/** NDJSON: each row's `"ts":` is followed by 13 digits; the positions of those digits. */
function ndjsonStamper(data: Buffer, ts: Float64Array, tsName: string): Stamper {
  const key = Buffer.from(`${JSON.stringify(tsName)}:`);
  const at = new Int32Array(ts.length);
  let from = 0;
  for (let i = 0; i < ts.length; i++) {
    // a string value cannot contain the key: its own quotes would be escaped
    const k = data.indexOf(key, from);
    if (k < 0) throw new Error(`NDJSON row ${i}: no ${key.toString()} key`);
    at[i] = k + key.length;
    from = at[i]! + 13;
    if (data.toString('latin1', at[i], from) !== String(ts[i])) throw new Error(`NDJSON row ${i}: the timestamp is not the 13 digits of ${ts[i]}`);
  }
  if (data.indexOf(key, from) >= 0) throw new Error('NDJSON: more timestamp keys than rows');
  return {
    stamp(d, t, shift) {
      for (let i = 0; i < t.length; i++) {
        let v = t[i]! + shift;
        if (v < MIN_13_DIGITS || v > MAX_13_DIGITS) throw new RangeError(`timestamp ${v} does not have 13 digits (2001..2286): NDJSON re-stamping needs a fixed width`);
        // two digits at a time from the last: v is an exact integer, so % and / stay exact
        const first = at[i]!;
        for (let p = first + 11; p > first; p -= 2) {
          const r = v % 100;
          d[p] = TENS[r]!;
          d[p + 1] = ONES[r]!;
          v = (v - r) / 100;
        }
        d[first] = 48 + v;
      }
    },
  };
}

function uniqueIndex(data: Buffer, expect: Buffer, what: string): number {
  const at = data.indexOf(expect);
  if (at < 0 || data.indexOf(expect, at + 1) >= 0) throw new Error(`${what}: ${at < 0 ? 'not found' : 'found twice'} in the encoded batch`);
  return at;
}

// --- the ring of encoded batches ----------------------------------------------------------------

export interface BidRingOptions extends BidOptions {
  readonly format: BidFormat;
  readonly batchRows: number;
  /** events in the ring; rounded up to a whole number of batches */
  readonly ringEvents: number;
  /** the stream's schema (bid columns plus any others, sent as nulls); BID_COLUMNS when absent */
  readonly schema?: StreamSchema;
}

interface RingBatch {
  readonly payload: Payload;
  /** the batch's first-lap timestamps (a view of the ring's ts column) */
  readonly ts: Float64Array;
  readonly stamper: Stamper;
  /** lap whose timestamps the payload holds now */
  lap: number;
}

/**
 * The endless bid stream as encoded batches. Batch k holds events [k·B, (k+1)·B). `payload(k)`
 * returns bytes shared with the ring: use (send, copy) them before asking for batch k + K.
 */
export class BidRing {
  readonly format: BidFormat;
  readonly batchRows: number;
  /** events in the ring (a multiple of batchRows) */
  readonly ringEvents: number;
  readonly spanMs: number;
  readonly schema: StreamSchema;
  /** ms spent generating and encoding the ring */
  readonly buildMs: number;
  /** encoded bytes of the whole ring */
  readonly bytes: number;
  private readonly data: Batch;
  /** the ts column, moved by spanMs per lap */
  private readonly stamped: LapShift;
  private readonly batches: RingBatch[] = [];

  constructor(o: BidRingOptions) {
    const started = performance.now();
    if (!Number.isInteger(o.batchRows) || o.batchRows < 1) throw new RangeError(`batchRows must be a positive integer, got ${o.batchRows}`);
    this.format = o.format;
    this.batchRows = o.batchRows;
    this.ringEvents = Math.ceil(Math.max(1, o.ringEvents) / o.batchRows) * o.batchRows;
    const ring = generateBidRing(o, this.ringEvents);
    this.spanMs = ring.spanMs;
    this.schema = o.schema ?? ring.batch.schema;
    this.data = toStreamSchema(ring.batch, this.schema);
    this.stamped = { columns: [this.schema.index.get('ts')!], shifts: [this.spanMs] };
    const tsAll = (ring.batch.columns[ring.batch.schema.index.get('ts')!] as { values: Float64Array }).values;
    let bytes = 0;
    for (let from = 0; from < this.ringEvents; from += o.batchRows) {
      const slice = sliceBatch(this.data, from, from + o.batchRows);
      const payload = encodeBids(slice, o.format);
      const ts = tsAll.subarray(from, from + o.batchRows);
      this.batches.push({ payload, ts, stamper: this.stamperFor(slice, payload.data, ts), lap: 0 });
      bytes += payload.data.length;
    }
    this.bytes = bytes;
    this.buildMs = performance.now() - started;
  }

  private stamperFor(batch: Batch, data: Buffer, ts: Float64Array): Stamper {
    switch (this.format) {
      case 'arrow': return arrowStamper(batch);
      case 'msgpack': return msgpackStamper(data, ts);
      case 'ndjson': return ndjsonStamper(data, ts, 'ts');
    }
  }

  /** batches in the ring */
  get size(): number {
    return this.batches.length;
  }

  /** Batch k of the stream (k ≥ 0), its timestamps re-stamped for its lap when needed. */
  payload(k: number): Payload {
    const K = this.batches.length;
    const b = this.batches[k % K]!;
    const lap = Math.floor(k / K);
    if (b.lap !== lap) {
      b.stamper.stamp(b.payload.data, b.ts, lap * this.spanMs);
      b.lap = lap;
    }
    return b.payload;
  }

  /**
   * Batch k with `rows` rows: payload(k) when that is all of it, else its first `rows` rows
   * freshly encoded (the last, partial batch of a run).
   */
  batch(k: number, rows: number): Payload {
    if (rows >= this.batchRows) return this.payload(k);
    const K = this.batches.length;
    const from = (k % K) * this.batchRows;
    return encodeBids(lappedSlice(this.data, from, from + rows, Math.floor(k / K), this.stamped), this.format);
  }

  /** Events [0, count) of the stream, unencoded, in the stream's schema (tests, oracles). */
  events(count: number): Batch {
    return lapEvents(count, this.ringEvents, this.data, (from, to, lap) => lappedSlice(this.data, from, to, lap, this.stamped));
  }
}

/** Columns of a ring's data re-stamped per lap, and how far each moves per lap. */
export interface LapShift {
  readonly columns: readonly number[];
  readonly shifts: readonly number[];
}

/** Rows [lo, hi) of a ring's data moved to lap `lap`: the shifted columns copied, the others views. */
export function lappedSlice(data: Batch, lo: number, hi: number, lap: number, stamped: LapShift): Batch {
  const part = sliceBatch(data, lo, hi);
  const columns = part.columns.slice();
  stamped.columns.forEach((c, j) => {
    const col = part.columns[c]!;
    const shift = lap * stamped.shifts[j]!;
    if (col.type === 'timestamp') {
      columns[c] = { type: 'timestamp', values: col.values.map((v) => v + shift), valid: col.valid };
    } else if (col.type === 'int64') {
      const words = new Int32Array(2 * part.length);
      for (let i = 0; i < part.length; i++) setInt64At(words, i, int64At(col.words, i) + shift);
      columns[c] = { type: 'int64', words, valid: col.valid };
    }
  });
  return { schema: part.schema, length: part.length, columns };
}

/**
 * Events [0, count) of an endless ring of `ringEvents` events, unencoded: `part(from, to, lap)`
 * gives ring events [from, to) on lap `lap` (null when they hold no row), and the pieces are
 * concatenated; an empty result has `data`'s schema.
 */
export function lapEvents(count: number, ringEvents: number, data: Batch, part: (from: number, to: number, lap: number) => Batch | null): Batch {
  const parts: Batch[] = [];
  for (let first = 0; first < count;) {
    const lap = Math.floor(first / ringEvents);
    const from = first - lap * ringEvents;
    const to = Math.min(ringEvents, from + (count - first));
    const piece = part(from, to, lap);
    if (piece !== null) parts.push(piece);
    first += to - from;
  }
  return parts.length === 0 ? sliceBatch(data, 0, 0) : concatBatches(parts);
}
