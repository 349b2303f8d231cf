/**
 * The runtime against the DuckDB oracle, with events out of order (docs/pipelines.md):
 *
 * - disorder within maxOutOfOrder: nothing is late, and every pipeline's table is exactly the
 *   oracle over all events;
 * - some events far beyond maxOutOfOrder: the late ones — decided here in plain JS by the
 *   per-row definition (watermark before row r = max event time of every earlier row −
 *   maxOutOfOrder; tumbling / hopping: late for a window when window end + lateness ≤ that
 *   watermark; session: late when t < watermark − lateness) — are exactly the rows of
 *   `<pipeline>__late`, each with a reason; the results are the oracle over everything else;
 *   and nothing is lost: every selected event is counted in the results or listed as late.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Sluice } from '../../engine/runtime.js';
import { int64ToString, isValid, valueAt, type Batch, type Column } from '../../engine/schema.js';
import { openMemory } from '../helpers/duckdb.js';
import { mulberry32 } from '../helpers/random.js';
import {
  AGGS, BIDS_SCHEMA, T0, assertMatchesOracle, bidsConfig, encodeBatches, engineRows, eventTimes, feed, firstOnTimeWindow,
  freshDir, idsOf, loadOracleTable, makeEvents, oracleRows, removeFreshDirs, rowWatermarks, selectOf, sessionLate,
  type OracleCase, type PipelineDef,
} from '../helpers/oracle.js';

after(removeFreshDirs);

const MOO = 3000;
const TUMBLE = { size: 10_000, lateness: 1000 };
const HOP = { size: 10_000, slide: 2000, lateness: 1500 };
const SESS = { gap: 2000, lateness: 500 };

const PIPELINES: Record<string, PipelineDef> = {
  tumble: { where: "price > 10 and channel != 'spam'", window: { tumbling: '10s' }, groupBy: ['auction'], select: selectOf(AGGS), lateness: '1s' },
  hop: { window: { hopping: { size: '10s', slide: '2s' } }, groupBy: ['channel'], select: selectOf(AGGS), lateness: '1500ms' },
  sess: { where: 'qty is not null', window: { session: { gap: '2s' } }, groupBy: ['bidder'], select: selectOf(AGGS), lateness: '500ms' },
};

/** The `where` of each pipeline, evaluated in JS (SQL semantics: a null operand deselects). */
function selection(events: Batch): Record<'tumble' | 'hop' | 'sess', Uint8Array> {
  const n = events.length;
  const price = events.columns[BIDS_SCHEMA.index.get('price')!]!;
  const channel = events.columns[BIDS_SCHEMA.index.get('channel')!]!;
  const qty = events.columns[BIDS_SCHEMA.index.get('qty')!]!;
  assert.ok(price.type === 'float64' && channel.type === 'string' && qty.type === 'int32');
  const tumble = new Uint8Array(n), hop = new Uint8Array(n).fill(1), sess = new Uint8Array(n);
  for (let r = 0; r < n; r++) {
    const priceOk = price.valid?.[r] !== 0 && price.values[r]! > 10;
    const channelOk = channel.valid?.[r] !== 0 && channel.dict[channel.codes[r]!] !== 'spam';
    tumble[r] = priceOk && channelOk ? 1 : 0;
    sess[r] = qty.valid?.[r] !== 0 ? 1 : 0;
  }
  return { tumble, hop, sess };
}

interface Expected {
  /** per pipeline, the ids of the rows that must be in `<pipeline>__late` */
  late: Record<'tumble' | 'hop' | 'sess', Set<string>>;
  /** per pipeline, the sum of count() over the result table */
  counted: Record<'tumble' | 'hop' | 'sess', number>;
  /** per-row columns for the oracle table */
  columns: Record<string, Float64Array>;
}

/** The late rows and what the results must count, from the per-row definition alone. */
function expectations(events: Batch): Expected {
  const ts = eventTimes(events);
  const wm = rowWatermarks(ts, MOO);
  const sel = selection(events);
  const ids = idsOf(events);
  const n = events.length;
  const lateTumble = new Float64Array(n), kOkHop = new Float64Array(n), lateSess = new Float64Array(n);
  const late = { tumble: new Set<string>(), hop: new Set<string>(), sess: new Set<string>() };
  const counted = { tumble: 0, hop: 0, sess: 0 };
  const hops = HOP.size / HOP.slide;
  for (let r = 0; r < n; r++) {
    const t = ts[r]!;
    // tumbling: one window, k = ⌊t / size⌋; it is late when its end + lateness ≤ wm
    const kT = firstOnTimeWindow(t, wm[r]!, TUMBLE.size, TUMBLE.size, TUMBLE.lateness);
    lateTumble[r] = kT > Math.floor(t / TUMBLE.size) ? 1 : 0;
    if (sel.tumble[r] === 1) {
      if (lateTumble[r] === 1) late.tumble.add(ids[r]!);
      else counted.tumble++;
    }
    // hopping: the late windows are a prefix of the row's windows; the row is listed once in
    // __late when any window is late and still counts in its other windows
    const k0 = Math.floor((t - HOP.size) / HOP.slide) + 1;
    kOkHop[r] = firstOnTimeWindow(t, wm[r]!, HOP.size, HOP.slide, HOP.lateness);
    if (sel.hop[r] === 1) {
      if (kOkHop[r]! > k0) late.hop.add(ids[r]!);
      counted.hop += hops - (kOkHop[r]! - k0);
    }
    lateSess[r] = sessionLate(t, wm[r]!, SESS.lateness) ? 1 : 0;
    if (sel.sess[r] === 1) {
      if (lateSess[r] === 1) late.sess.add(ids[r]!);
      else counted.sess++;
    }
  }
  return { late, counted, columns: { wm, late_tumble: lateTumble, k_ok_hop: kOkHop, late_sess: lateSess } };
}

const CASES: Record<'tumble' | 'hop' | 'sess', OracleCase> = {
  tumble: { window: { kind: 'tumbling', size: TUMBLE.size }, groupBy: ['auction'], where: "price > 10 and channel != 'spam'", lateSql: 'late_tumble = 1', aggs: AGGS },
  hop: { window: { kind: 'hopping', size: HOP.size, slide: HOP.slide }, groupBy: ['channel'], lateSql: 'k < k_ok_hop', aggs: AGGS },
  sess: { window: { kind: 'session', gap: SESS.gap }, groupBy: ['bidder'], where: 'qty is not null', lateSql: 'late_sess = 1', aggs: AGGS },
};

/**
 * The raw columns of the given rows as LATE_SELECT returns them (int64 as text), in id order
 * (ids grow with the row number).
 */
function rawRows(events: Batch, ids: ReadonlySet<string>): unknown[][] {
  const all = idsOf(events);
  const cell = (c: Column, r: number): unknown =>
    c.type === 'int64' ? (isValid(c, r) ? int64ToString(c.words[2 * r]!, c.words[2 * r + 1]!) : null) : valueAt(c, r);
  const out: unknown[][] = [];
  for (let r = 0; r < events.length; r++) if (ids.has(all[r]!)) out.push(events.columns.map((c) => cell(c, r)));
  return out;
}

const LATE_SELECT = (p: string): string =>
  `SELECT id::VARCHAR, auction::VARCHAR, bidder::VARCHAR, price, channel, qty, flag, epoch_ms(ts), reason FROM "${p}__late" ORDER BY id`;

async function runEngine(events: Batch, rowsPerBatch: number, threads: number): Promise<Sluice> {
  const engine = await Sluice.open(bidsConfig({ dir: freshDir(), threads, pipelines: PIPELINES, maxOutOfOrder: `${MOO}ms` }));
  try {
    await feed(engine, 'bids', encodeBatches(events, rowsPerBatch, 'arrow'));
    await engine.flush();
  } catch (err) {
    await engine.close();
    throw err;
  }
  return engine;
}

/**
 * Event times that go back by up to exactly maxOutOfOrder from the largest so far (5 % of them
 * right on the watermark, which is still on time) and otherwise move ahead by 0–14 ms.
 */
function toTheEdge(events: Batch, seed: number): Batch {
  const ts = eventTimes(events);
  const rnd = mulberry32(seed);
  let max = T0;
  for (let r = 0; r < ts.length; r++) {
    const u = rnd();
    ts[r] = u < 0.05 ? max - MOO : u < 0.35 ? max - Math.floor(rnd() * (MOO + 1)) : max + Math.floor(rnd() * 15);
    if (ts[r]! > max) max = ts[r]!;
  }
  return events;
}

describe('oracle: disorder within maxOutOfOrder', () => {
  const events = toTheEdge(makeEvents({ seed: 11, n: 30_000, step: 7, disorder: 0 }), 11);
  let db: Awaited<ReturnType<typeof openMemory>>;
  let engine: Sluice;
  before(async () => {
    db = await openMemory();
    await loadOracleTable(db.conn, events);
    engine = await runEngine(events, 333, 2);
  });
  after(async () => {
    await engine?.close();
    db?.close();
  });

  for (const p of ['tumble', 'hop', 'sess'] as const) {
    test(`${p}: nothing is late and the table is the oracle over every event`, async () => {
      const want = await oracleRows(db.conn, { ...CASES[p], lateSql: 'false' });
      assertMatchesOracle(p, await engineRows(engine, p, CASES[p].groupBy, AGGS), want, AGGS);
      const late = await engine.query(`SELECT count(*) FROM "${p}__late"`);
      assert.equal(late.rows[0]![0], 0);
    });
  }

  test('the data reaches the boundary: events exactly maxOutOfOrder behind the largest so far, none late', () => {
    const ts = eventTimes(events);
    const wm = rowWatermarks(ts, MOO);
    let atWatermark = 0;
    for (let r = 0; r < ts.length; r++) if (ts[r] === wm[r]) atWatermark++;
    assert.ok(atWatermark > 1000, `only ${atWatermark} events sit on the watermark`);
    const { late } = expectations(events);
    assert.equal(late.tumble.size + late.hop.size + late.sess.size, 0);
  });
});

describe('oracle: events beyond maxOutOfOrder go to __late, exactly', () => {
  // 3 % of the events are sent back by up to 40 s: some stay on time (within maxOutOfOrder and
  // lateness), some are late for only the first of their hopping windows, many are late
  const events = makeEvents({ seed: 12, n: 30_000, step: 7, disorder: 1500, lateRate: 0.03, lateSpan: 40_000 });
  const expected = expectations(events);
  let db: Awaited<ReturnType<typeof openMemory>>;
  let engine: Sluice;
  before(async () => {
    db = await openMemory();
    await loadOracleTable(db.conn, events, expected.columns);
    engine = await runEngine(events, 333, 2);
  });
  after(async () => {
    await engine?.close();
    db?.close();
  });

  test('the data has late events of every kind', () => {
    for (const p of ['tumble', 'hop', 'sess'] as const) assert.ok(expected.late[p].size > 100, `${p}: only ${expected.late[p].size} late events`);
    // hopping rows late for some but not all of their windows
    const ts = eventTimes(events);
    const wm = expected.columns['wm']!;
    let partly = 0;
    for (let r = 0; r < ts.length; r++) {
      const k0 = Math.floor((ts[r]! - HOP.size) / HOP.slide) + 1;
      const k1 = Math.floor(ts[r]! / HOP.slide);
      const ok = firstOnTimeWindow(ts[r]!, wm[r]!, HOP.size, HOP.slide, HOP.lateness);
      if (ok > k0 && ok <= k1) partly++;
    }
    assert.ok(partly > 20, `only ${partly} hopping rows are late for part of their windows`);
  });

  for (const p of ['tumble', 'hop', 'sess'] as const) {
    test(`${p}: __late holds exactly the late rows, with their raw columns and a reason`, async () => {
      const { rows } = await engine.query(LATE_SELECT(p));
      const got = new Set(rows.map((r) => String(r[0])));
      assert.equal(got.size, rows.length, 'a late row is listed twice');
      const missing = [...expected.late[p]].filter((id) => !got.has(id));
      const extra = [...got].filter((id) => !expected.late[p].has(id));
      assert.deepEqual({ missing: missing.slice(0, 5), extra: extra.slice(0, 5) }, { missing: [], extra: [] }, `${p}: ${missing.length} missing, ${extra.length} extra`);
      assert.deepStrictEqual(rows.map((r) => r.slice(0, 8)), rawRows(events, expected.late[p]));
      for (const r of rows) assert.ok(typeof r[8] === 'string' && r[8].length > 10, `row ${String(r[0])}: reason ${JSON.stringify(r[8])}`);
    });

    test(`${p}: the table is the oracle over the events that are not late, and nothing is lost`, async () => {
      const want = await oracleRows(db.conn, CASES[p]);
      assertMatchesOracle(p, await engineRows(engine, p, CASES[p].groupBy, AGGS), want, AGGS);
      const { rows } = await engine.query(`SELECT (SELECT sum(n) FROM "${p}")::BIGINT, (SELECT count(*) FROM "${p}__late")`);
      assert.equal(rows[0]![0], expected.counted[p], `${p}: sum of count() over the results`);
      assert.equal(rows[0]![1], expected.late[p].size);
      if (p !== 'hop') {
        // every selected event is in exactly one of the two tables
        const selected = [...selection(events)[p]].reduce((a, b) => a + b, 0);
        assert.equal(Number(rows[0]![0]) + Number(rows[0]![1]), selected);
      }
    });
  }

  test('metrics: the late-event counters match the tables', () => {
    const s = engine.snapshot();
    for (const p of ['tumble', 'hop', 'sess'] as const) assert.equal(s.lateEvents[p], expected.late[p].size, p);
  });
});
