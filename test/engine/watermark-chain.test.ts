import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Worker } from 'node:worker_threads';
import { WatermarkChain, CHAIN_RING } from '../../engine/watermark-chain.js';

test('publish, wait and ring reuse', async () => {
  const c = new WatermarkChain();
  assert.equal(c.isPublished(0), false);
  c.publish(0, -Infinity);
  assert.equal(c.valueAt(0), -Infinity);
  c.publish(1, 5);
  assert.equal(c.waitFor(1), 5);
  assert.equal(await c.whenPublished(1), 5);
  // slot t + RING reuses the cell of t and is told apart by its generation
  c.publish(1 + CHAIN_RING, 9);
  assert.equal(c.isPublished(1), false);
  assert.equal(c.valueAt(1 + CHAIN_RING), 9);
  assert.throws(() => c.valueAt(1), /not published/);
  assert.throws(() => c.waitFor(2, 20), /not published within 20 ms/);
});

test('a worker blocked on slot t is woken by another thread publishing it', async () => {
  const c = new WatermarkChain();
  const url = new URL('../../engine/watermark-chain.js', import.meta.url).href;
  const w = new Worker(`
    const { workerData, parentPort } = require('node:worker_threads');
    import(${JSON.stringify(url)}).then(({ WatermarkChain }) => {
      const c = new WatermarkChain(workerData);
      const before = c.waitFor(7, 5000);
      c.publish(8, Math.max(before, 42));
      parentPort.postMessage(before);
    });`, { eval: true, workerData: c.sab });
  const got = new Promise((resolve) => w.once('message', resolve));
  await new Promise((r) => setTimeout(r, 50));
  c.publish(7, 100);
  assert.equal(await got, 100);
  assert.equal(await c.whenPublished(8), 100);
  await w.terminate();
});
