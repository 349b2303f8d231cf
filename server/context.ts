/**
 * What every route handler shares: the validated config, the engine, auth, metrics, the logger,
 * and whether the server is stopping.
 */

import type { Logger } from 'pino';
import type { SluiceConfig } from '../engine/config.js';
import { sluiceError, type SluiceError } from '../engine/errors.js';
import type { Sluice } from '../engine/runtime.js';
import type { Auth } from './auth.js';
import type { Metrics } from './metrics.js';

export interface ServerContext {
  readonly config: SluiceConfig;
  readonly engine: Sluice;
  readonly auth: Auth;
  readonly metrics: Metrics;
  readonly log: Logger;
  /** set when close() starts: new connections and batches are refused */
  stopping: boolean;
  /** bytes of HTTP ingest bodies being read or waiting for the engine, at most workers.queue
   *  (one body is always let in) */
  bodyBytes: number;
}

/** SLUICE_UNKNOWN_STREAM naming the configured streams, or null when `name` is one. */
export function unknownStream(ctx: ServerContext, name: string): SluiceError | null {
  if (Object.hasOwn(ctx.config.streams, name)) return null;
  return sluiceError('UNKNOWN_STREAM', `no stream named '${name}' (streams: ${Object.keys(ctx.config.streams).join(', ') || 'none'})`);
}

/** SLUICE_UNKNOWN_PIPELINE naming the configured pipelines, or null when `name` is one. */
export function unknownPipeline(ctx: ServerContext, name: string): SluiceError | null {
  if (Object.hasOwn(ctx.config.pipelines, name)) return null;
  return sluiceError('UNKNOWN_PIPELINE', `no pipeline named '${name}' (pipelines: ${Object.keys(ctx.config.pipelines).join(', ') || 'none'})`);
}
