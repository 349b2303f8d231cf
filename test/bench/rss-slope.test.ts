import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rssBySpan, rssSlope } from '../../bench/e2e.js';

test('rssSlope: least squares over the samples, with or without DuckDB\'s own memory', () => {
  // RSS +2 MiB/s of which DuckDB's memory is +1.5 MiB/s; noise that cancels around the line
  const samples = Array.from({ length: 21 }, (_, i) => ({
    t: i * 0.5, events: 0, rssMiB: 600 + 2 * i * 0.5 + (i % 2 === 0 ? 3 : -3), storageMiB: i < 2 ? null : 20 + 1.5 * i * 0.5,
  }));
  assert.ok(Math.abs(rssSlope(samples, false)! - 2) < 0.1, String(rssSlope(samples, false)));
  assert.ok(Math.abs(rssSlope(samples, true)! - 0.5) < 0.1, String(rssSlope(samples, true)));
  assert.equal(rssSlope(samples.slice(0, 1), false), null);
  assert.equal(rssSlope(samples.slice(0, 2), true), null); // no sample has DuckDB's memory yet
});

test('rssBySpan: the mean of each whole span from the first sample, a partial last span left out', () => {
  // samples every 0.5 s for 150.5 s: RSS 800 + t / 10, DuckDB 50 until 30 s, then unknown
  const samples = [];
  for (let i = 0; i <= 301; i++) {
    const t = 10 + i * 0.5;
    samples.push({ t, events: 0, rssMiB: 800 + (t - 10) / 10, storageMiB: t - 10 < 30 ? 50 : null });
  }
  const spans = rssBySpan(samples, 60);
  assert.equal(spans.length, 2);
  // span 0: t - 10 in [0, 60) step 0.5 → mean 29.75 → 802.975
  assert.ok(Math.abs(spans[0]!.rss - 802.975) < 1e-9, String(spans[0]!.rss));
  // less DuckDB only over the samples that have it: t - 10 in [0, 30) → mean 14.75 → 751.475
  assert.ok(Math.abs(spans[0]!.lessStorage! - 751.475) < 1e-9, String(spans[0]!.lessStorage));
  assert.ok(Math.abs(spans[1]!.rss - 808.975) < 1e-9, String(spans[1]!.rss));
  assert.equal(spans[1]!.lessStorage, null);
  assert.deepEqual(rssBySpan([], 60), []);
  // the slope of the same line: 0.1 MiB/s
  assert.ok(Math.abs(rssSlope(samples, false)! - 0.1) < 1e-9);
});
