import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SluiceError } from '../../engine/errors.js';
import {
  DURATION_MESSAGE, durationMs, formatDuration, formatSize, parseDuration, parseSize, SIZE_MESSAGE, sizeBytes,
} from '../../engine/units.js';
import { mulberry32 } from '../helpers/random.js';


test('durations parse to integer milliseconds', () => {
  const cases: [string | number, number][] = [
    ['250ms', 250], ['10s', 10_000], ['5m', 300_000], ['1h', 3_600_000], ['1d', 86_400_000],
    ['1m30s', 90_000], ['1d2h3m4s5ms', 93_784_005], ['1h30m', 5_400_000], ['0s', 0], ['0ms', 0],
    ['1.5s', 1500], ['1.1s', 1100], ['0.25h', 900_000], ['2ms', 2], [' 10s ', 10_000],
    ['250', 250], ['0', 0], [250, 250], [0, 0], [Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER],
  ];
  for (const [input, ms] of cases) {
    assert.equal(durationMs(input), ms, JSON.stringify(input));
    assert.equal(parseDuration(input), ms, JSON.stringify(input));
  }
});

test('bad durations are rejected with "expected a duration like 10s"', () => {
  const bad: unknown[] = [
    '', ' ', '10x', 's', 'ms', '1.5', '-1s', '-5', '0.5ms', '0.0001s', '30s1m', '1m1m', '1ms1s', '1 m', '1m 30s',
    '10S', '10M', '1e3', '1e3ms', '10sec', '1w', 'Infinity', '9007199254740993', '999999999999d',
    -5, 1.5, NaN, Infinity, null, undefined, true, {}, [], ['10s'],
  ];
  for (const v of bad) {
    assert.equal(durationMs(v), undefined, JSON.stringify(v));
    if (typeof v === 'string' || typeof v === 'number') {
      assert.throws(() => parseDuration(v), (err: unknown) => {
        assert.ok(err instanceof SluiceError);
        assert.equal(err.code, 'SLUICE_CONFIG_INVALID');
        assert.ok(err.message.startsWith(DURATION_MESSAGE), err.message);
        return true;
      });
    }
  }
  assert.equal(DURATION_MESSAGE, 'expected a duration like 10s');
});

test('sizes parse to integer bytes', () => {
  const cases: [string | number, number][] = [
    ['16MiB', 16 * 1024 * 1024], ['512KiB', 512 * 1024], ['1GiB', 2 ** 30], ['2TiB', 2 * 2 ** 40],
    ['10MB', 10_000_000], ['1KB', 1000], ['1kB', 1000], ['3GB', 3e9], ['1TB', 1e12], ['7B', 7],
    ['4096', 4096], [4096, 4096], ['0', 0], [0, 0], ['1.5MiB', 1_572_864], ['0.5KiB', 512],
    ['16 MiB', 16 * 2 ** 20], ['16mib', 16 * 2 ** 20], ['1.25kb', 1250], [' 1KiB ', 1024],
  ];
  for (const [input, bytes] of cases) {
    assert.equal(sizeBytes(input), bytes, JSON.stringify(input));
    assert.equal(parseSize(input), bytes, JSON.stringify(input));
  }
});

test('bad sizes are rejected with "expected a size like 16MiB"', () => {
  const bad: unknown[] = [
    '', 'MiB', '16XB', '16 M', '1.5B', '1.5', '-1', '-1KiB', '0.1B', '0.0001KiB', '16MiB16', '16  MiB', '1e6',
    '99999999999TiB', -1, 1.5, NaN, null, undefined, false, {}, [],
  ];
  for (const v of bad) {
    assert.equal(sizeBytes(v), undefined, JSON.stringify(v));
    if (typeof v === 'string' || typeof v === 'number') {
      assert.throws(() => parseSize(v), (err: unknown) => {
        assert.ok(err instanceof SluiceError);
        assert.equal(err.code, 'SLUICE_CONFIG_INVALID');
        assert.ok(err.message.startsWith(SIZE_MESSAGE), err.message);
        return true;
      });
    }
  }
  assert.equal(SIZE_MESSAGE, 'expected a size like 16MiB');
});

test('formatDuration gives the compound form and round-trips', () => {
  assert.equal(formatDuration(0), '0s');
  assert.equal(formatDuration(250), '250ms');
  assert.equal(formatDuration(10_000), '10s');
  assert.equal(formatDuration(90_000), '1m30s');
  assert.equal(formatDuration(86_400_000 + 1), '1d1ms');
  assert.throws(() => formatDuration(-1), /formatDuration/);
  assert.throws(() => formatDuration(1.5), /formatDuration/);
  const rnd = mulberry32(42);
  for (let i = 0; i < 2000; i++) {
    // spread over ms .. years so every unit shows up
    const ms = Math.floor(rnd() * 10 ** Math.floor(rnd() * 12));
    assert.equal(parseDuration(formatDuration(ms)), ms, String(ms));
  }
});

test('formatSize picks an exact unit and round-trips', () => {
  assert.equal(formatSize(0), '0B');
  assert.equal(formatSize(16 * 2 ** 20), '16MiB');
  assert.equal(formatSize(10_000_000), '10MB');
  assert.equal(formatSize(1_000_001), '1000001B');
  assert.equal(formatSize(1536), '1536B');
  assert.equal(formatSize(3 * 2 ** 40), '3TiB');
  assert.throws(() => formatSize(-1), /formatSize/);
  const rnd = mulberry32(7);
  for (let i = 0; i < 2000; i++) {
    const bytes = Math.floor(rnd() * 10 ** Math.floor(rnd() * 13));
    assert.equal(parseSize(formatSize(bytes)), bytes, String(bytes));
  }
});
