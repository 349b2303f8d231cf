/**
 * `npm test`: runs every compiled `*.test.js` under dist/test with node:test and exits non-zero
 * when any test fails. Arguments filter by substring of the path (`npm test -- decoders`).
 */
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));

function collect(dir: string, out: string[]): string[] {
  for (const name of readdirSync(dir).sort()) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) collect(path, out);
    else if (name.endsWith('.test.js')) out.push(path);
  }
  return out;
}

const filters = process.argv.slice(2);
const files = collect(here, []).filter((f) => filters.length === 0 || filters.some((s) => relative(here, f).includes(s)));
if (files.length === 0) {
  process.stderr.write(`no test files match ${JSON.stringify(filters)}\n`);
  process.exit(1);
}
const reporter = 'spec';
const result = spawnSync(process.execPath, ['--test', `--test-reporter=${reporter}`, ...files], { stdio: 'inherit' });
process.exit(result.status ?? 1);
