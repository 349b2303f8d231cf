import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rssSlope } from '../../bench/e2e.js';

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
