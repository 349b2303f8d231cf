import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseBenchArgs } from '../../bench/index.js';

test('bench refuses unknown suites, flags, e2e parts and rates', () => {
  const cases: [string[], RegExp][] = [
    [['nope'], /unknown suite 'nope'/],
    [['e2e', '--fast'], /unknown option '--fast'/i],
    [['e2e', '--only'], /--only takes e2e parts separated by commas \(matrix, latency, soak\)$/],
    [['e2e', '--only', 'latency,nope'], /--only takes e2e parts .*, not 'nope'/],
    [['e2e', '--rate', '12.5'], /--rate takes the latency run's events\/s/],
    [['e2e', '--rate', '999'], /--rate takes the latency run's events\/s/],
    [['e2e', '--only', 'latency', '--rate'], /--rate takes the latency run's events\/s/],
    [['e2e', '--rate', '1e6'], /--rate takes the latency run's events\/s/],
    [['kernels', '--only', 'latency'], /--only, --rate and --soak-seconds apply to the e2e suite/],
    [['kernels', '--soak-seconds', '600'], /--only, --rate and --soak-seconds apply to the e2e suite/],
    [['e2e', '--soak-seconds', '9'], /--soak-seconds takes the soak's measured seconds/],
    [['e2e', '--soak-seconds', '60.5'], /--soak-seconds takes the soak's measured seconds/],
    [['e2e', '--soak-seconds'], /--soak-seconds takes the soak's measured seconds/],
  ];
  for (const [args, pattern] of cases) assert.throws(() => parseBenchArgs(args), pattern, args.join(' '));
});

test('bench arguments: default suites, flags, e2e parts once each in the order given, the rate, the soak\'s seconds', () => {
  assert.deepEqual(parseBenchArgs([]), { suites: ['kernels', 'engine'], json: false, quick: false, only: undefined, latencyRate: undefined, soakSeconds: undefined });
  assert.deepEqual(parseBenchArgs(['e2e', '--quick', '--only', 'soak,latency,soak', '--rate', '8000000', '--json', '--soak-seconds', '600']),
    { suites: ['e2e'], json: true, quick: true, only: ['soak', 'latency'], latencyRate: 8_000_000, soakSeconds: 600 });
  assert.deepEqual(parseBenchArgs(['e2e', '--only=matrix']).only, ['matrix']);
});
