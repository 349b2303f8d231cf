/**
 * The embeddable API (README "Embedding"):
 *
 *   const engine = await Sluice.open('configs/sluice.yaml');
 *   engine.on('windows', ({ pipeline, result }) => ...);
 *   await engine.ingest('bids', arrowBytes, 'arrow');
 *   await engine.flush();
 *   const { rows } = await engine.query('SELECT * FROM bid_stats ORDER BY window_start');
 *   await engine.close();
 */
export { Sluice, type IngestFormat, type IngestResult, type QueryResult, type OpenOptions, type EngineStats, type WindowsEvent, type LogFn } from './runtime.js';
export { loadConfig, parseConfig, configFromObject, type SluiceConfig } from './config.js';
export { SluiceError, ErrorCodes } from './errors.js';
export { stopOnSignals, type StopOnSignalsOptions } from './signals.js';
export type { WindowResult } from './window-state.js';
export type { Batch, Column, StreamSchema } from './schema.js';
