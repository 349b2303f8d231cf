/**
 * The runtime end to end (engine/runtime.ts): determinism across batch sizes, wire formats and
 * worker counts (DESIGN.md A3); worker faults, bad batches, limits and backpressure; the
 * 'windows' event and the Parquet export. The DuckDB oracle with late events is in
 * runtime-late.test.ts, restarts in runtime-restart.test.ts, kill -9 in runtime-crash.test.ts.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { Sluice, type IngestResult, type WindowsEvent } from '../../engine/runtime.js';
import { SluiceError } from '../../engine/errors.js';
import { int64ToString, sliceBatch, valueAt, type Batch } from '../../engine/schema.js';
import { encodeArrow } from '../../native-free-kernels/encode-arrow.js';
import { encodeMsgpackColumns, encodeMsgpackRows } from '../../native-free-kernels/encode-msgpack.js';
import { encodeNdjson } from '../../native-free-kernels/encode-json.js';
import { openMemory, queryRows } from '../helpers/duckdb.js';
import {
  AGGS, BIDS_SCHEMA, bidsConfig, encodeBatches, eventTimes, feed, freshDir, makeEvents, removeFreshDirs, selectOf, tableRows,
  type PipelineDef, type WireFormat,
} from '../helpers/oracle.js';

after(removeFreshDirs);

const PIPELINES: Record<string, PipelineDef> = {
  tumble: { where: "price > 10 and channel != 'spam'", window: { tumbling: '10s' }, groupBy: ['auction'], select: selectOf(AGGS), lateness: '1s' },
  hop: { window: { hopping: { size: '10s', slide: '2s' } }, groupBy: ['channel'], select: selectOf(AGGS) },
  sess: { where: 'qty is not null', window: { session: { gap: '2s' } }, groupBy: ['bidder'], select: selectOf(AGGS), lateness: '500ms' },
};
const TABLES = ['tumble', 'hop', 'sess', 'tumble__late', 'hop__late', 'sess__late'];

describe('determinism: batch sizes, formats and worker threads give identical tables', () => {
  // 70 000 events over ~6 minutes of event time: disorder up to maxOutOfOrder (2 s), and 1 %
  // sent back up to 30 s, most of them late for some pipeline. 65 536-row batches need more
  // than 65 536 events to be more than one batch.
  const events = makeEvents({ seed: 7, n: 70_000, step: 5, disorder: 2000, lateRate: 0.01, lateSpan: 30_000 });
  const encoded = new Map<string, ReturnType<typeof encodeBatches>>();
  const payloads = (size: number, wire: WireFormat): ReturnType<typeof encodeBatches> => {
    const key = `${size}/${wire}`;
    let p = encoded.get(key);
    if (p === undefined) {
      p = encodeBatches(events, size, wire);
      encoded.set(key, p);
    }
    return p;
  };
  const engines: Sluice[] = [];
  after(async () => {
    for (const e of engines) await e.close();
  });

  /** The matrix: every batch size at 2 threads, every thread count at 1000 rows, and the row formats. */
  const RUNS: { size: number; wire: WireFormat; threads: number }[] = [
    { size: 1000, wire: 'arrow', threads: 2 },
    { size: 1, wire: 'msgpack-rows', threads: 2 },
    { size: 7, wire: 'arrow', threads: 2 },
    { size: 65_536, wire: 'arrow-dict', threads: 2 },
    { size: 1000, wire: 'arrow', threads: 1 },
    { size: 1000, wire: 'arrow', threads: 4 },
    { size: 7, wire: 'ndjson', threads: 4 },
    { size: 1000, wire: 'msgpack-cols', threads: 1 },
  ];
  let reference: Map<string, unknown[][]> | null = null;

  for (const run of RUNS) {
    test(`${run.size}-row batches, ${run.wire}, ${run.threads} thread(s)`, async (t) => {
      const batches = payloads(run.size, run.wire);
      const t0 = performance.now();
      const engine = await Sluice.open(bidsConfig({ dir: freshDir(), threads: run.threads, pipelines: PIPELINES }));
      engines.push(engine);
      const acks = await feed(engine, 'bids', batches);
      assert.deepEqual(acks.map((a) => a.seq), batches.map((_, i) => i + 1), 'seqs follow the order of ingest calls');
      assert.equal(acks.reduce((n, a) => n + a.rows, 0), events.length);
      await engine.flush();
      const tables = new Map<string, unknown[][]>();
      for (const name of TABLES) tables.set(name, await tableRows(engine, name));
      await engine.close();
      t.diagnostic(`${batches.length} batches in ${Math.round(performance.now() - t0)} ms; rows: ${TABLES.map((n) => `${n} ${tables.get(n)!.length}`).join(', ')}`);
      if (reference === null) {
        reference = tables;
        for (const name of TABLES) assert.ok(tables.get(name)!.length > 0, `${name} is empty: the data does not exercise it`);
        return;
      }
      for (const name of TABLES) assert.deepStrictEqual(tables.get(name), reference.get(name), `${name} differs from the first run`);
    });
  }
});

// --- faults and limits ---------------------------------------------------------------------------

const BY_CHANNEL: Record<string, PipelineDef> = {
  by_channel: { window: { tumbling: '1s' }, groupBy: ['channel'], select: { n: 'count()', q: 'sum(qty)' } },
};

/** Every row of the batch in channel 'POISON': if any of it is applied, a POISON group shows up. */
function poisoned(batch: Batch): Batch {
  const c = BIDS_SCHEMA.index.get('channel')!;
  return { ...batch, columns: batch.columns.map((col, i) => (i === c ? { type: 'string', codes: new Int32Array(batch.length), dict: ['POISON'], valid: null } : col)) };
}

/** A copy of the batch whose event time is null at one row. */
function nullTimestampAt(batch: Batch, row: number): Batch {
  const t = BIDS_SCHEMA.index.get('ts')!;
  const valid = new Uint8Array(batch.length).fill(1);
  valid[row] = 0;
  return { ...batch, columns: batch.columns.map((col, i) => (i === t ? { type: 'timestamp', values: eventTimes(batch), valid } : col)) };
}

/** Expected (window start, channel) → count over the given batches. */
function countsByWindowAndChannel(parts: readonly Batch[]): Map<string, number> {
  const out = new Map<string, number>();
  for (const b of parts) {
    const ts = eventTimes(b);
    const ch = b.columns[BIDS_SCHEMA.index.get('channel')!]!;
    assert.ok(ch.type === 'string');
    for (let r = 0; r < b.length; r++) {
      const key = JSON.stringify([Math.floor(ts[r]! / 1000) * 1000, ch.valid?.[r] === 0 ? null : ch.dict[ch.codes[r]!]]);
      out.set(key, (out.get(key) ?? 0) + 1);
    }
  }
  return out;
}

async function tableCounts(engine: Sluice): Promise<Map<string, number>> {
  const { rows } = await engine.query('SELECT epoch_ms(window_start), channel, n FROM by_channel');
  return new Map(rows.map((r) => [JSON.stringify([Number(r[0]), r[1]]), Number(r[2])]));
}

async function rejection(p: Promise<unknown>): Promise<SluiceError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof SluiceError, `expected a SluiceError, got ${String(err)}`);
    return err;
  }
  assert.fail('expected a rejection');
}

describe('faults and limits', () => {
  const events = makeEvents({ seed: 5, n: 6000, step: 5, disorder: 500 });
  const part = (i: number): Batch => sliceBatch(events, i * 1000, (i + 1) * 1000);
  const arrow = (b: Batch): Uint8Array => encodeArrow(b);
  const engines: Sluice[] = [];
  const open = async (extra: Partial<Parameters<typeof bidsConfig>[0]> = {}): Promise<Sluice> => {
    const e = await Sluice.open(bidsConfig({ dir: freshDir(), threads: 2, pipelines: BY_CHANNEL, ...extra }));
    engines.push(e);
    return e;
  };
  let faultsBefore: string | undefined;
  before(() => {
    faultsBefore = process.env.SLUICE_TEST_FAULTS;
  });
  after(async () => {
    if (faultsBefore === undefined) delete process.env.SLUICE_TEST_FAULTS;
    else process.env.SLUICE_TEST_FAULTS = faultsBefore;
    for (const e of engines) await e.close();
  });

  test('injectFault refuses to work without SLUICE_TEST_FAULTS=1', async () => {
    delete process.env.SLUICE_TEST_FAULTS;
    const engine = await open();
    assert.throws(() => engine.injectFault('bids', 'crash'), /SLUICE_TEST_FAULTS=1/);
  });

  test("a worker that crashes or runs out of memory fails only its batch: SLUICE_WORKER_FAILED, the rest goes on", async () => {
    // the pool workers read the variable when they start, i.e. in Sluice.open
    process.env.SLUICE_TEST_FAULTS = '1';
    const engine = await open();
    engine.injectFault('bids', 'crash');
    const crashed = await rejection(engine.ingest('bids', arrow(part(0)), 'arrow'));
    assert.equal(crashed.code, 'SLUICE_WORKER_FAILED');
    assert.match(crashed.message, /batch 1 of 'bids'.*send it again/);
    const first = await feed(engine, 'bids', [part(1), part(2)].map((b) => ({ bytes: arrow(b), format: 'arrow' as const })));
    assert.deepEqual(first.map((a) => a.seq), [2, 3]);

    engine.injectFault('bids', 'oom');
    const oom = await rejection(engine.ingest('bids', arrow(part(3)), 'arrow'));
    assert.equal(oom.code, 'SLUICE_WORKER_FAILED');
    assert.match(oom.message, /memory/i);
    await feed(engine, 'bids', [part(4), part(5)].map((b) => ({ bytes: arrow(b), format: 'arrow' as const })));
    await engine.flush();

    assert.deepEqual(await tableCounts(engine), countsByWindowAndChannel([part(1), part(2), part(4), part(5)]));
    const s = engine.snapshot();
    assert.equal(s.workerFailures, 2);
    assert.equal(s.batchesRejected['bids']!['SLUICE_WORKER_FAILED'], 2);
    assert.equal(s.ingestEvents['bids'], 4000);
  });

  test('a malformed batch among good ones is rejected whole with its SLUICE_BATCH_* code; the others are applied', async () => {
    const engine = await open();
    const ndjson = new TextDecoder().decode(encodeNdjson(sliceBatch(poisoned(part(1)), 0, 10))).split('\n');
    // line 7 of 10: qty is text; lines 1–6 are valid and must not be applied either
    ndjson[6] = ndjson[6]!.replace(/"qty":(-?\d+|null)/, '"qty":"many"');
    assert.match(ndjson[6]!, /"qty":"many"/);
    const toCut = encodeArrow(sliceBatch(poisoned(part(3)), 0, 10));
    const payloads: { bytes: Uint8Array; format: 'arrow' | 'msgpack' | 'ndjson'; code: string | null }[] = [
      { bytes: arrow(part(0)), format: 'arrow', code: null },
      { bytes: toCut.subarray(0, toCut.length - 40), format: 'arrow', code: 'SLUICE_BATCH_MALFORMED' },
      { bytes: arrow(part(4)), format: 'arrow', code: null },
      { bytes: new TextEncoder().encode(ndjson.join('\n')), format: 'ndjson', code: 'SLUICE_BATCH_TYPE_MISMATCH' },
      // MessagePack rows, the event time of row 3 null
      { bytes: encodeMsgpackRows(nullTimestampAt(sliceBatch(poisoned(part(2)), 0, 10), 3)), format: 'msgpack', code: 'SLUICE_BATCH_BAD_TIMESTAMP' },
      { bytes: arrow(part(5)), format: 'arrow', code: null },
    ];
    // all sent without waiting, so the bad ones share worker tasks with good ones
    const results = await Promise.allSettled(payloads.map((p) => engine.tryIngest('bids', p.bytes, p.format)!));
    results.forEach((r, i) => {
      const want = payloads[i]!.code;
      if (want === null) assert.equal(r.status, 'fulfilled', `batch ${i}: ${r.status === 'rejected' ? String(r.reason) : ''}`);
      else {
        assert.equal(r.status, 'rejected', `batch ${i} was accepted`);
        const err = (r as PromiseRejectedResult).reason as SluiceError;
        assert.ok(err instanceof SluiceError);
        assert.equal(err.code, want, err.message);
      }
    });
    // an unknown binary format is refused before it gets a seq
    const junk = await rejection(engine.ingest('bids', new Uint8Array([0x42, 1, 2, 3]), 'binary'));
    assert.equal(junk.code, 'SLUICE_BATCH_UNKNOWN_FORMAT');
    const tail = sliceBatch(events, 5990, 6000);
    const next = await engine.ingest('bids', encodeMsgpackColumns(tail), 'binary');
    assert.equal(next.seq, payloads.length + 1);
    await engine.flush();
    const counts = await tableCounts(engine);
    assert.ok(![...counts.keys()].some((k) => k.includes('POISON')), 'rows of a rejected batch were applied');
    assert.deepEqual(counts, countsByWindowAndChannel([part(0), part(4), part(5), tail]));
    const rejected = engine.snapshot().batchesRejected['bids']!;
    assert.deepEqual(rejected, { SLUICE_BATCH_MALFORMED: 1, SLUICE_BATCH_TYPE_MISMATCH: 1, SLUICE_BATCH_BAD_TIMESTAMP: 1 });
  });

  test('unknown stream, too large, and after close', async () => {
    const engine = await open({ server: { maxPayload: '1MiB' } });
    const small = arrow(part(0));
    assert.equal((await rejection(engine.ingest('asks', small, 'arrow'))).code, 'SLUICE_UNKNOWN_STREAM');
    assert.throws(() => engine.tryIngest('asks', small, 'arrow'), { code: 'SLUICE_UNKNOWN_STREAM' });
    const big = new Uint8Array((1 << 20) + 1);
    big.set(small);
    assert.equal((await rejection(engine.ingest('bids', big, 'arrow'))).code, 'SLUICE_PAYLOAD_TOO_LARGE');
    assert.throws(() => engine.tryIngest('bids', big, 'arrow'), { code: 'SLUICE_PAYLOAD_TOO_LARGE' });
    // exactly maxPayload is allowed (NDJSON padded with blank lines), and a refused batch used no seq
    const exact = new Uint8Array(1 << 20).fill(0x0a);
    exact.set(encodeNdjson(part(0)));
    const ok = await engine.ingest('bids', exact, 'ndjson');
    assert.deepEqual(ok, { seq: 1, rows: 1000 });

    // batches received before close() are processed, not dropped
    const pending = [1, 2, 3].map((i) => engine.ingest('bids', arrow(part(i)), 'arrow'));
    const closing = engine.close();
    assert.equal((await rejection(engine.ingest('bids', small, 'arrow'))).code, 'SLUICE_SHUTTING_DOWN');
    assert.throws(() => engine.tryIngest('bids', small, 'arrow'), { code: 'SLUICE_SHUTTING_DOWN' });
    assert.deepEqual((await Promise.all(pending)).map((a) => a.seq), [2, 3, 4]);
    await closing;
    assert.equal((await rejection(engine.ingest('bids', small, 'arrow'))).code, 'SLUICE_SHUTTING_DOWN');
    assert.equal((await rejection(engine.flush())).code, 'SLUICE_SHUTTING_DOWN');
    assert.equal((await rejection(engine.query('SELECT 1'))).code, 'SLUICE_SHUTTING_DOWN');
    await engine.close(); // a second close is a no-op

    const again = await Sluice.open(engine.config);
    engines.push(again);
    assert.equal(again.snapshot().committed['bids']?.seq, 4);
    await again.flush();
    assert.deepEqual(await tableCounts(again), countsByWindowAndChannel([0, 1, 2, 3].map(part)));
  });

  test('backpressure: a full queue makes tryIngest answer null and ingest wait, in call order; memory stays bounded', async () => {
    const engine = await open({ threads: 1, workers: { queue: '2MiB' }, server: { maxPayload: '1MiB' } });
    // ~0.9 MiB Arrow batches with increasing event times
    const BIG = 16_000;
    const many = makeEvents({ seed: 6, n: 60 * BIG, step: 1, disorder: 0 });
    const big = Array.from({ length: 60 }, (_, i) => encodeArrow(sliceBatch(many, i * BIG, (i + 1) * BIG)));
    assert.ok(big.every((b) => b.length > 800_000 && b.length <= 1 << 20), `batch sizes ${big[0]!.length}`);
    const snap = engine.snapshot();
    // documented: the slab is at least 16 MiB, and there are at least two
    assert.equal(snap.arenaBytesCapacity, 32 << 20);

    const accepted: Promise<IngestResult>[] = [];
    let maxInUse = 0;
    let i = 0;
    for (; i < big.length; i++) {
      const p = engine.tryIngest('bids', big[i]!, 'arrow');
      maxInUse = Math.max(maxInUse, engine.snapshot().arenaBytesInUse);
      if (p === null) break;
      accepted.push(p);
    }
    assert.ok(i < big.length, 'the queue never filled');
    assert.ok(accepted.length >= 2 && accepted.length * 800_000 <= 32 << 20, `${accepted.length} batches accepted`);
    assert.equal(engine.full, true);
    assert.equal(engine.tryIngest('bids', big[i]!, 'arrow'), null);

    // ingest waits for space (a batch is copied into the arena synchronously when admitted); a
    // smaller batch sent after it must not overtake it
    const inUse = engine.snapshot().arenaBytesInUse;
    const waiting = engine.ingest('bids', big[i]!, 'arrow');
    assert.equal(engine.snapshot().arenaBytesInUse, inUse, 'ingest did not wait for space');
    const tiny = engine.ingest('bids', encodeArrow(sliceBatch(many, (i + 1) * BIG, (i + 1) * BIG + 1)), 'arrow');
    const [w, t] = await Promise.all([waiting, tiny]);
    assert.equal(w.seq, accepted.length + 1);
    assert.equal(t.seq, accepted.length + 2, 'a later, smaller batch overtook a waiting one');
    for (const a of await Promise.all(accepted)) assert.equal(a.rows, BIG);

    // and the rest, through ingest() only, sampling memory as it goes
    const rest: Promise<IngestResult>[] = [];
    for (let j = i + 2; j < big.length; j++) {
      rest.push(engine.ingest('bids', big[j]!, 'arrow'));
      maxInUse = Math.max(maxInUse, engine.snapshot().arenaBytesInUse);
    }
    const sampler = setInterval(() => void (maxInUse = Math.max(maxInUse, engine.snapshot().arenaBytesInUse)), 1);
    await Promise.all(rest);
    clearInterval(sampler);
    assert.ok(maxInUse <= 32 << 20, `arena use ${maxInUse}`);
    await engine.flush();
    const { rows } = await engine.query('SELECT sum(n)::BIGINT FROM by_channel');
    assert.equal(rows[0]![0], (big.length - 1) * BIG + 1);
  });

  test('checkpoint() and flush() also wait for ingest() calls still waiting for space: a graceful stop answers every batch it took', async () => {
    const engine = await open({ threads: 1, workers: { queue: '2MiB' }, server: { maxPayload: '1MiB' } });
    const BIG = 16_000;
    const many = makeEvents({ seed: 8, n: 60 * BIG, step: 1, disorder: 0 });
    const big = Array.from({ length: 60 }, (_, i) => encodeArrow(sliceBatch(many, i * BIG, (i + 1) * BIG)));
    const settled = new Set<number>();
    const calls = big.map((b, k) => engine.ingest('bids', b, 'arrow').then((r) => (settled.add(k), r)));
    assert.ok(engine.full, 'the arena never filled: nothing waited');
    await engine.checkpoint();
    assert.equal(settled.size, big.length, `${big.length - settled.size} ingest() calls unanswered after checkpoint()`);
    // the checkpoint's positions cover all of them
    const rows = (await Promise.all(calls)).reduce((n, r) => n + r.rows, 0);
    assert.equal(rows, big.length * BIG);
    await engine.flush();
    const { rows: sum } = await engine.query('SELECT sum(n)::BIGINT FROM by_channel');
    assert.equal(sum[0]![0], big.length * BIG);
  });
});

// --- the 'windows' event and Parquet ------------------------------------------------------------

describe("the 'windows' event and the Parquet export", () => {
  const PIPES: Record<string, PipelineDef> = {
    tumble: {
      where: 'price > 0', window: { tumbling: '1s' }, groupBy: ['channel', 'auction'],
      select: { n: 'count()', s: 'sum(price)', f: 'first(price)', acd: 'approx_count_distinct(bidder)' },
    },
    sess: { window: { session: { gap: '300ms' } }, groupBy: ['bidder'], select: { n: 'count()', mx: 'max(ts)', v: 'var(qty)' }, lateness: '200ms' },
  };
  const KEYS: Record<string, string[]> = { tumble: ['channel', 'auction'], sess: ['bidder'] };
  const VALUES: Record<string, string[]> = { tumble: ['n', 's', 'f', 'acd'], sess: ['n', 'mx', 'v'] };
  const events = makeEvents({ seed: 9, n: 20_000, step: 5, disorder: 1000, lateRate: 0.01, lateSpan: 5000 });
  const dir = freshDir();
  let engine: Sluice;
  const delivered = new Map<string, unknown[][]>([['tumble', []], ['sess', []]]);
  const selectSql = (p: string, from: string): string =>
    `SELECT epoch_ms(window_start), epoch_ms(window_end), ${KEYS[p]!.map((k) => `"${k}"::VARCHAR`).join(', ')}, ${VALUES[p]!.join(', ')} FROM ${from} ORDER BY ALL`;
  const parquetGlob = (p: string): string => `read_parquet('${join(dir, 'parquet', p)}/*.parquet')`;
  const tables = new Map<string, unknown[][]>();

  before(async () => {
    engine = await Sluice.open(bidsConfig({ dir, threads: 2, pipelines: PIPES, storage: { parquet: { every: '1s' } } }));
    engine.on('windows', (e: WindowsEvent) => {
      const r = e.result;
      for (let i = 0; i < r.rows; i++) {
        delivered.get(e.pipeline)!.push([
          r.windowStart[i], r.windowEnd[i],
          ...r.keys.map((k) => (valueAt(k, i) === null ? null : k.type === 'int64' ? int64ToString(k.words[2 * i]!, k.words[2 * i + 1]!) : String(valueAt(k, i)))),
          ...r.values.map((v) => (v.valid[i] === 1 ? v.values[i]! : null)),
        ]);
      }
    });
    await feed(engine, 'bids', encodeBatches(events, 500, 'arrow'));
    await engine.flush();
    for (const p of ['tumble', 'sess']) tables.set(p, (await engine.query(selectSql(p, p))).rows);
  });
  after(async () => {
    await engine.close();
  });

  for (const p of ['tumble', 'sess']) {
    test(`${p}: every emitted window was delivered once, as it is in the table`, () => {
      const table = tables.get(p)!;
      assert.ok(table.length > 100);
      const got = delivered.get(p)!.map((r) => JSON.stringify(r)).sort();
      const want = table.map((r) => JSON.stringify(r.map((v, i) => (i < 2 ? Number(v) : v)))).sort();
      assert.equal(new Set(got).size, got.length, 'a window was delivered twice');
      assert.deepEqual(got, want);
      assert.equal(engine.snapshot().windowsEmitted[p], table.length);
    });
  }

  test('Parquet: closed ranges are exported while running, and everything is once the engine closes', async () => {
    // the periodic export (every 1s) writes ranges that can no longer change
    const deadline = Date.now() + 5000;
    let running: unknown[][] = [];
    while (Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 250));
      if (!existsSync(join(dir, 'parquet', 'tumble'))) continue;
      running = (await engine.query(selectSql('tumble', parquetGlob('tumble')))).rows;
      if (running.length > 0) break;
    }
    assert.ok(running.length > 0, 'no Parquet file after 5 s');
    const table = new Set(tables.get('tumble')!.map((r) => JSON.stringify(r)));
    for (const r of running) assert.ok(table.has(JSON.stringify(r)), `Parquet row ${JSON.stringify(r)} is not in the table`);

    await engine.close();
    for (const p of ['tumble', 'sess']) {
      const files = readdirSync(join(dir, 'parquet', p));
      assert.ok(files.length > 1 && files.every((f) => f.endsWith('.parquet')), `${p}: ${files.join(', ')}`);
    }
    const db = await openMemory();
    try {
      for (const p of ['tumble', 'sess']) {
        const fromParquet = (await queryRows(db.conn, selectSql(p, parquetGlob(p)))).map((r) => JSON.stringify(r.map((v) => (typeof v === 'bigint' ? Number(v) : v))));
        const fromTable = tables.get(p)!.map((r) => JSON.stringify(r));
        const inParquet = new Set(fromParquet);
        const missing = fromTable.filter((r) => !inParquet.has(r));
        assert.deepEqual(missing.slice(0, 3), [], `${p}: ${missing.length} of ${fromTable.length} table rows are not in Parquet`);
        assert.deepEqual(fromParquet, fromTable, `${p}: Parquet ≠ table`);
      }
    } finally {
      db.close();
    }
  });
});
