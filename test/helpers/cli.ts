/**
 * The `sluice` CLI (dist/server/cli.js) in a child process, with no SLUICE_* variables of the
 * test run's own environment: `spawnCli` for a process the test talks to while it runs (serve),
 * `runCli` for one that runs to its end (gen, query).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { repoRoot } from './paths.js';

export const CLI = join(repoRoot, 'dist', 'server', 'cli.js');

export interface Spawned {
  readonly child: ChildProcess;
  stdout(): string;
  stderr(): string;
  /** the exit code (null: ended by a signal) */
  readonly exited: Promise<number | null>;
}

export interface CliOptions {
  /** added to the environment (which has no SLUICE_* variables of its own) */
  readonly env?: Record<string, string>;
  /** written to stdin, which is then closed; without it stdin is ignored */
  readonly input?: string;
  /** killed (SIGTERM) after this long; none by default */
  readonly timeoutMs?: number;
}

export function spawnCli(args: readonly string[], o: CliOptions = {}): Spawned {
  const cleanEnv = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('SLUICE_')));
  const child = spawn(process.execPath, [CLI, ...args], {
    env: { ...cleanEnv, ...o.env },
    stdio: [o.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
    ...(o.timeoutMs === undefined ? {} : { timeout: o.timeoutMs }),
  });
  if (o.input !== undefined) child.stdin!.end(o.input);
  let out = '';
  let err = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString('utf8')));
  child.stderr!.on('data', (d: Buffer) => (err += d.toString('utf8')));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, stdout: () => out, stderr: () => err, exited };
}

export interface Ran {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Run to the end: the exit code and everything it printed (all output read). */
export function runCli(args: readonly string[], o: CliOptions = {}): Promise<Ran> {
  const s = spawnCli(args, o);
  return new Promise((resolve) => s.child.on('close', (code) => resolve({ code, stdout: s.stdout(), stderr: s.stderr() })));
}
