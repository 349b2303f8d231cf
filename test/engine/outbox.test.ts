/**
 * The pool worker's shared outbox (engine/outbox.ts): slices of shared blocks, a block written
 * again only once the state worker released every parcel on it, a plain ArrayBuffer when no
 * block has room; and, through a TaskRunner and a StateCore with a small outbox, the state
 * keeps every parcel it still reads (late and archived rows until their commit) while the
 * worker goes on writing.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Worker } from 'node:worker_threads';
import { configFromObject } from '../../engine/config.js';
import { Outbox, releaseParcel, transferablesOf } from '../../engine/outbox.js';
import type { TaskOutput } from '../../engine/protocol.js';
import { releasePending, StateCore, type PendingCommit } from '../../engine/state-core.js';
import { TaskRunner } from '../../engine/task-runner.js';
import { valueAt, type Batch } from '../../engine/schema.js';
import { WatermarkChain } from '../../engine/watermark-chain.js';
import { AGGS, bidsConfig, encodeBatches, makeEvents, selectOf } from '../helpers/oracle.js';

test('parcels are 8-byte aligned slices of a shared block, counted until released', () => {
  const box = new Outbox(1024, 2);
  const a = box.alloc(5);
  const b = box.alloc(13);
  const c = box.alloc(8);
  for (const p of [a, b, c]) {
    assert.ok(p.buffer instanceof SharedArrayBuffer);
    assert.equal(p.byteOffset % 8, 0);
  }
  assert.equal(a.buffer, b.buffer);
  assert.deepEqual([a.byteOffset, b.byteOffset, c.byteOffset], [8, 16, 32]);
  assert.deepEqual([a.length, b.length, c.length], [5, 13, 8]);
  assert.equal(Atomics.load(new Int32Array(a.buffer, 0, 1), 0), 3);
  assert.deepEqual(transferablesOf([a, b, c]), []);
  for (const p of [a, b, c]) releaseParcel(p);
  assert.equal(Atomics.load(new Int32Array(a.buffer, 0, 1), 0), 0);
  assert.equal(box.fallbacks, 0);
  assert.equal(box.sharedBytes, 1024);
});

test('a block is written again only when every parcel on it was released; then plain buffers', () => {
  const box = new Outbox(1024, 2);
  const first = [box.alloc(500), box.alloc(500)]; // block 0 full (8 + 2 × 504)
  const second = box.alloc(600); // block 1
  assert.notEqual(second.buffer, first[0]!.buffer);
  assert.equal(box.sharedBytes, 2048);
  // both blocks hold live parcels: a plain ArrayBuffer, moved with the message
  const plain = box.alloc(600);
  assert.ok(plain.buffer instanceof ArrayBuffer && plain.byteOffset === 0);
  assert.equal(box.fallbacks, 1);
  assert.deepEqual(transferablesOf([second, plain]), [plain.buffer]);
  releaseParcel(plain); // nothing to do
  releaseParcel(first[0]!);
  assert.ok(box.alloc(600).buffer instanceof ArrayBuffer, 'block 0 still holds one parcel');
  assert.equal(box.fallbacks, 2);
  releaseParcel(first[1]!);
  const again = box.alloc(600);
  assert.equal(again.buffer, first[0]!.buffer, 'block 0 is empty: written again from its start');
  assert.equal(again.byteOffset, 8);
  // larger than a block: always plain
  assert.ok(box.alloc(1024).buffer instanceof ArrayBuffer);
  assert.equal(box.fallbacks, 3);
  assert.equal(box.sharedBytes, 2048, 'never more than maxBlocks');
});

test('another thread releases parcels it received: the block comes back', async () => {
  const box = new Outbox(4096, 1);
  const parcels = [box.alloc(1000), box.alloc(1000), box.alloc(1000)];
  parcels.forEach((p, i) => p.fill(i + 1));
  assert.ok(box.alloc(2000).buffer instanceof ArrayBuffer, 'the only block is in use');
  const outboxUrl = new URL('../../engine/outbox.js', import.meta.url).href;
  const worker = new Worker(
    `const { parentPort } = require('node:worker_threads');
     parentPort.once('message', async (parcels) => {
       const { releaseParcel } = await import(${JSON.stringify(outboxUrl)});
       const sums = parcels.map((p) => p.reduce((a, b) => a + b, 0));
       for (const p of parcels) releaseParcel(p);
       parentPort.postMessage(sums);
     });`,
    { eval: true },
  );
  try {
    const sums = await new Promise<number[]>((resolve, reject) => {
      worker.once('message', resolve);
      worker.once('error', reject);
      worker.postMessage(parcels);
    });
    assert.deepEqual(sums, [1000, 2000, 3000], 'the other thread read the bytes in place');
    const again = box.alloc(2000);
    assert.equal(again.buffer, parcels[0]!.buffer);
    assert.equal(again.byteOffset, 8);
  } finally {
    await worker.terminate();
  }
});

// --- a worker's runner and the state core, with a small outbox ----------------------------------

const configOf = (archive: boolean): ReturnType<typeof configFromObject> => configFromObject(bidsConfig({
  dir: '/nonexistent/outbox-test', // StateCore and TaskRunner never touch storage
  threads: 1,
  archive,
  pipelines: {
    tumble: { where: "channel != 'spam'", window: { tumbling: '10s' }, groupBy: ['auction'], select: selectOf(AGGS), lateness: '1s' },
    hop: { window: { hopping: { size: '10s', slide: '2s' } }, groupBy: ['channel'], select: selectOf(AGGS) },
  },
}));

function rowsOf(b: Batch): unknown[][] {
  return Array.from({ length: b.length }, (_, r) => b.columns.map((c) => {
    const v = valueAt(c, r);
    return typeof v === 'number' && Number.isNaN(v) ? 'NaN' : v;
  }));
}

/** Everything a commit would write, as plain values (read before the parcels are released). */
function plainOf(p: PendingCommit): unknown {
  const plain = (x: unknown): unknown => {
    if (ArrayBuffer.isView(x)) return Array.from(x as unknown as ArrayLike<unknown>, (v) => (typeof v === 'number' && Number.isNaN(v) ? 'NaN' : v));
    if (Array.isArray(x)) return x.map(plain);
    if (x !== null && typeof x === 'object') return Object.fromEntries(Object.entries(x).map(([k, v]) => [k, plain(v)]));
    return typeof x === 'number' && Number.isNaN(x) ? 'NaN' : x;
  };
  return {
    results: plain(p.results),
    late: p.late.map((l) => ({ pipeline: l.pipeline, rows: rowsOf(l.rows), reasons: Array.from(l.reasons.codes, (c) => l.reasons.dict[c]) })),
    archive: p.archive.map((a) => ({ stream: a.stream, rows: rowsOf(a.rows) })),
  };
}

/**
 * 60 tasks of 2000 events through a runner and a state core, "committing" every 4 tasks: the
 * commits' contents as plain values. Either archived rows, or (without the archive, whose
 * parcels would pin every block until the commit) late rows: 5 % of the events sent back up to
 * 30 s.
 */
function run(outbox: Outbox, release: boolean, kind: 'archive' | 'late'): unknown[] {
  const config = configOf(kind === 'archive');
  const events = makeEvents({ seed: 23, n: 120_000, step: 5, disorder: 2000, lateRate: kind === 'late' ? 0.05 : 0, lateSpan: 30_000 });
  const payloads = encodeBatches(events, 2000, 'arrow');
  const runner = new TaskRunner(config, outbox);
  const core = new StateCore(config, null);
  const chain = new WatermarkChain();
  chain.publish(0, -Infinity);
  const commits: unknown[] = [];
  const commit = (): void => {
    const pending = core.takePending();
    commits.push(plainOf(pending));
    if (release) releasePending(pending);
  };
  payloads.forEach((p, i) => {
    const shared = new SharedArrayBuffer(p.bytes.length);
    new Uint8Array(shared).set(p.bytes);
    const t = i + 1;
    const r = runner.run({ stream: 'bids', chain: chain.sab, t, pieces: [{ buffer: shared, offset: 0, length: p.bytes.length, format: p.format, seq: t }] });
    const { outcomes: _o, decodeMs: _d, aggregateMs: _a, outboxFallbacks: _f, ...output } = r;
    core.step({ kind: 'task', output: output satisfies TaskOutput });
    if (t % 4 === 0) commit();
  });
  core.flush();
  commit();
  return commits;
}

for (const kind of ['archive', 'late'] as const) {
  test(`the state core keeps ${kind} rows until their commit; the worker reuses the rest`, () => {
    const expected = run(new Outbox(1 << 30, 0), true, kind); // no shared block: every parcel plain
    const rowSets = (expected as { archive: unknown[]; late: unknown[] }[]).reduce((n, c) => n + c[kind].length, 0);
    assert.ok(rowSets >= 40, `the run has ${kind} rows (${rowSets} row sets)`);
    const box = new Outbox(1 << 20, 3);
    const got = run(box, true, kind);
    // megabytes went through 3 MiB of blocks: reused, never needed a plain buffer
    assert.equal(box.fallbacks, 0);
    assert.deepEqual(got, expected);
    // without the commits' releases the blocks fill up and the runner falls back to plain buffers
    const unreleased = new Outbox(1 << 20, 3);
    assert.deepEqual(run(unreleased, false, kind), expected);
    assert.ok(unreleased.fallbacks > 10, `${unreleased.fallbacks} fallbacks`);
  });
}
