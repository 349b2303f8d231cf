import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runBench } from '../../bench/index.js';

// Refused before any suite starts: these return within milliseconds.
test('bench refuses unknown suites, flags, e2e parts and rates before running anything', async () => {
  const cases: [string[], RegExp][] = [
    [['nope'], /unknown suite 'nope'/],
    [['e2e', '--fast'], /unknown option --fast/],
    [['e2e', '--only'], /--only takes e2e parts separated by commas \(matrix, latency, soak\)$/],
    [['e2e', '--only', 'latency,nope'], /--only takes e2e parts .*, not 'nope'/],
    [['e2e', '--rate', '12.5'], /--rate takes the latency run's events\/s/],
    [['e2e', '--rate', '999'], /--rate takes the latency run's events\/s/],
    [['e2e', '--only', 'latency', '--rate'], /--rate takes the latency run's events\/s/],
  ];
  for (const [args, pattern] of cases) await assert.rejects(runBench(args), pattern, args.join(' '));
});
