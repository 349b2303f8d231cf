/**
 * The benchmark's child processes: `sluice serve` on port 0 and `sluice gen` against it, with
 * the CPU time each of them used while gen was measuring (bench/e2e.ts, bench/nexmark-bench.ts).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { GenSummary } from '../server/gen.js';

const CLI = fileURLToPath(new URL('../server/cli.js', import.meta.url));

export interface Serve {
  readonly child: ChildProcess;
  readonly url: string;
  readonly exited: Promise<number | null>;
  stderr(): string;
}

function exitOf(child: ChildProcess): Promise<number | null> {
  return new Promise((resolve) => child.once('exit', (code) => resolve(code)));
}

/** `sluice serve --config configPath`, once it printed its address. */
export async function startServe(configPath: string): Promise<Serve> {
  const child = spawn(process.execPath, [CLI, 'serve', '--config', configPath], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, SLUICE_LOG_LEVEL: 'warn' },
  });
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err = (err + d.toString('utf8')).slice(-4000)));
  const exited = exitOf(child);
  const url = await new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString('utf8');
      const m = /^listening on (http:\/\/\S+)$/m.exec(out);
      if (m !== null) resolve(m[1]!);
    });
    void exited.then((code) => reject(new Error(`serve exited with ${String(code)} before listening: ${err}`)));
  });
  return { child, url, exited, stderr: () => err };
}

/** SIGTERM (a graceful stop); throws when serve did not exit with 0. */
export async function stopServe(s: Serve): Promise<void> {
  s.child.kill('SIGTERM');
  const code = await s.exited;
  if (code !== 0) throw new Error(`serve exited with ${String(code)}: ${s.stderr()}`);
}

/** CPU seconds (user + system) a process used so far; null where /proc is missing. */
function cpuSeconds(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // fields[11], [12] = utime, stime (the 14th and 15th of the whole line) in clock ticks
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return null;
  }
}

/** CPU seconds so far of the server and of gen, and when they were read */
interface CpuReading {
  readonly server: number | null;
  readonly gen: number | null;
  readonly at: number;
}

export interface GenRun {
  readonly gen: GenSummary;
  /** CPU seconds per wall second of serve and of gen while measuring (null without /proc) */
  readonly serverCores: number | null;
  readonly genCores: number | null;
}

/**
 * `sluice gen --json ...args` against `serve`, which runs warm-up + measured seconds once its
 * clock starts (after it built its ring, which may take seconds). The CPU of both processes is
 * read when gen prints its progress line for second warmup + 1 and for second warmup + seconds
 * − 1: inside the measured part by gen's own clock, whatever the ring took and however gen's
 * drain ends.
 */
export async function runGen(serve: Serve, args: readonly string[], warmup: number, seconds: number): Promise<GenRun> {
  const child = spawn(process.execPath, [CLI, 'gen', '--json', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  let partial = '';
  let cpuFrom: CpuReading | null = null;
  let cpuTo: CpuReading | null = null;
  const serverPid = serve.child.pid!;
  const readCpu = (): CpuReading => ({ server: cpuSeconds(serverPid), gen: cpuSeconds(child.pid!), at: performance.now() });
  child.stdout!.on('data', (d: Buffer) => (out += d.toString('utf8')));
  child.stderr!.on('data', (d: Buffer) => {
    const text = d.toString('utf8');
    err = (err + text).slice(-4000);
    const lines = (partial + text).split('\n');
    partial = lines.pop() ?? '';
    for (const line of lines) {
      const m = /^gen +(\d+)s:/.exec(line);
      if (m === null) continue;
      const second = Number(m[1]);
      if (second === warmup + 1) cpuFrom = readCpu();
      else if (second === warmup + seconds - 1) cpuTo = readCpu();
    }
  });
  await exitOf(child);
  if (out.trim() === '') throw new Error(`gen printed no summary: ${err}`);
  const cores = (k: 'server' | 'gen'): number | null => {
    // (assigned in the stderr listener: TypeScript's narrowing would call them null here)
    const a = cpuFrom as CpuReading | null;
    const b = cpuTo as CpuReading | null;
    if (a === null || b === null || a[k] === null || b[k] === null) return null;
    return (b[k]! - a[k]!) / ((b.at - a.at) / 1000);
  };
  return { gen: JSON.parse(out) as GenSummary, serverCores: cores('server'), genCores: cores('gen') };
}
