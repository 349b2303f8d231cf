import { test } from 'node:test';
import assert from 'node:assert/strict';
import { dueAtEventTime } from '../../bench/e2e.js';
import { pacedDueMs } from '../../server/gen.js';
import { generateBidRing } from '../../bench/bids.js';

test('dueAtEventTime: the batch of the first event at or after t, from the ring\'s own event-time rate', () => {
  // a ring whose span rounds to whole ms (131,072 events at 8.69 M/s: 15.08 → 15 ms), so event
  // time runs 0.5 % ahead of the paced rate: 150 ms over 30 s, far more than a batch period
  const rate = 8_690_000;
  const batchRows = 16_384;
  const ringEvents = 8 * batchRows;
  const start = 1_700_000_000_000;
  const { batch, spanMs } = generateBidRing({ seed: 3, eventsPerSecond: rate, start }, ringEvents);
  assert.equal(spanMs, 15);
  const ts0 = (batch.columns[batch.schema.index.get('ts')!] as { values: Float64Array }).values;
  const firstSendAt = 5_000;
  const period = (batchRows * 1000) / rate;
  /** brute force: event j of lap c has time ts0[j] + c · spanMs (the ring's re-stamping) */
  const firstAtOrAfter = (t: number): number => {
    for (let lap = Math.max(0, Math.floor((t - start) / spanMs) - 1); ; lap++) {
      for (let j = 0; j < ringEvents; j++) if (ts0[j]! + lap * spanMs >= t) return lap * ringEvents + j;
    }
  };
  for (const seconds of [0.0123, 1.5, 7.77, 15, 29.9, 29.9004]) {
    const t = start + seconds * 1000;
    const k = firstAtOrAfter(t);
    const want = firstSendAt + (Math.floor(k / batchRows) * batchRows * 1000) / rate;
    const got = dueAtEventTime(t, { start, firstSendAt, ringEvents, spanMs, batchRows, rate, rampMs: 0 });
    assert.equal(got, want, `${seconds} s (a batch is ${period.toFixed(2)} ms)`);
    // with a 5 s ramp: the same batch, due when the ramped schedule reaches its first event
    const n = Math.floor(k / batchRows) * batchRows;
    const ramped = dueAtEventTime(t, { start, firstSendAt, ringEvents, spanMs, batchRows, rate, rampMs: 5000 });
    assert.ok(Math.abs(ramped - (firstSendAt + pacedDueMs(n, rate, 5000))) < 1e-9, `${seconds} s ramped`);
  }
});

test('pacedDueMs: the linear ramp\'s schedule, continuous at its end, then the full rate shifted by half the ramp', () => {
  const rate = 10_000_000; // 10 000 events per ms
  assert.equal(pacedDueMs(0, rate, 0), 0);
  assert.equal(pacedDueMs(25_000_000, rate, 0), 2500);
  // 5 s ramp: 25 M events during it (the area of the triangle), the n-th when r·τ² / 2R reaches n
  assert.equal(pacedDueMs(0, rate, 5000), 0);
  assert.ok(Math.abs(pacedDueMs(25_000_000, rate, 5000) - 5000) < 1e-9);
  assert.ok(Math.abs(pacedDueMs(25_000_000 - 1, rate, 5000) - 5000) < 1e-3);
  assert.ok(Math.abs(pacedDueMs(6_250_000, rate, 5000) - 2500) < 1e-9); // a quarter of the events by half the ramp
  assert.ok(Math.abs(pacedDueMs(125_000_000, rate, 5000) - (12_500 + 2500)) < 1e-9);
  // the schedule's rate: 0 at the start, `rate` from the end of the ramp on
  const slope = (n: number): number => 1000 / (pacedDueMs(n + 1000, rate, 5000) - pacedDueMs(n, rate, 5000)) * 1000;
  assert.ok(Math.abs(slope(30_000_000) - rate) / rate < 1e-6);
  assert.ok(slope(1_000_000) < rate / 4);
  for (let n = 0; n < 40_000_000; n += 999_983) assert.ok(pacedDueMs(n + 1, rate, 5000) > pacedDueMs(n, rate, 5000), `increasing at ${n}`);
});
