/**
 * `sluice bench [SUITE...] [--json] [--quick]`: runs the named suites (all when none is named),
 * prints a table per suite, and with --json also writes bench/results/<date>-<suite>.json.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import { kernelTable, runKernelBench } from './kernels.js';
import { engineTable, runEngineBench } from './engine.js';

const SUITES = ['kernels', 'engine'] as const;
type Suite = (typeof SUITES)[number];

function machine(): Record<string, string | number> {
  return {
    node: process.version,
    cpu: cpus()[0]?.model ?? 'unknown',
    cores: availableParallelism(),
    memoryGiB: Math.round(totalmem() / 2 ** 30),
  };
}

export async function runBench(args: string[]): Promise<number> {
  const json = args.includes('--json');
  const quick = args.includes('--quick');
  const unknownFlag = args.find((a) => a.startsWith('--') && a !== '--json' && a !== '--quick');
  if (unknownFlag !== undefined) throw new Error(`bench: unknown option ${unknownFlag}`);
  const names = args.filter((a) => !a.startsWith('--'));
  for (const n of names) {
    if (!(SUITES as readonly string[]).includes(n)) throw new Error(`bench: unknown suite '${n}' (available: ${SUITES.join(', ')})`);
  }
  const suites = (names.length > 0 ? names : [...SUITES]) as Suite[];
  const log = (line: string): void => void process.stderr.write(`${line}\n`);
  const info = machine();
  log(`machine: ${info.cpu}, ${info.cores} cores, ${info.memoryGiB} GiB, Node ${info.node}`);
  const save = (suite: Suite, results: unknown): void => {
    if (!json) return;
    const dir = join('bench', 'results');
    mkdirSync(dir, { recursive: true });
    const file = join(dir, `${new Date().toISOString().slice(0, 10)}-${suite}.json`);
    writeFileSync(file, JSON.stringify({ suite, date: new Date().toISOString(), quick, machine: info, results }, null, 2) + '\n');
    log(`wrote ${file}`);
  };
  for (const suite of suites) {
    switch (suite) {
      case 'kernels': {
        const rows = await runKernelBench({ quick, json, log });
        process.stdout.write(`\n${kernelTable(rows, availableParallelism())}\n`);
        save(suite, rows);
        break;
      }
      case 'engine': {
        const rows = await runEngineBench({ quick, log });
        process.stdout.write(`\n${engineTable(rows)}\n`);
        save(suite, rows);
        break;
      }
    }
  }
  return 0;
}
