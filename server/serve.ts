/**
 * `sluice serve [--config FILE] [--port N] [--host H] [--data DIR]` (DESIGN.md A1).
 *
 * Flags override the config file and SLUICE_* environment variables override both (the layering
 * lives in engine/config.ts). On stdout: `listening on http://HOST:PORT` and a one-line summary
 * of streams and pipelines — the only two lines, so scripts can read the port of `--port 0`.
 * On stderr: pino JSON logs (level from SLUICE_LOG_LEVEL, default info). SIGTERM / SIGINT stop
 * gracefully (engine/signals.ts); a second signal exits at once.
 */
import { existsSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { pino, type Level } from 'pino';
import { formatDuration, loadConfig, resolveWorkerThreads, type ConfigOverrides, type PipelineConfig, type SluiceConfig } from '../engine/config.js';
import { sluiceError } from '../engine/errors.js';
import { stopOnSignals } from '../engine/signals.js';
import { startServer } from './app.js';

/** startServer's error for a port it cannot bind: the command prints it as one line */
export { ListenError } from './app.js';

/** Tried in order when --config is not given. */
const DEFAULT_CONFIGS = ['configs/sluice.yaml', 'sluice.yaml'];
const LEVELS: readonly Level[] = ['fatal', 'error', 'warn', 'info', 'debug', 'trace'];

export class ServeUsageError extends Error {}

function windowText(p: PipelineConfig): string {
  const w = p.window;
  switch (w.kind) {
    case 'tumbling':
      return `tumbling ${formatDuration(w.size)}`;
    case 'hopping':
      return `hopping ${formatDuration(w.size)} every ${formatDuration(w.slide)}`;
    case 'session':
      return `session gap ${formatDuration(w.gap)}`;
  }
}

/** `2 streams (bids, asks) · 1 pipeline (bid_stats: bids, tumbling 10s by auction) · 2 workers · data ./data` */
export function summary(config: SluiceConfig): string {
  const streams = Object.keys(config.streams);
  const pipelines = Object.entries(config.pipelines).map(([name, p]) => {
    const by = p.groupBy.length > 0 ? ` by ${p.groupBy.join(', ')}` : '';
    return `${name}: ${p.from}, ${windowText(p)}${by}`;
  });
  const plural = (n: number, word: string): string => `${n} ${word}${n === 1 ? '' : 's'}`;
  const parts = [
    `${plural(streams.length, 'stream')}${streams.length > 0 ? ` (${streams.join(', ')})` : ''}`,
    `${plural(pipelines.length, 'pipeline')}${pipelines.length > 0 ? ` (${pipelines.join('; ')})` : ''}`,
    plural(resolveWorkerThreads(config.workers.threads), 'worker'),
    `data ${config.storage.dir}`,
  ];
  if (config.server.auth !== undefined) parts.push('auth on');
  if (config.kafka !== undefined) parts.push(`kafka ${config.kafka.brokers.join(',')}`);
  return parts.join(' · ');
}

function parse(argv: string[]): { configPath: string; overrides: ConfigOverrides } {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        config: { type: 'string', short: 'c' },
        port: { type: 'string', short: 'p' },
        host: { type: 'string' },
        data: { type: 'string' },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (err) {
    throw new ServeUsageError(`serve: ${err instanceof Error ? err.message : String(err)}`);
  }
  const overrides: ConfigOverrides = {};
  if (values.port !== undefined) {
    if (!/^\d+$/.test(values.port) || Number(values.port) > 65535) throw new ServeUsageError(`serve: --port takes 0..65535, got '${values.port}'`);
    overrides.port = Number(values.port);
  }
  if (values.host !== undefined) overrides.host = values.host;
  if (values.data !== undefined) overrides.dataDir = values.data;
  let configPath = values.config;
  if (configPath === undefined) {
    configPath = DEFAULT_CONFIGS.find((p) => existsSync(p));
    if (configPath === undefined) {
      throw sluiceError('CONFIG_NOT_FOUND', `no --config given and none of ${DEFAULT_CONFIGS.join(', ')} exists in ${process.cwd()}`);
    }
  }
  return { configPath, overrides };
}

export async function runServe(argv: string[]): Promise<number> {
  const { configPath, overrides } = parse(argv);
  const levelEnv = process.env.SLUICE_LOG_LEVEL ?? 'info';
  if (!(LEVELS as readonly string[]).includes(levelEnv) && levelEnv !== 'silent') {
    throw new ServeUsageError(`serve: SLUICE_LOG_LEVEL must be one of ${LEVELS.join(', ')}, silent; got '${levelEnv}'`);
  }
  const log = pino({ level: levelEnv, base: { pid: process.pid } }, pino.destination({ fd: 2, sync: true }));
  const config = loadConfig(configPath, { overrides });
  const server = await startServer(config, { log });
  // Stop on a signal, or when the engine fails for good (the pool or DuckDB is gone): exit 1.
  let exitCode = 0;
  server.engine.on('fatal', () => {
    exitCode = 1;
    log.error('stopping: the engine cannot continue');
    process.kill(process.pid, 'SIGTERM');
  });
  // the signal handlers go in before the address is printed: whoever reads it may signal at once
  const stopped = new Promise<void>((resolve) => {
    stopOnSignals(() => server.close(), {
      exit: false,
      onSignal: (signal) => log.info({ signal }, 'stopping: draining batches, checkpointing'),
      onStopped: (err) => {
        if (err !== null) {
          exitCode = 1;
          log.error({ err: err instanceof Error ? err.message : String(err) }, 'stop failed');
        } else {
          log.info('stopped');
        }
        resolve();
      },
    });
  });
  log.info({ url: server.url, config: configPath }, 'listening');
  process.stdout.write(`listening on ${server.url}\n${summary(server.config)}\n`);
  await stopped;
  return exitCode;
}
