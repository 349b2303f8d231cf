/**
 * The worker pool (engine/worker-pool.ts) loads its workers' code at start, not on the first
 * task; the slab arena maps its memory when it is made (engine/slab-arena.ts). Both were costs
 * the first batches after a start paid (300–500 ms of ack latency).
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { configFromObject } from '../../engine/config.js';
import { Sluice } from '../../engine/runtime.js';
import { SlabArena } from '../../engine/slab-arena.js';
import { WorkerPool } from '../../engine/worker-pool.js';
import { bidsConfig, freshDir, removeFreshDirs } from '../helpers/oracle.js';

after(removeFreshDirs);

test('every pool worker loads its code before it is given a task', async () => {
  const config = configFromObject(bidsConfig({ dir: freshDir(), threads: 2, pipelines: {} }), { env: {} });
  const pool = new WorkerPool(config);
  try {
    // with a handler that imported the worker's code itself, the import stalled behind
    // piscina's Atomics.wait until the first task came: this waited out the full 20 s
    assert.equal(await pool.whenLoaded(20_000), true);
    assert.equal(pool.loaded, 2);
    assert.equal(pool.piscina.completed, 0);
  } finally {
    await pool.piscina.destroy();
  }
});

test('whenLoaded gives up after its time', async () => {
  const config = configFromObject(bidsConfig({ dir: freshDir(), threads: 1, pipelines: {} }), { env: {} });
  const pool = new WorkerPool(config);
  try {
    assert.equal(await pool.whenLoaded(0), false);
    assert.equal(await pool.whenLoaded(20_000), true);
  } finally {
    await pool.piscina.destroy();
  }
});

test('the arena is resident once made (its pages are touched up front)', () => {
  const before = process.memoryUsage().rss;
  const arena = new SlabArena(96 << 20, 32 << 20);
  const grown = process.memoryUsage().rss - before;
  assert.equal(arena.capacityBytes, 96 << 20);
  assert.ok(grown >= 90 << 20, `RSS grew ${grown >> 20} MiB for a 96 MiB arena`);
});

/** nice value of every thread of this process, by thread id (Linux /proc) */
function threadNice(): Map<number, number> {
  const out = new Map<number, number>();
  for (const tid of readdirSync('/proc/self/task')) {
    const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
    // fields after "(comm)": state is field 3, nice field 19
    out.set(Number(tid), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16]));
  }
  return out;
}

test('the state thread runs at nice 4 on Linux, the rest of the process as it was', { skip: process.platform !== 'linux' }, async () => {
  const before = threadNice();
  const engine = await Sluice.open(bidsConfig({ dir: freshDir(), threads: 1, pipelines: {} }));
  try {
    const added = [...threadNice()].filter(([tid]) => !before.has(tid));
    assert.ok(added.some(([, nice]) => nice === 4), `new threads' nice values: ${added.map(([, n]) => n).join(', ')}`);
    assert.equal(threadNice().get(process.pid), before.get(process.pid));
  } finally {
    await engine.close();
  }
});

