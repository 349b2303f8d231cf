/**
 * Nexmark, the standard streaming benchmark (Tucker et al., "NEXMark – A Benchmark for Queries
 * over Data Streams"; the generator of Apache Beam's and Flink's Nexmark suites): an online
 * auction where people register, open auctions and bid on them.
 *
 * The generator follows Nexmark's rules, with this project's PRNG (bench/random.ts):
 * - event n (from 0) is a Person when n mod 50 = 0, an Auction when n mod 50 is 1..3 and a Bid
 *   otherwise: the 1 : 3 : 46 mix;
 * - ids grow with n: the last person id is ⌊n / 50⌋, the last auction id 3·⌊n / 50⌋ + the
 *   auctions of this group so far (both + 1000);
 * - a bid goes to the hot auction (the last auction id rounded down to a multiple of 100) with
 *   probability 1/2, else to one of the ~100 auctions in flight (or up to 10 ahead); it comes
 *   from a hot bidder (the last person id rounded down to a multiple of 100, + 1) with
 *   probability 3/4, else from one of the 1000 most recent people (or up to 10 ahead);
 * - an auction's seller is the hot seller with probability 3/4, it has one of 5 categories
 *   (10..14), an initial bid and a reserve above it, and expires within twice the time 100
 *   auctions take to open;
 * - prices are Nexmark's `round(10^(6u) · 100)` cents: $1 to $1,000,000, log-uniform;
 * - channels: half the bids come from the four hot channels (Google, Facebook, Baidu, Apple),
 *   the rest from `channel-0` .. `channel-9999`;
 * - event times advance evenly with the event number at the requested rate (Nexmark's
 *   inter-event delay), in order.
 *
 * Left out: Nexmark's padding (`extra`) and text fields (item names, descriptions, credit
 * cards, the bid url), which only add bytes; Flink's published events are ~100 (bid) to
 * ~500 (auction) bytes, ours ~45 bytes per bid in Arrow.
 *
 * Three streams, one per event type — `person`, `auction`, `bid` — as a deployment would have
 * three topics; `sluice gen --workload nexmark` sends event n to its type's stream, in order.
 * The queries (NEXMARK_QUERIES) read `bid`.
 *
 * Like BidRing (bench/bids.ts), the generator is a ring of events encoded once: lap c of the
 * stream is the ring with event numbers moved forward by c·L (L = ring events, a multiple of
 * 50), so every id and time column moves by a fixed amount per lap — person ids by L/50,
 * auction ids by 3L/50, times by the ring's span — and is re-stamped in place. Only the random
 * draws repeat from lap to lap, and the hot auction and bidder (Nexmark: multiples of 100) move
 * with their lap's shift, which need not be a multiple of 100. Arrow only: those columns sit at
 * fixed byte positions there.
 */

import {
  int64At, schemaFromRecord, setInt64At, sliceBatch, type Batch, type Column, type ColumnType, type StreamSchema,
} from '../engine/schema.js';
import { arrowInt64Sites, encodeBids, lapEvents, lappedSlice, toStreamSchema, writeInt64Run, DEFAULT_START, type LapShift, type Payload } from './bids.js';
import { mulberry32, type Rng } from './random.js';

// --- the model ---------------------------------------------------------------------------------------

export const NEXMARK_STREAMS = {
  person: { id: 'int64', name: 'string', email: 'string', city: 'string', state: 'string', ts: 'timestamp' },
  auction: { id: 'int64', seller: 'int64', category: 'int64', initial_bid: 'int64', reserve: 'int64', expires: 'timestamp', ts: 'timestamp' },
  bid: { auction: 'int64', bidder: 'int64', price: 'int64', channel: 'string', ts: 'timestamp' },
} as const satisfies Record<string, Record<string, ColumnType>>;

export type NexmarkStream = keyof typeof NEXMARK_STREAMS;
/** in the order of the event types within a group of 50 */
export const NEXMARK_STREAM_NAMES = ['person', 'auction', 'bid'] as const satisfies readonly NexmarkStream[];

/** Nexmark's constants (GeneratorConfig and NexmarkConfiguration defaults). */
export const NEXMARK = Object.freeze({
  personProportion: 1,
  auctionProportion: 3,
  bidProportion: 46,
  totalProportion: 50,
  firstPersonId: 1000,
  firstAuctionId: 1000,
  firstCategoryId: 10,
  numCategories: 5,
  /** random person / auction ids may run this far ahead of the last one generated */
  personIdLead: 10,
  auctionIdLead: 10,
  numActivePeople: 1000,
  numInFlightAuctions: 100,
  /** the hot auction / bidder / seller is the last id rounded down to a multiple of this */
  hotAuctionBlock: 100,
  hotBidderBlock: 100,
  hotSellerBlock: 100,
  /** 1 − 1/ratio of bids go to the hot auction, come from a hot bidder; of auctions from a hot seller */
  hotAuctionRatio: 2,
  hotBiddersRatio: 4,
  hotSellersRatio: 4,
  channels: 10_000,
  hotChannelsRatio: 2,
});

const HOT_CHANNELS = ['Google', 'Facebook', 'Baidu', 'Apple'] as const;
const FIRST_NAMES = ['Peter', 'Paul', 'Luke', 'John', 'Saul', 'Vicky', 'Kate', 'Julie', 'Sarah', 'Deiter', 'Walter'];
const LAST_NAMES = ['Shultz', 'Abrams', 'Spencer', 'White', 'Bartels', 'Walton', 'Smith', 'Jones', 'Noris'];
const US_CITIES = ['Phoenix', 'Los Angeles', 'San Francisco', 'Boise', 'Portland', 'Bend', 'Redmond', 'Seattle', 'Kent', 'Cheyenne'];
const US_STATES = ['AZ', 'CA', 'ID', 'OR', 'WA', 'WY'];

const { totalProportion: TOTAL, personProportion: PERSON, auctionProportion: AUCTION } = NEXMARK;

/** 0 person, 1 auction, 2 bid: the type of event n */
export function eventType(n: number): 0 | 1 | 2 {
  const r = n % TOTAL;
  return r < PERSON ? 0 : r < PERSON + AUCTION ? 1 : 2;
}

/** Events of type `t` among events [0, n). */
export function eventsOfType(n: number, t: 0 | 1 | 2): number {
  const groups = Math.floor(n / TOTAL);
  const r = n % TOTAL;
  switch (t) {
    case 0: return groups * PERSON + Math.min(r, PERSON);
    case 1: return groups * AUCTION + Math.min(Math.max(r - PERSON, 0), AUCTION);
    case 2: return groups * NEXMARK.bidProportion + Math.max(r - PERSON - AUCTION, 0);
  }
}

/** The 0-based id of the last person generated at or before event n. */
export function lastPersonId(n: number): number {
  const epoch = Math.floor(n / TOTAL);
  const offset = Math.min(n % TOTAL, PERSON - 1);
  return epoch * PERSON + offset;
}

/** The 0-based id of the last auction generated at or before event n. */
export function lastAuctionId(n: number): number {
  let epoch = Math.floor(n / TOTAL);
  let offset = n % TOTAL;
  if (offset < PERSON) {
    epoch--;
    offset = AUCTION - 1;
  } else if (offset >= PERSON + AUCTION) {
    offset = AUCTION - 1;
  } else {
    offset -= PERSON;
  }
  return epoch * AUCTION + offset;
}

const nextInt = (rnd: Rng, n: number): number => Math.floor(rnd() * n);

/** A person id (0-based) among the most recent active ones, or a few ahead. */
function randomPersonId(n: number, rnd: Rng): number {
  const people = lastPersonId(n) + 1;
  const active = Math.min(people, NEXMARK.numActivePeople);
  return people - active + nextInt(rnd, active + NEXMARK.personIdLead);
}

/** An auction id (0-based) among the ones in flight, or a few ahead. */
function randomAuctionId(n: number, rnd: Rng): number {
  const max = lastAuctionId(n);
  const min = Math.max(max - NEXMARK.numInFlightAuctions, 0);
  return min + nextInt(rnd, max - min + 1 + NEXMARK.auctionIdLead);
}

/** Nexmark's PriceGenerator: cents, 10^(6u) dollars. */
const nextPrice = (rnd: Rng): number => Math.round(10 ** (rnd() * 6) * 100);

function letters(rnd: Rng, len: number): string {
  let s = '';
  for (let i = 0; i < len; i++) s += String.fromCharCode(97 + nextInt(rnd, 26));
  return s;
}

export interface NexmarkOptions {
  readonly seed: number;
  /** event-time rate: event n is at start + n · 1000 / eventsPerSecond ms (rounded down) */
  readonly eventsPerSecond: number;
  readonly start?: number;
}

export interface NexmarkData {
  /** person, auction, bid: the events of each type, in event order, columns as NEXMARK_STREAMS */
  readonly batches: Record<NexmarkStream, Batch>;
  /** event time covered by the events: event n is at start + ⌊n · spanMs / events⌋ */
  readonly spanMs: number;
}

/** Typed columns of one event type, sized up front. */
class Int64Col {
  readonly words: Int32Array;
  constructor(n: number) {
    this.words = new Int32Array(2 * n);
  }
  column(): Column {
    return { type: 'int64', words: this.words, valid: null };
  }
}

class StringCol {
  readonly codes: Int32Array;
  private readonly dict: string[] = [];
  private readonly index = new Map<string, number>();
  constructor(n: number) {
    this.codes = new Int32Array(n);
  }
  set(i: number, s: string): void {
    let c = this.index.get(s);
    if (c === undefined) {
      c = this.dict.length;
      this.dict.push(s);
      this.index.set(s, c);
    }
    this.codes[i] = c;
  }
  column(): Column {
    return { type: 'string', codes: this.codes, dict: this.dict, valid: null };
  }
}

const tsColumn = (values: Float64Array): Column => ({ type: 'timestamp', values, valid: null });

/** Events [0, events) of the Nexmark stream, split by type. */
export function generateNexmark(o: NexmarkOptions, events: number): NexmarkData {
  if (!Number.isInteger(events) || events < 1) throw new RangeError(`events must be a positive integer, got ${events}`);
  if (!(o.eventsPerSecond > 0)) throw new RangeError(`eventsPerSecond must be > 0, got ${o.eventsPerSecond}`);
  const start = o.start ?? DEFAULT_START;
  const spanMs = Math.max(1, Math.round((events * 1000) / o.eventsPerSecond));
  const rnd = mulberry32(o.seed);
  const np = eventsOfType(events, 0);
  const na = eventsOfType(events, 1);
  const nb = eventsOfType(events, 2);
  const pId = new Int64Col(np), pName = new StringCol(np), pEmail = new StringCol(np), pCity = new StringCol(np), pState = new StringCol(np);
  const pTs = new Float64Array(np);
  const aId = new Int64Col(na), aSeller = new Int64Col(na), aCategory = new Int64Col(na), aInitial = new Int64Col(na), aReserve = new Int64Col(na);
  const aExpires = new Float64Array(na), aTs = new Float64Array(na);
  const bAuction = new Int64Col(nb), bBidder = new Int64Col(nb), bPrice = new Int64Col(nb), bChannel = new StringCol(nb);
  const bTs = new Float64Array(nb);
  // an auction runs for up to twice the time it takes to open the auctions in flight
  const inFlightEvents = Math.floor((NEXMARK.numInFlightAuctions * TOTAL) / AUCTION);
  const horizonMs = Math.max(1, Math.floor((inFlightEvents * spanMs) / events));
  let p = 0, a = 0, b = 0;
  for (let n = 0; n < events; n++) {
    const ts = start + Math.floor((n * spanMs) / events);
    switch (eventType(n)) {
      case 0: {
        setInt64At(pId.words, p, lastPersonId(n) + NEXMARK.firstPersonId);
        pName.set(p, `${FIRST_NAMES[nextInt(rnd, FIRST_NAMES.length)]!} ${LAST_NAMES[nextInt(rnd, LAST_NAMES.length)]!}`);
        pEmail.set(p, `${letters(rnd, 7)}@${letters(rnd, 5)}.com`);
        pCity.set(p, US_CITIES[nextInt(rnd, US_CITIES.length)]!);
        pState.set(p, US_STATES[nextInt(rnd, US_STATES.length)]!);
        pTs[p++] = ts;
        break;
      }
      case 1: {
        setInt64At(aId.words, a, lastAuctionId(n) + NEXMARK.firstAuctionId);
        const seller = nextInt(rnd, NEXMARK.hotSellersRatio) > 0
          ? Math.floor(lastPersonId(n) / NEXMARK.hotSellerBlock) * NEXMARK.hotSellerBlock
          : randomPersonId(n, rnd);
        setInt64At(aSeller.words, a, seller + NEXMARK.firstPersonId);
        setInt64At(aCategory.words, a, NEXMARK.firstCategoryId + nextInt(rnd, NEXMARK.numCategories));
        const initial = nextPrice(rnd);
        setInt64At(aInitial.words, a, initial);
        setInt64At(aReserve.words, a, initial + nextPrice(rnd));
        aExpires[a] = ts + 1 + nextInt(rnd, 2 * horizonMs);
        aTs[a++] = ts;
        break;
      }
      case 2: {
        const auction = nextInt(rnd, NEXMARK.hotAuctionRatio) > 0
          ? Math.floor(lastAuctionId(n) / NEXMARK.hotAuctionBlock) * NEXMARK.hotAuctionBlock
          : randomAuctionId(n, rnd);
        setInt64At(bAuction.words, b, auction + NEXMARK.firstAuctionId);
        const bidder = nextInt(rnd, NEXMARK.hotBiddersRatio) > 0
          ? Math.floor(lastPersonId(n) / NEXMARK.hotBidderBlock) * NEXMARK.hotBidderBlock + 1
          : randomPersonId(n, rnd);
        setInt64At(bBidder.words, b, bidder + NEXMARK.firstPersonId);
        setInt64At(bPrice.words, b, nextPrice(rnd));
        bChannel.set(b, nextInt(rnd, NEXMARK.hotChannelsRatio) > 0
          ? HOT_CHANNELS[nextInt(rnd, HOT_CHANNELS.length)]!
          : `channel-${nextInt(rnd, NEXMARK.channels)}`);
        bTs[b++] = ts;
        break;
      }
    }
  }
  const batch = (stream: NexmarkStream, length: number, columns: Column[]): Batch => ({ schema: schemaFromRecord(NEXMARK_STREAMS[stream]), length, columns });
  return {
    spanMs,
    batches: {
      person: batch('person', np, [pId.column(), pName.column(), pEmail.column(), pCity.column(), pState.column(), tsColumn(pTs)]),
      auction: batch('auction', na, [aId.column(), aSeller.column(), aCategory.column(), aInitial.column(), aReserve.column(), tsColumn(aExpires), tsColumn(aTs)]),
      bid: batch('bid', nb, [bAuction.column(), bBidder.column(), bPrice.column(), bChannel.column(), tsColumn(bTs)]),
    },
  };
}

/**
 * How much each column moves when the event numbers move by `events` (a multiple of 50) and
 * event time by `spanMs`: the columns a lap of the ring re-stamps.
 */
export function lapShifts(events: number, spanMs: number): Record<NexmarkStream, Record<string, number>> {
  const groups = events / TOTAL;
  const people = groups * PERSON;
  const auctions = groups * AUCTION;
  return {
    person: { id: people, ts: spanMs },
    auction: { id: auctions, seller: people, expires: spanMs, ts: spanMs },
    bid: { auction: auctions, bidder: people, ts: spanMs },
  };
}

/** The values of an int64 or timestamp column as doubles (exact below 2^53). */
function numbersOf(col: Column, n: number): Float64Array {
  if (col.type === 'timestamp') return col.values.subarray(0, n);
  if (col.type !== 'int64') throw new TypeError(`expected an int64 or timestamp column, got ${col.type}`);
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) out[i] = int64At(col.words, i);
  return out;
}

// --- the ring ----------------------------------------------------------------------------------------

export interface NexmarkRingOptions extends NexmarkOptions {
  /** events (of all types) per step; each step sends up to one batch per stream */
  readonly batchRows: number;
  /** events in the ring; rounded up to a multiple of batchRows and of 50 */
  readonly ringEvents: number;
  /** each stream's schema on the server (the Nexmark columns plus any others, sent null) */
  readonly schemas?: Partial<Record<NexmarkStream, StreamSchema>>;
}

interface Part {
  readonly payload: Payload;
  /** per re-stamped column: its byte position and first-lap values */
  readonly sites: number[];
  readonly bases: Float64Array[];
  lap: number;
}

const gcd = (a: number, b: number): number => (b === 0 ? a : gcd(b, a % b));

/**
 * The endless Nexmark stream as encoded Arrow batches. Step k holds events [k·B, (k+1)·B):
 * `step(k)` gives one payload per stream (null where the step has no event of that type), in
 * NEXMARK_STREAM_NAMES order. Payloads are shared with the ring: asking for step k + K re-stamps
 * them, so whoever holds them (a socket writing them) must be done first.
 */
export class NexmarkRing {
  readonly batchRows: number;
  readonly ringEvents: number;
  readonly spanMs: number;
  readonly schemas: Record<NexmarkStream, StreamSchema>;
  readonly buildMs: number;
  readonly bytes: number;
  private readonly data: Record<NexmarkStream, Batch>;
  /** per stream: the column indexes re-stamped per lap and their shift per lap */
  private readonly stamped: Record<NexmarkStream, LapShift>;
  private readonly steps: (Part | null)[][] = [];

  constructor(o: NexmarkRingOptions) {
    const started = performance.now();
    if (!Number.isInteger(o.batchRows) || o.batchRows < 1) throw new RangeError(`batchRows must be a positive integer, got ${o.batchRows}`);
    this.batchRows = o.batchRows;
    const unit = (o.batchRows / gcd(o.batchRows, TOTAL)) * TOTAL;
    this.ringEvents = Math.ceil(Math.max(1, o.ringEvents) / unit) * unit;
    const gen = generateNexmark(o, this.ringEvents);
    this.spanMs = gen.spanMs;
    const shifts = lapShifts(this.ringEvents, this.spanMs);
    const schemas = {} as Record<NexmarkStream, StreamSchema>;
    const data = {} as Record<NexmarkStream, Batch>;
    const stamped = {} as Record<NexmarkStream, LapShift>;
    for (const s of NEXMARK_STREAM_NAMES) {
      schemas[s] = o.schemas?.[s] ?? gen.batches[s].schema;
      data[s] = toStreamSchema(gen.batches[s], schemas[s]);
      const entries = Object.entries(shifts[s]);
      stamped[s] = { columns: entries.map(([name]) => schemas[s].index.get(name)!), shifts: entries.map(([, v]) => v) };
    }
    this.schemas = schemas;
    this.data = data;
    this.stamped = stamped;
    let bytes = 0;
    for (let from = 0; from < this.ringEvents; from += o.batchRows) {
      const parts = NEXMARK_STREAM_NAMES.map((s, t) => {
        const lo = eventsOfType(from, t as 0 | 1 | 2);
        const hi = eventsOfType(from + o.batchRows, t as 0 | 1 | 2);
        if (hi === lo) return null;
        const slice = sliceBatch(data[s], lo, hi);
        const payload = encodeBids(slice, 'arrow');
        bytes += payload.data.length;
        const { columns } = stamped[s];
        return { payload, sites: arrowInt64Sites(slice, columns), bases: columns.map((c) => numbersOf(slice.columns[c]!, slice.length)), lap: 0 };
      });
      this.steps.push(parts);
    }
    this.bytes = bytes;
    this.buildMs = performance.now() - started;
  }

  /** steps in the ring */
  get size(): number {
    return this.steps.length;
  }

  /**
   * Step k with `rows` events (the last step of a run may be partial: its parts are encoded
   * afresh); one payload or null per stream.
   */
  step(k: number, rows = this.batchRows): (Payload | null)[] {
    const K = this.steps.length;
    const lap = Math.floor(k / K);
    if (rows < this.batchRows) {
      const from = (k % K) * this.batchRows;
      return NEXMARK_STREAM_NAMES.map((s, t) => {
        const lo = eventsOfType(from, t as 0 | 1 | 2);
        const hi = eventsOfType(from + rows, t as 0 | 1 | 2);
        return hi === lo ? null : encodeBids(lappedSlice(this.data[s], lo, hi, lap, this.stamped[s]), 'arrow');
      });
    }
    return this.steps[k % K]!.map((part, t) => {
      if (part === null) return null;
      if (part.lap !== lap) {
        const { shifts } = this.stamped[NEXMARK_STREAM_NAMES[t]!];
        part.sites.forEach((at, j) => writeInt64Run(part.payload.data, at, part.bases[j]!, lap * shifts[j]!));
        part.lap = lap;
      }
      return part.payload;
    });
  }

  /** Events [0, count) of the stream, unencoded, per stream (tests, oracles). */
  events(count: number): Record<NexmarkStream, Batch> {
    const out = {} as Record<NexmarkStream, Batch>;
    NEXMARK_STREAM_NAMES.forEach((s, t) => {
      out[s] = lapEvents(count, this.ringEvents, this.data[s], (from, to, lap) => {
        const lo = eventsOfType(from, t as 0 | 1 | 2);
        const hi = eventsOfType(to, t as 0 | 1 | 2);
        return hi > lo ? lappedSlice(this.data[s], lo, hi, lap, this.stamped[s]) : null;
      });
    });
    return out;
  }
}

// --- the queries -------------------------------------------------------------------------------------

export const NEXMARK_QUERY_NAMES = ['q1', 'q2', 'q5', 'q7', 'q12'] as const;
export type NexmarkQuery = (typeof NEXMARK_QUERY_NAMES)[number];

export interface NexmarkQueryDef {
  /** what Nexmark's query asks, and how the pipeline expresses it */
  readonly about: string;
  /** the Sluice pipeline over `bid` */
  readonly pipeline: Record<string, unknown>;
  /**
   * The same result in DuckDB SQL over a table `bid` (Nexmark's bid columns, ts as BIGINT ms):
   * window_start (ms), the groupBy columns and the select columns, in the pipeline's order.
   */
  readonly duckdb: string;
}

const tumbling10s = (select: string): string => `SELECT ts // 10000 * 10000 AS window_start, ${select} FROM bid`;

/**
 * Nexmark's q1, q2, q5, q7 and q12 as Sluice pipelines. A pipeline is a windowed aggregation, so
 * the two per-event queries (q1 projects every bid, q2 filters them) become 10 s tumbling
 * aggregations that do the same per-event work — q1 converts every price, q2 evaluates its
 * filter on every bid — and write one row per window (or per auction and window) instead of
 * one per bid. q5 and q7 keep their windowed aggregation; their last step (the auction with
 * the most bids, the bid with the highest price) is a query over the result table.
 */
export const NEXMARK_QUERIES: Readonly<Record<NexmarkQuery, NexmarkQueryDef>> = {
  q1: {
    about: 'currency conversion: every bid price × 0.908 (dollars to euros); summed and maxed per 10 s window',
    pipeline: { from: 'bid', window: { tumbling: '10s' }, select: { bids: 'count()', euros: 'sum(0.908 * price)', max_euros: 'max(0.908 * price)' } },
    duckdb: `${tumbling10s('count(*) AS bids, sum(0.908::DOUBLE * price) AS euros, max(0.908::DOUBLE * price) AS max_euros')} GROUP BY ALL`,
  },
  q2: {
    about: 'selection: the bids on auctions whose id is a multiple of 123; counted and maxed per auction and 10 s window',
    pipeline: { from: 'bid', where: 'auction % 123 = 0', window: { tumbling: '10s' }, groupBy: ['auction'], select: { bids: 'count()', max_price: 'max(price)' } },
    duckdb: `${tumbling10s('auction, count(*) AS bids, max(price)::DOUBLE AS max_price')} WHERE auction % 123 = 0 GROUP BY ALL`,
  },
  q5: {
    about: 'hot items: bids per auction in 10 s windows sliding by 2 s (the hottest auction per window is a query over the table)',
    pipeline: { from: 'bid', window: { hopping: { size: '10s', slide: '2s' } }, groupBy: ['auction'], select: { bids: 'count()' } },
    duckdb: `SELECT window_start, auction, count(*) AS bids FROM (
      SELECT auction, unnest(range((ts // 2000 - 4) * 2000, (ts // 2000) * 2000 + 1, 2000)) AS window_start FROM bid) GROUP BY ALL`,
  },
  q7: {
    about: 'highest bid: the maximum price per 10 s tumbling window',
    pipeline: { from: 'bid', window: { tumbling: '10s' }, select: { max_price: 'max(price)', bids: 'count()' } },
    duckdb: `${tumbling10s('max(price)::DOUBLE AS max_price, count(*) AS bids')} GROUP BY ALL`,
  },
  q12: {
    about: 'bids per bidder in 10 s tumbling windows (Nexmark uses processing time; Sluice event time)',
    pipeline: { from: 'bid', window: { tumbling: '10s' }, groupBy: ['bidder'], select: { bids: 'count()' } },
    duckdb: `${tumbling10s('bidder, count(*) AS bids')} GROUP BY ALL`,
  },
};

/** Nexmark's event-time settings: its DDL's watermark trails by 4 s; windows close then. */
export const NEXMARK_TIMING = { maxOutOfOrderMs: 4000, latenessMs: 0 } as const;

export interface NexmarkConfigOptions {
  readonly dir: string;
  readonly queries: readonly NexmarkQuery[];
  /** other top-level sections (server, workers) */
  readonly extra?: Record<string, unknown>;
}

/** The three Nexmark streams and the chosen queries as pipelines (named after the query). */
export function nexmarkConfig(o: NexmarkConfigOptions): Record<string, unknown> {
  const streams = Object.fromEntries(NEXMARK_STREAM_NAMES.map((s) => [s, {
    schema: { ...NEXMARK_STREAMS[s] },
    eventTime: { column: 'ts', maxOutOfOrder: `${NEXMARK_TIMING.maxOutOfOrderMs}ms` },
  }]));
  const pipelines = Object.fromEntries(o.queries.map((q) => [q, { ...NEXMARK_QUERIES[q].pipeline, lateness: `${NEXMARK_TIMING.latenessMs}ms` }]));
  return { ...o.extra, storage: { dir: o.dir, checkpoint: { every: '5s' }, parquet: { every: '1m' } }, streams, pipelines };
}
