#!/usr/bin/env node
/**
 * The `sluice` command (DESIGN.md A1). Subcommands dispatch to their modules; each parses its
 * own flags. Output goes to stdout; diagnostics to stderr; exit code 0 on success, 1 on error,
 * 2 on bad usage.
 */
import { runBench } from '../bench/index.js';
import { SluiceError } from '../engine/errors.js';
import { runServe, ServeUsageError } from './serve.js';

const USAGE = `usage: sluice <command> [options]

commands:
  serve [--config FILE] [--port N] [--host H] [--data DIR]
                                        run the server (default config: configs/sluice.yaml);
                                        SLUICE_* environment variables override flags and file
  bench [SUITE...] [--json] [--quick]   run benchmark suites (kernels, engine)

Details of every command: docs/cli.md
`;

export class UsageError extends Error {}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'serve':
      return runServe(rest);
    case 'bench':
      return runBench(rest);
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
    if (err instanceof UsageError || err instanceof ServeUsageError) {
      process.stderr.write(`sluice: ${err.message}\n\n${USAGE}`);
      process.exit(2);
    }
    if (err instanceof SluiceError) process.stderr.write(`sluice: ${err.code}: ${err.message}\n`);
    else process.stderr.write(`sluice: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
