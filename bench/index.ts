/**
 * `sluice bench [SUITE...] [--json] [--quick] [--only PART,...] [--rate N] [--soak-seconds N]`: runs the named
 * suites (kernels and engine when none is named; e2e and nexmark only when named), prints a
 * table per suite, and with --json also writes bench/results/<date>-<suite>.json (e2e and
 * nexmark always write their JSON, e2e also an SVG chart). `--only` picks e2e's parts (matrix,
 * latency, soak); a partial run writes <date>-e2e-<parts>.json (parts in that order) so it never
 * replaces the day's full run. `--rate` sets the latency run's events/s (default: half the
 * fastest Arrow run); `--soak-seconds` how long the soak measures after its 90 s warm-up
 * (default 60).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { availableParallelism, cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import { kernelTable, runKernelBench } from './kernels.js';
import { engineTable, runEngineBench } from './engine.js';
import { E2E_PARTS, e2eTable, runE2eBench, type E2ePart } from './e2e.js';
import { FLINK_SOURCE, nexmarkTable, runNexmarkBench } from './nexmark-bench.js';

/** `e2e` and `nexmark` run only when named: they take minutes and start server processes */
const SUITES = ['kernels', 'engine', 'e2e', 'nexmark'] as const;
const DEFAULT_SUITES = ['kernels', 'engine'] as const;
type Suite = (typeof SUITES)[number];

function machine(): Record<string, string | number> {
  return {
    node: process.version,
    cpu: cpus()[0]?.model ?? 'unknown',
    cores: availableParallelism(),
    memoryGiB: Math.round(totalmem() / 2 ** 30),
  };
}

export interface BenchArgs {
  readonly suites: readonly Suite[];
  readonly json: boolean;
  readonly quick: boolean;
  /** e2e parts to run (none given: all), in the order given, each once */
  readonly only?: readonly E2ePart[];
  /** e2e's latency run events/s */
  readonly latencyRate?: number;
  /** e2e's soak: seconds measured after the warm-up */
  readonly soakSeconds?: number;
}

const ONLY_USAGE = `bench: --only takes e2e parts separated by commas (${E2E_PARTS.join(', ')})`;
const RATE_USAGE = 'bench: --rate takes the latency run\'s events/s, an integer ≥ 1000';
const SOAK_USAGE = 'bench: --soak-seconds takes the soak\'s measured seconds, an integer from 10 to 86400';

/** `sluice bench`'s arguments; throws on anything it does not know. */
export function parseBenchArgs(args: readonly string[]): BenchArgs {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...args],
      options: { json: { type: 'boolean' }, quick: { type: 'boolean' }, only: { type: 'string' }, rate: { type: 'string' }, 'soak-seconds': { type: 'string' } },
      allowPositionals: true,
      strict: true,
    });
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    if (/'--only\b/.test(message)) throw new Error(ONLY_USAGE);
    if (/'--rate\b/.test(message)) throw new Error(RATE_USAGE);
    if (/'--soak-seconds\b/.test(message)) throw new Error(SOAK_USAGE);
    throw new Error(`bench: ${message}`);
  }
  const { values, positionals } = parsed;
  for (const n of positionals) {
    if (!(SUITES as readonly string[]).includes(n)) throw new Error(`bench: unknown suite '${n}' (available: ${SUITES.join(', ')})`);
  }
  const suites = (positionals.length > 0 ? positionals : [...DEFAULT_SUITES]) as Suite[];
  if ((values.only !== undefined || values.rate !== undefined || values['soak-seconds'] !== undefined) && !suites.includes('e2e')) {
    throw new Error('bench: --only, --rate and --soak-seconds apply to the e2e suite, which is not named');
  }
  let only: E2ePart[] | undefined;
  if (values.only !== undefined) {
    const list = values.only.split(',').filter((p) => p !== '');
    const bad = list.find((p) => !(E2E_PARTS as readonly string[]).includes(p));
    if (list.length === 0 || bad !== undefined) throw new Error(`${ONLY_USAGE}${bad === undefined ? '' : `, not '${bad}'`}`);
    only = [...new Set(list)] as E2ePart[];
  }
  let latencyRate: number | undefined;
  if (values.rate !== undefined) {
    latencyRate = Number(values.rate);
    if (!/^\d+$/.test(values.rate) || latencyRate < 1000) throw new Error(RATE_USAGE);
  }
  let soakSeconds: number | undefined;
  const soak = values['soak-seconds'];
  if (soak !== undefined) {
    soakSeconds = Number(soak);
    if (!/^\d+$/.test(soak) || soakSeconds < 10 || soakSeconds > 86_400) throw new Error(SOAK_USAGE);
  }
  return { suites, json: values.json === true, quick: values.quick === true, only, latencyRate, soakSeconds };
}

export async function runBench(args: string[]): Promise<number> {
  const { suites, json, quick, only, latencyRate, soakSeconds } = parseBenchArgs(args);
  const log = (line: string): void => void process.stderr.write(`${line}\n`);
  const info = machine();
  log(`machine: ${info.cpu}, ${info.cores} cores, ${info.memoryGiB} GiB, Node ${info.node}`);
  const dir = join('bench', 'results');
  const stamp = new Date().toISOString().slice(0, 10);
  const save = (suite: string, results: unknown, always = false): void => {
    if (!json && !always) return;
    mkdirSync(dir, { recursive: true });
    const file = join(dir, `${stamp}-${suite}.json`);
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
      case 'e2e': {
        const report = await runE2eBench({ quick, log, only, latencyRate, soakSeconds }, dir, stamp);
        process.stdout.write(`\n${e2eTable(report)}\n`);
        // the e2e report is always written: it is what the chart and docs/benchmarks.md cite
        save(report.name, report, true);
        log(`wrote ${report.chart}`);
        break;
      }
      case 'nexmark': {
        const rows = await runNexmarkBench({ quick, log });
        process.stdout.write(`\n${nexmarkTable(rows)}\nFlink: ${FLINK_SOURCE}\n`);
        save(suite, { rows, flinkSource: FLINK_SOURCE }, true);
        break;
      }
    }
  }
  return 0;
}
