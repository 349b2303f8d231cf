import { test } from 'node:test';
import assert from 'node:assert/strict';
import { dueAtEventTime } from '../../bench/e2e.js';
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
    const got = dueAtEventTime(t, { start, firstSendAt, ringEvents, spanMs, batchRows, rate });
    assert.equal(got, want, `${seconds} s (a batch is ${period.toFixed(2)} ms)`);
  }
});
