import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { allErrorDefs, asSluiceError, sluiceError, SluiceError } from '../../engine/errors.js';
import { repoRoot } from '../helpers/paths.js';

const doc = readFileSync(join(repoRoot, 'docs', 'errors.md'), 'utf8');

/** Rows of the tables in docs/errors.md: `| \`SLUICE_X\` | status | domain | ... |` */
function documentedRows(): Map<string, { status: number; domain: string }> {
  const rows = new Map<string, { status: number; domain: string }>();
  for (const line of doc.split('\n')) {
    const m = /^\|\s*`(SLUICE_[A-Z0-9_]+)`\s*\|\s*(\d{3})\s*\|\s*(\w+)\s*\|/.exec(line);
    if (m) rows.set(m[1]!, { status: Number(m[2]), domain: m[3]! });
  }
  return rows;
}

test('every catalogued code is documented with its status and domain', () => {
  const rows = documentedRows();
  for (const d of allErrorDefs()) {
    const row = rows.get(d.code);
    assert.ok(row, `${d.code} is missing from docs/errors.md`);
    assert.equal(row.status, d.status, `${d.code}: status in docs differs`);
    assert.equal(row.domain, d.domain, `${d.code}: domain in docs differs`);
  }
});

test('every documented code exists in the catalogue', () => {
  const codes = new Set(allErrorDefs().map((d) => d.code));
  for (const code of documentedRows().keys()) assert.ok(codes.has(code), `docs/errors.md documents ${code}, which engine/errors.ts lacks`);
  // Codes mentioned anywhere in the docs prose must exist too.
  for (const m of doc.matchAll(/SLUICE_[A-Z][A-Z0-9_]+/g)) assert.ok(codes.has(m[0]), `docs/errors.md mentions unknown ${m[0]}`);
});

test('codes are unique and well formed', () => {
  const seen = new Set<string>();
  for (const d of allErrorDefs()) {
    assert.match(d.code, /^SLUICE_[A-Z][A-Z0-9_]*$/);
    assert.ok(!seen.has(d.code), `duplicate ${d.code}`);
    seen.add(d.code);
  }
});

test('SluiceError carries code and status; unknown errors become SLUICE_INTERNAL', () => {
  const e = sluiceError('BATCH_MALFORMED', 'truncated');
  assert.ok(e instanceof SluiceError);
  assert.equal(e.code, 'SLUICE_BATCH_MALFORMED');
  assert.equal(e.status, 400);
  assert.deepEqual(e.toJSON(), { code: 'SLUICE_BATCH_MALFORMED', message: 'truncated' });
  assert.equal(asSluiceError(e), e);
  const wrapped = asSluiceError(new TypeError('boom'));
  assert.equal(wrapped.code, 'SLUICE_INTERNAL');
  assert.equal(wrapped.message, 'boom');
});
