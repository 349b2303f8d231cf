/**
 * Graceful stop and restart (DESIGN.md A6: "graceful stop — nothing lost: state checkpointed and
 * restored at start"): a stream ingested in parts, with `close()` and a reopen of the same data
 * directory between the parts, gives exactly the tables of one uninterrupted run — windows open
 * at a stop continue, nothing is lost or counted twice, late events are decided the same way.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { DuckDBBlobValue, DuckDBInstance } from '@duckdb/node-api';
import { decodeCheckpoint } from '../../engine/checkpoint.js';
import { Sluice } from '../../engine/runtime.js';
import { encodeSlc1 } from '../helpers/slc1.js';
import {
  AGGS, bidsConfig, encodeBatches, eventTimes, feed, freshDir, makeEvents, removeFreshDirs, selectOf, tableRows, type PipelineDef,
} from '../helpers/oracle.js';

after(removeFreshDirs);

const PIPELINES: Record<string, PipelineDef> = {
  tumble: { where: "price > 10 and channel != 'spam'", window: { tumbling: '10s' }, groupBy: ['auction'], select: selectOf(AGGS), lateness: '1s' },
  hop: { window: { hopping: { size: '10s', slide: '2s' } }, groupBy: ['channel'], select: selectOf(AGGS) },
  sess: { where: 'qty is not null', window: { session: { gap: '2s' } }, groupBy: ['bidder'], select: selectOf(AGGS), lateness: '500ms' },
};
const TABLES = ['tumble', 'hop', 'sess', 'tumble__late', 'hop__late', 'sess__late'];
const ROWS_PER_BATCH = 500;

const events = makeEvents({ seed: 21, n: 30_000, step: 7, disorder: 2000, lateRate: 0.02, lateSpan: 30_000 });
const batches = encodeBatches(events, ROWS_PER_BATCH, 'arrow');

async function allTables(engine: Sluice, names: readonly string[] = TABLES): Promise<Map<string, unknown[][]>> {
  const out = new Map<string, unknown[][]>();
  for (const name of names) out.set(name, await tableRows(engine, name));
  return out;
}

async function storedParts(engine: Sluice): Promise<number> {
  return Number((await engine.query('SELECT count(*) FROM sluice_state_parts')).rows[0]![0]);
}

let reference: Map<string, unknown[][]>;

before(async () => {
  const engine = await Sluice.open(bidsConfig({ dir: freshDir(), threads: 2, pipelines: PIPELINES }));
  try {
    await feed(engine, 'bids', batches);
    await engine.flush();
    reference = await allTables(engine);
  } finally {
    await engine.close();
  }
  for (const name of TABLES) assert.ok(reference.get(name)!.length > 0, `${name} is empty in the reference run`);
});

describe('restart after a graceful stop', () => {
  for (const ack of ['accepted', 'durable'] as const) {
    test(`ack: ${ack} — stopped twice mid-stream, the tables equal one uninterrupted run`, async () => {
      const dir = freshDir();
      const config = bidsConfig({ dir, threads: 2, pipelines: PIPELINES, ack });
      // cut points inside windows and sessions, not on batch boundaries of any window size
      const cuts = [0, 19, 41, batches.length];
      let firstStop: Map<string, unknown[][]> | null = null;
      for (let part = 0; part < cuts.length - 1; part++) {
        const engine = await Sluice.open(config);
        try {
          const before = engine.snapshot().committed['bids'];
          assert.equal(before?.seq ?? 0, cuts[part]!, `part ${part}: restored position`);
          const acks = await feed(engine, 'bids', batches.slice(cuts[part], cuts[part + 1]));
          // batch seqs continue where the previous run stopped
          assert.deepEqual(acks.map((a) => a.seq), acks.map((_, i) => cuts[part]! + i + 1));
          if (part === cuts.length - 2) {
            await engine.flush();
            const tables = await allTables(engine);
            for (const name of TABLES) assert.deepStrictEqual(tables.get(name), reference.get(name), `${name} differs from the uninterrupted run`);
          } else if (part === 0) {
            // acks mean processed, not committed: commit before looking at the tables
            await engine.checkpoint();
            firstStop = await allTables(engine);
          }
        } finally {
          await engine.close();
        }
      }
      // the first stop really left windows open: it had emitted some of the final rows, not all
      for (const name of ['tumble', 'hop', 'sess']) {
        const early = firstStop!.get(name)!;
        const final = new Set(reference.get(name)!.map((r) => JSON.stringify(r)));
        assert.ok(early.length > 0 && early.length < final.size, `${name}: ${early.length} rows at the first stop of ${final.size}`);
        for (const r of early) assert.ok(final.has(JSON.stringify(r)), `${name}: row ${JSON.stringify(r)} emitted before the stop is not in the final table`);
      }
    });
  }

  test('checkpointed after every batch with windows open for long (incremental checkpoints), stopped mid-stream: the tables equal one uninterrupted run', async () => {
    // 2 s windows kept open 20 s past their end: most open windows are unchanged from one
    // checkpoint to the next and stay in the parts an earlier checkpoint stored
    const pipelines: Record<string, PipelineDef> = {
      tumble: { window: { tumbling: '2s' }, groupBy: ['auction'], select: selectOf(AGGS), lateness: '20s' },
      hop: { window: { hopping: { size: '4s', slide: '1s' } }, groupBy: ['channel'], select: selectOf(AGGS), lateness: '20s' },
    };
    const tables = ['tumble', 'hop', 'tumble__late', 'hop__late'];
    const run = async (dir: string, cuts: readonly number[]): Promise<Map<string, unknown[][]>> => {
      let out = new Map<string, unknown[][]>();
      for (let part = 0; part < cuts.length - 1; part++) {
        const engine = await Sluice.open(bidsConfig({ dir, threads: 2, pipelines }));
        try {
          assert.equal(engine.snapshot().committed['bids']?.seq ?? 0, cuts[part]!, `part ${part}: restored position`);
          for (let b = cuts[part]!; b < cuts[part + 1]!; b++) {
            await feed(engine, 'bids', batches.slice(b, b + 1));
            await engine.checkpoint();
          }
          if (part === cuts.length - 2) {
            await engine.flush();
            out = await allTables(engine, tables);
            assert.ok(await storedParts(engine) > 0, 'the checkpoints stored parts');
          }
        } finally {
          await engine.close();
        }
      }
      return out;
    };
    const once = await run(freshDir(), [0, 40]);
    const stopped = await run(freshDir(), [0, 23, 31, 40]);
    for (const name of tables) {
      assert.ok(once.get(name)!.length > 0 || name.endsWith('__late'), `${name} is empty`);
      assert.deepStrictEqual(stopped.get(name), once.get(name), `${name} differs from the uninterrupted run`);
    }
  });

  test('a data directory of storage format 1 (whole-state SLC1 checkpoint) restores, is upgraded, and ends like one uninterrupted run', async () => {
    const dir = freshDir();
    const config = bidsConfig({ dir, threads: 2, pipelines: PIPELINES });
    let engine = await Sluice.open(config);
    try {
      await feed(engine, 'bids', batches.slice(0, 27));
    } finally {
      await engine.close();
    }
    // rewrite the file as format 1 wrote it: the state inline in the checkpoint row, no parts tables
    const file = join(dir, 'sluice.duckdb');
    const db = await DuckDBInstance.create(file);
    const conn = await db.connect();
    try {
      const [id, state] = (await conn.runAndReadAll('SELECT id, state FROM sluice_checkpoints ORDER BY id DESC LIMIT 1')).getRows()[0]!;
      const bytes = new Map<number, Uint8Array>();
      for (const [part, b] of (await conn.runAndReadAll('SELECT id, bytes FROM sluice_state_parts')).getRows()) bytes.set(Number(part), (b as DuckDBBlobValue).bytes);
      const cp = decodeCheckpoint((state as DuckDBBlobValue).bytes, bytes);
      const sections = new Map([...cp.pipelines].map(([name, parts]) => [name, parts.map((p) => new Uint8Array(p.bytes))] as const));
      assert.ok([...sections.values()].flat().length > 3, 'the stop left windows open');
      await conn.run('UPDATE sluice_checkpoints SET state = $1 WHERE id = $2', [new DuckDBBlobValue(encodeSlc1(cp.positions, sections)), Number(id)]);
      await conn.run('DELETE FROM sluice_checkpoints WHERE id <> $1', [Number(id)]);
      await conn.run('DROP TABLE sluice_state_parts');
      await conn.run('DROP TABLE sluice_checkpoint_parts');
      await conn.run(`UPDATE sluice_meta SET definition = '{"version":1}' WHERE kind = 'storage'`);
    } finally {
      conn.closeSync();
      db.closeSync();
    }
    engine = await Sluice.open(config);
    try {
      assert.equal(engine.snapshot().committed['bids']?.seq, 27);
      await feed(engine, 'bids', batches.slice(27, 35));
      await engine.checkpoint();
      assert.ok(await storedParts(engine) > 0, 'checkpoints after the upgrade store parts');
      await feed(engine, 'bids', batches.slice(35));
      await engine.flush();
      const tables = await allTables(engine);
      for (const name of TABLES) assert.deepStrictEqual(tables.get(name), reference.get(name), `${name} differs from the uninterrupted run`);
      assert.deepEqual((await engine.query("SELECT definition FROM sluice_meta WHERE kind = 'storage'")).rows, [['{"version":2}']]);
    } finally {
      await engine.close();
    }
    // a newer format is refused, not misread
    const db2 = await DuckDBInstance.create(file);
    const conn2 = await db2.connect();
    await conn2.run(`UPDATE sluice_meta SET definition = '{"version":3}' WHERE kind = 'storage'`);
    conn2.closeSync();
    db2.closeSync();
    await assert.rejects(Sluice.open(config), /has storage format 3; this Sluice reads format 2/);
  });

  test('checkpoint() then close without more data: reopening restores the positions', async () => {
    const dir = freshDir();
    const config = bidsConfig({ dir, threads: 1, pipelines: PIPELINES });
    const engine = await Sluice.open(config);
    let positions: Awaited<ReturnType<Sluice['checkpoint']>>;
    try {
      await feed(engine, 'bids', batches.slice(0, 13));
      positions = await engine.checkpoint();
      const ts = eventTimes(events).subarray(0, 13 * ROWS_PER_BATCH);
      assert.deepEqual(positions['bids'], { seq: 13, maxEventTime: Math.max(...ts) });
      assert.deepEqual(engine.snapshot().committed, positions);
    } finally {
      await engine.close();
    }
    const again = await Sluice.open(config);
    try {
      assert.deepEqual(again.snapshot().committed, positions);
      assert.equal(again.snapshot().maxEventTime['bids'], positions['bids']!.maxEventTime);
      // and the next batch continues the numbering
      const [ack] = await feed(again, 'bids', batches.slice(13, 14));
      assert.equal(ack!.seq, 14);
    } finally {
      await again.close();
    }
  });
});
