import assert from 'node:assert/strict';
import { SluiceError } from '../../engine/errors.js';

/** Runs fn and asserts it throws a SluiceError with this code (and message pattern). */
export function expectError(fn: () => unknown, code: string, pattern?: RegExp): SluiceError {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof SluiceError, `expected a SluiceError ${code}, got ${String(caught)}`);
  assert.equal(caught.code, code, caught.message);
  if (pattern) assert.match(caught.message, pattern);
  return caught;
}
