#!/usr/bin/env node
/**
 * The `sluice` command (DESIGN.md A1). Subcommands dispatch to their modules; each parses its
 * own flags. Output goes to stdout; diagnostics to stderr; exit code 0 on success, 1 on error,
 * 2 on bad usage. A command's module is loaded only when it runs: `sluice query` does not pay
 * for loading the server, DuckDB or the benchmarks.
 */
import { SluiceError } from '../engine/errors.js';

const USAGE = `usage: sluice <command> [options]

commands:
  serve [--config FILE] [--port N] [--host H] [--data DIR]
                                        run the server (default config: configs/sluice.yaml);
                                        SLUICE_* environment variables override flags and file
  gen [options]                         push generated bids over WebSocket ingest; prints
                                        events/s and ack latency (sluice gen --help)
  query "SELECT ..." [options]          run a read-only SQL query on a server
                                        (sluice query --help)
  bench [SUITE...] [--json] [--quick] [--only PART,...] [--rate N] [--soak-seconds N]
                                        run benchmark suites (kernels, engine; e2e, nexmark when named)

Details of every command: docs/cli.md
`;

export class UsageError extends Error {}

/** An expected failure without a SLUICE_* code: `sluice: message`, exit 1, no stack trace. */
class Failure extends Error {}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'serve': {
      const { runServe, ServeUsageError, ListenError } = await import('./serve.js');
      try {
        return await runServe(rest);
      } catch (err) {
        if (err instanceof ServeUsageError) throw new UsageError(err.message);
        if (err instanceof ListenError) throw new Failure(err.message);
        throw err;
      }
    }
    case 'bench':
      return (await import('../bench/index.js')).runBench(rest);
    case 'gen':
      return (await import('./gen.js')).runGen(rest);
    case 'query':
      return (await import('./query-cli.js')).runQuery(rest);
    case undefined:
    case '-h':
    case '--help':
    case 'help':
      process.stdout.write(USAGE);
      return command === undefined ? 2 : 0;
    default:
      throw new UsageError(`unknown command '${command}'`);
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    if (err instanceof UsageError) {
      process.stderr.write(`sluice: ${err.message}\n\n${USAGE}`);
      process.exit(2);
    }
    // expected failures are one line; anything else is a bug, and its stack says where
    if (err instanceof SluiceError) process.stderr.write(`sluice: ${err.code}: ${err.message}\n`);
    else if (err instanceof Failure) process.stderr.write(`sluice: ${err.message}\n`);
    else process.stderr.write(`sluice: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
