/**
 * The Nexmark generator (bench/nexmark.ts) and its queries:
 * - the events follow Nexmark's rules: the 1 : 3 : 46 mix, ids growing with the event number,
 *   hot auctions / bidders / sellers in their proportions, bids only on auctions in flight and
 *   from recent people, prices in Nexmark's range and distribution, the hot channels;
 * - the ring's re-stamped Arrow payloads decode to exactly the events of the stream, lap after
 *   lap, and a lap is the first one with ids and times moved by the lap's shifts;
 * - end to end: `sluice gen --workload nexmark` into a real server running the five query
 *   pipelines gives, for every query, the rows DuckDB computes with the query's SQL over the
 *   same events.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { int64At, valueAt, type Batch, type Column } from '../../engine/schema.js';
import { decodeBatch } from '../../native-free-kernels/decode.js';
import { startServer } from '../../server/app.js';
import { makeNexmarkRing, parseGenArgs, type GenSummary } from '../../server/gen.js';
import {
  NEXMARK, NEXMARK_QUERIES, NEXMARK_QUERY_NAMES, NEXMARK_STREAM_NAMES, NexmarkRing, eventType, eventsOfType, generateNexmark,
  lapShifts, lastAuctionId, lastPersonId, nexmarkConfig, type NexmarkStream,
} from '../../bench/nexmark.js';
import { loadIntoDuckDB } from '../../bench/duckdb-load.js';
import { openMemory, queryRows } from '../helpers/duckdb.js';
import { freshDir, removeFreshDirs, T0 } from '../helpers/oracle.js';
import { runCli, type Ran } from '../helpers/cli.js';

after(removeFreshDirs);

const col = (b: Batch, name: string): Column => b.columns[b.schema.index.get(name)!]!;
const numbers = (b: Batch, name: string): number[] => Array.from({ length: b.length }, (_, i) => valueAt(col(b, name), i) as number);
const strings = (b: Batch, name: string): string[] => Array.from({ length: b.length }, (_, i) => valueAt(col(b, name), i) as string);

describe('Nexmark generator', () => {
  const N = 200_000;
  const { batches, spanMs } = generateNexmark({ seed: 3, eventsPerSecond: 100_000, start: T0 }, N);
  const { person, auction, bid } = batches;

  test('the 1 : 3 : 46 mix, by event number', () => {
    assert.deepEqual([person.length, auction.length, bid.length], [4000, 12000, 184000]);
    assert.deepEqual([0, 1, 3, 4, 49, 50].map(eventType), [0, 1, 1, 2, 2, 0]);
    for (const n of [0, 1, 2, 4, 5, 49, 50, 51, 99, 123_457]) {
      let want = [0, 0, 0];
      for (let i = 0; i < n; i++) want[eventType(i)]!++;
      assert.deepEqual([0, 1, 2].map((t) => eventsOfType(n, t as 0 | 1 | 2)), want, `events before ${n}`);
    }
    // Nexmark's id functions: person n/50; auctions 3 per group, the last of the previous group before its first
    assert.deepEqual([0, 1, 49, 50, 99, 100].map(lastPersonId), [0, 0, 0, 1, 1, 2]);
    assert.deepEqual([0, 1, 2, 3, 4, 50, 51].map(lastAuctionId), [-1, 0, 1, 2, 2, 2, 3]);
  });

  test('ids: consecutive people and auctions; bids on auctions in flight from recent or hot people', () => {
    assert.deepEqual(numbers(person, 'id'), Array.from({ length: 4000 }, (_, i) => 1000 + i));
    assert.deepEqual(numbers(auction, 'id'), Array.from({ length: 12000 }, (_, i) => 1000 + i));
    const auctions = numbers(bid, 'auction');
    const bidders = numbers(bid, 'bidder');
    let hotAuction = 0, hotBidder = 0, n = 0;
    for (let b = 0, e = 0; e < N; e++) {
      if (eventType(e) !== 2) continue;
      const last = lastAuctionId(e);
      const a = auctions[b]! - 1000;
      // hot: the last auction rounded down to a multiple of 100; else within the 100 in flight or 10 ahead
      if (a === Math.floor(last / 100) * 100) hotAuction++;
      else assert.ok(a >= Math.max(0, last - 100) && a <= last + 10, `bid ${b}: auction ${a} with the last at ${last}`);
      const people = lastPersonId(e) + 1;
      const p = bidders[b]! - 1000;
      if (p === Math.floor((people - 1) / 100) * 100 + 1) hotBidder++;
      else assert.ok(p >= people - Math.min(people, 1000) && p < people + 10, `bid ${b}: bidder ${p} with ${people} people`);
      b++;
      n++;
    }
    // 1/2 hot auctions, 3/4 hot bidders (plus the random picks that land on the hot id)
    assert.ok(Math.abs(hotAuction / n - 0.5) < 0.02, `hot auction share ${hotAuction / n}`);
    assert.ok(Math.abs(hotBidder / n - 0.75) < 0.02, `hot bidder share ${hotBidder / n}`);
    const sellers = numbers(auction, 'seller');
    const hotSellers = sellers.filter((s, i) => s - 1000 === Math.floor(lastPersonId(1 + 50 * Math.floor(i / 3)) / 100) * 100).length;
    assert.ok(Math.abs(hotSellers / sellers.length - 0.75) < 0.03, `hot seller share ${hotSellers / sellers.length}`);
    const categories = new Set(numbers(auction, 'category'));
    assert.deepEqual([...categories].sort(), [10, 11, 12, 13, 14]);
  });

  test('prices: whole cents from $1 to $1,000,000, log-uniform; reserve above the initial bid', () => {
    const prices = numbers(bid, 'price');
    assert.ok(prices.every((p) => Number.isInteger(p) && p >= 100 && p <= 100_000_000));
    // 10^(6u) dollars: each decade holds a sixth of the bids
    for (let d = 0; d < 6; d++) {
      const share = prices.filter((p) => p >= 100 * 10 ** d && p < 100 * 10 ** (d + 1)).length / prices.length;
      assert.ok(Math.abs(share - 1 / 6) < 0.01, `decade ${d}: ${share}`);
    }
    const initial = numbers(auction, 'initial_bid');
    const reserve = numbers(auction, 'reserve');
    assert.ok(reserve.every((r, i) => r > initial[i]!));
  });

  test('channels, people, times', () => {
    const channels = strings(bid, 'channel');
    const hot = channels.filter((c) => ['Google', 'Facebook', 'Baidu', 'Apple'].includes(c)).length;
    assert.ok(Math.abs(hot / channels.length - 0.5) < 0.01, `hot channel share ${hot / channels.length}`);
    assert.ok(channels.every((c) => /^(Google|Facebook|Baidu|Apple|channel-\d{1,4})$/.test(c)));
    assert.ok(strings(person, 'email').every((e) => /^[a-z]{7}@[a-z]{5}\.com$/.test(e)));
    assert.ok(strings(person, 'state').every((s) => ['AZ', 'CA', 'ID', 'OR', 'WA', 'WY'].includes(s)));
    // event n at T0 + n·10 µs: 2 s for 200 000 events, in order in every stream
    assert.equal(spanMs, 2000);
    for (const b of [person, auction, bid]) {
      const ts = numbers(b, 'ts');
      assert.ok(ts.every((t, i) => t >= T0 && t < T0 + spanMs && (i === 0 || t >= ts[i - 1]!)));
    }
    const expires = numbers(auction, 'expires');
    const ts = numbers(auction, 'ts');
    // within twice the time 100 auctions take to open (1666 events = 16.66 ms here)
    assert.ok(expires.every((x, i) => x > ts[i]! && x <= ts[i]! + 1 + 2 * 16));
    const hotPeople = new Set(numbers(bid, 'bidder'));
    assert.ok(hotPeople.size > 1000, 'bidders beyond the hot ones');
    assert.equal(NEXMARK.totalProportion, 50);
  });
});

describe('Nexmark ring', () => {
  test('re-stamped payloads decode to the stream, lap after lap; a lap moves ids and times by its shifts', () => {
    const o = parseGenArgs(['--workload', 'nexmark', '--batch', '730', '--ring', '2000', '--rate', '50000', '--seed', '5', '--start', String(T0)]);
    const ring = makeNexmarkRing(o);
    // lcm(730, 50) = 3650 events a ring, 5 steps
    assert.equal(ring.ringEvents, 3650);
    assert.equal(ring.size, 5);
    const total = 3 * ring.ringEvents + 1000;
    const want = ring.events(total);
    const got: Record<NexmarkStream, Batch[]> = { person: [], auction: [], bid: [] };
    let sent = 0;
    for (let k = 0; sent < total; k++) {
      const rows = Math.min(730, total - sent);
      ring.step(k, rows).forEach((p, t) => {
        const s = NEXMARK_STREAM_NAMES[t]!;
        if (p !== null) got[s].push(decodeBatch(new Uint8Array(p.data), 'arrow', ring.schemas[s]));
      });
      sent += rows;
    }
    for (const s of NEXMARK_STREAM_NAMES) {
      const rows = got[s].flatMap((b) => Array.from({ length: b.length }, (_, i) => b.columns.map((c) => valueAt(c, i))));
      const expected = Array.from({ length: want[s].length }, (_, i) => want[s].columns.map((c) => valueAt(c, i)));
      assert.equal(rows.length, eventsOfType(total, NEXMARK_STREAM_NAMES.indexOf(s) as 0 | 1 | 2));
      assert.deepEqual(rows, expected, `${s}: decoded payloads differ from the stream`);
    }
    // lap 2 = lap 0 with ids and times shifted twice
    const shifts = lapShifts(ring.ringEvents, ring.spanMs);
    for (const s of NEXMARK_STREAM_NAMES) {
      const perLap = eventsOfType(ring.ringEvents, NEXMARK_STREAM_NAMES.indexOf(s) as 0 | 1 | 2);
      for (const [name, shift] of Object.entries(shifts[s])) {
        const c = col(want[s], name);
        for (let i = 0; i < perLap; i += 7) {
          const at = (j: number): number => (c.type === 'int64' ? int64At(c.words, j) : (valueAt(c, j) as number));
          assert.equal(at(2 * perLap + i), at(i) + 2 * shift, `${s}.${name} row ${i}`);
        }
      }
    }
    // another ring with the same options makes the same bytes
    const again = new NexmarkRing({ seed: 5, eventsPerSecond: 50_000, start: T0, batchRows: 730, ringEvents: 2000 });
    assert.deepEqual(again.step(7).map((p) => p?.data), makeNexmarkRing(o).step(7).map((p) => p?.data));
  });
});

// --- end to end against DuckDB ---------------------------------------------------------------------------

const runGen = (args: string[]): Promise<Ran> => runCli(['gen', '--json', ...args], { timeoutMs: 60_000 });

/** Rows as comparable text: numbers rounded to 9 significant digits (sums of doubles differ in the last bits). */
function canon(rows: readonly (readonly unknown[])[]): string[] {
  return rows.map((r) => JSON.stringify(r.map((v) => (typeof v === 'number' && !Number.isInteger(v) ? Number(v.toPrecision(9)) : typeof v === 'bigint' ? Number(v) : v)))).sort();
}

describe('Nexmark queries end to end', () => {
  test('gen --workload nexmark → q1 q2 q5 q7 q12 pipelines = DuckDB over the same events', async () => {
    const args = ['--workload', 'nexmark', '--events', '600000', '--batch', '20000', '--ring', '150000', '--rate', '0', '--event-rate', '20000', '--seed', '11', '--connections', '2', '--start', String(T0)];
    const config = nexmarkConfig({ dir: freshDir(), queries: NEXMARK_QUERY_NAMES, extra: { server: { host: '127.0.0.1', port: 0, maxPayload: '16MiB', sql: { maxRows: 1_000_000 } }, workers: { threads: 2 } } });
    const server = await startServer(config, { log: pino({ level: 'silent' }) });
    const duck = await openMemory();
    try {
      const ran = await runGen(['--url', `ws://127.0.0.1:${server.port}`, ...args]);
      assert.equal(ran.code, 0, ran.stderr);
      const summary = JSON.parse(ran.stdout) as GenSummary;
      assert.equal(summary.workload, 'nexmark');
      assert.equal(summary.stream, 'person,auction,bid');
      assert.equal(summary.eventsAcked, 600_000);
      // 30 steps, each with a batch for every stream
      assert.equal(summary.batchesAcked, 90);
      const flushed = await fetch(`${server.url}/v1/flush`, { method: 'POST' });
      assert.equal(flushed.status, 200, await flushed.text());
      const streams = (await (await fetch(`${server.url}/v1/streams`)).json()) as { streams: { name: string; events: number }[] };
      assert.deepEqual(Object.fromEntries(streams.streams.map((s) => [s.name, s.events])), { person: 12_000, auction: 36_000, bid: 552_000 });

      const events = makeNexmarkRing(parseGenArgs(args)).events(600_000);
      await loadIntoDuckDB(duck.conn, 'bid', events.bid);
      for (const q of NEXMARK_QUERY_NAMES) {
        const def = NEXMARK_QUERIES[q];
        const p = def.pipeline as { groupBy?: string[]; select: Record<string, string> };
        const cols = ['epoch_ms(window_start)', ...(p.groupBy ?? []), ...Object.keys(p.select)];
        const res = await fetch(`${server.url}/v1/sql`, { method: 'POST', body: JSON.stringify({ sql: `SELECT ${cols.join(', ')} FROM ${q}` }) });
        const body = (await res.json()) as { rows: unknown[][]; truncated?: boolean };
        assert.equal(res.status, 200, JSON.stringify(body));
        const want = await queryRows(duck.conn, def.duckdb);
        assert.ok(want.length > 0, `${q}: the oracle has rows`);
        assert.equal(body.rows.length, want.length, `${q}: row count`);
        assert.deepEqual(canon(body.rows), canon(want), `${q}: rows differ from DuckDB`);
      }
    } finally {
      duck.close();
      await server.close();
    }
  });
});
