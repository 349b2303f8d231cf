/**
 * What every route handler shares: the validated config, the engine, auth, metrics, the logger,
 * and whether the server is stopping.
 */

import type { Logger } from 'pino';
import type { SluiceConfig } from '../engine/config.js';
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
