/**
 * The error catalogue: every error Sluice reports to a user carries one of these stable codes.
 *
 * Codes never change meaning and are never renamed (programs outside this repository match
 * on them). Each entry says who is at fault (`domain`), the HTTP status the server maps it to,
 * and whether retrying the same request can succeed. docs/errors.md documents every code;
 * test/engine/errors.test.ts fails when the two drift apart.
 */

export type ErrorDomain = 'user' | 'external' | 'internal';

export interface ErrorDef {
  readonly code: string;
  readonly status: number;
  readonly domain: ErrorDomain;
  readonly retryable: boolean;
  readonly summary: string;
}

function def(code: string, status: number, domain: ErrorDomain, retryable: boolean, summary: string): ErrorDef {
  return Object.freeze({ code, status, domain, retryable, summary });
}

export const ErrorCodes = Object.freeze({
  // --- configuration -----------------------------------------------------------------------
  CONFIG_INVALID: def('SLUICE_CONFIG_INVALID', 400, 'user', false,
    'The configuration does not match the schema; the message names the key path.'),
  CONFIG_PARSE: def('SLUICE_CONFIG_PARSE', 400, 'user', false,
    'The configuration file is not valid YAML or JSON.'),
  CONFIG_NOT_FOUND: def('SLUICE_CONFIG_NOT_FOUND', 400, 'user', false,
    'The configuration file does not exist or cannot be read.'),
  CONFIG_ENV_MISSING: def('SLUICE_CONFIG_ENV_MISSING', 400, 'user', false,
    'A ${VAR} reference in the configuration names an environment variable that is not set.'),

  // --- expressions (where clauses, aggregate arguments) ----------------------------------------
  EXPR_SYNTAX: def('SLUICE_EXPR_SYNTAX', 400, 'user', false,
    'An expression could not be parsed; the message gives line:column.'),
  EXPR_UNKNOWN_COLUMN: def('SLUICE_EXPR_UNKNOWN_COLUMN', 400, 'user', false,
    'An expression names a column the stream schema does not have.'),
  EXPR_UNKNOWN_FUNCTION: def('SLUICE_EXPR_UNKNOWN_FUNCTION', 400, 'user', false,
    'An expression calls a function that does not exist.'),
  EXPR_TYPE: def('SLUICE_EXPR_TYPE', 400, 'user', false,
    'An expression applies an operator or function to operands of the wrong type.'),

  // --- batches (decoders) --------------------------------------------------------------------
  BATCH_UNKNOWN_FORMAT: def('SLUICE_BATCH_UNKNOWN_FORMAT', 400, 'user', false,
    'A binary batch is neither an Arrow IPC stream nor MessagePack.'),
  BATCH_MALFORMED: def('SLUICE_BATCH_MALFORMED', 400, 'user', false,
    'A batch could not be decoded: truncated bytes, invalid encoding or inconsistent lengths.'),
  BATCH_MISSING_COLUMN: def('SLUICE_BATCH_MISSING_COLUMN', 400, 'user', false,
    'A column-oriented batch lacks a column of the stream schema.'),
  BATCH_UNKNOWN_COLUMN: def('SLUICE_BATCH_UNKNOWN_COLUMN', 400, 'user', false,
    'A batch carries a column or key the stream schema does not declare.'),
  BATCH_TYPE_MISMATCH: def('SLUICE_BATCH_TYPE_MISMATCH', 400, 'user', false,
    'A value or an Arrow column has a type the stream schema does not accept for that column.'),
  BATCH_BAD_TIMESTAMP: def('SLUICE_BATCH_BAD_TIMESTAMP', 400, 'user', false,
    'A timestamp is unparseable, out of range, or null in the event-time column.'),
  BATCH_TOO_MANY_ROWS: def('SLUICE_BATCH_TOO_MANY_ROWS', 413, 'user', false,
    'A batch has more rows than one batch may carry.'),
  BATCH_UNSUPPORTED: def('SLUICE_BATCH_UNSUPPORTED', 400, 'user', false,
    'A well-formed batch uses an encoding feature Sluice does not read (compressed or big-endian Arrow IPC, Arrow metadata before V4).'),

  // --- storage (DuckDB file, Parquet export, SQL) ----------------------------------------------
  STORAGE_PIPELINE_CHANGED: def('SLUICE_STORAGE_PIPELINE_CHANGED', 400, 'user', false,
    'A pipeline or archived stream is configured differently from when its DuckDB table was created.'),
  STORAGE_LOCKED: def('SLUICE_STORAGE_LOCKED', 503, 'external', true,
    'The DuckDB file is already open in another process, or in another Storage instance of this process.'),
  STORAGE_IO: def('SLUICE_STORAGE_IO', 500, 'external', true,
    'Reading or writing the DuckDB file or a Parquet file failed (disk full, permissions, a damaged file).'),
  STORAGE_QUERY: def('SLUICE_STORAGE_QUERY', 400, 'user', false,
    'DuckDB rejected a SQL query: syntax error, unknown table or column, bad parameter or type mismatch.'),

  SQL_NOT_READ_ONLY: def('SLUICE_SQL_NOT_READ_ONLY', 400, 'user', false,
    'POST /v1/sql runs one read-only statement: SELECT, WITH, FROM, VALUES, TABLE, EXPLAIN, DESCRIBE, SHOW or SUMMARIZE (DuckDB\'s statement type is checked, and it runs in a read-only transaction); anything else, or several statements, is refused.'),
  SQL_TIMEOUT: def('SLUICE_SQL_TIMEOUT', 400, 'user', false,
    'The query ran longer than server.sql.timeout and was interrupted.'),

  // --- durable ingest log (ack: durable) --------------------------------------------------------
  WAL_IO: def('SLUICE_WAL_IO', 503, 'external', true,
    'The durable ingest log could not write or fsync a batch; it was not acknowledged. After a failed fsync the log refuses every further batch until restart.'),
  WAL_CORRUPT: def('SLUICE_WAL_CORRUPT', 500, 'external', false,
    'At start-up: a frame of the durable ingest log failed its checksum somewhere other than a torn tail; the message gives the file and offset.'),

  // --- engine (ingest, workers, lifecycle) ------------------------------------------------------
  UNKNOWN_STREAM: def('SLUICE_UNKNOWN_STREAM', 404, 'user', false,
    'The batch names a stream the configuration does not declare.'),
  PAYLOAD_TOO_LARGE: def('SLUICE_PAYLOAD_TOO_LARGE', 413, 'user', false,
    'The batch is larger than server.maxPayload.'),
  OVERLOADED: def('SLUICE_OVERLOADED', 503, 'external', true,
    'The engine is full (received batches waiting for workers fill workers.queue): retry later.'),
  WORKER_FAILED: def('SLUICE_WORKER_FAILED', 500, 'internal', true,
    'The worker thread processing the batch died (crash, out of memory); nothing of the batch was applied, the pool replaced the worker: send the batch again.'),
  SHUTTING_DOWN: def('SLUICE_SHUTTING_DOWN', 503, 'external', true,
    'The engine is stopping and accepts no more batches.'),
  ENGINE_FAILED: def('SLUICE_ENGINE_FAILED', 500, 'internal', false,
    'The engine stopped after a failure it cannot recover from (e.g. the DuckDB file could not be written); restart it — state and results are intact up to the last commit.'),

  // --- server (HTTP and WebSocket routes) --------------------------------------------------------
  UNAUTHORIZED: def('SLUICE_UNAUTHORIZED', 401, 'user', false,
    'A /v1 route was called without a bearer token, or with one that server.auth.tokens does not list.'),
  NOT_FOUND: def('SLUICE_NOT_FOUND', 404, 'user', false,
    'No route matches the method and path.'),
  METHOD_NOT_ALLOWED: def('SLUICE_METHOD_NOT_ALLOWED', 405, 'user', false,
    'The path exists but not for this method; the Allow header lists the methods it takes.'),
  UNKNOWN_PIPELINE: def('SLUICE_UNKNOWN_PIPELINE', 404, 'user', false,
    'The route names a pipeline the configuration does not declare.'),
  BAD_REQUEST: def('SLUICE_BAD_REQUEST', 400, 'user', false,
    'The request is malformed: a JSON body that does not parse or lacks a field, or a query parameter with a bad value.'),
  UNSUPPORTED_MEDIA_TYPE: def('SLUICE_UNSUPPORTED_MEDIA_TYPE', 415, 'user', false,
    'The Content-Type of an ingest or SQL request is not one the route accepts.'),
  CREDITS_EXCEEDED: def('SLUICE_CREDITS_EXCEEDED', 400, 'user', false,
    'A WebSocket ingest client sent more batches than its credits allow without waiting for acks; the connection is closed with 1008.'),
  ACKS_NOT_READ: def('SLUICE_ACKS_NOT_READ', 400, 'user', false,
    'A WebSocket ingest client let more than 1 MiB of acks and nacks pile up unread; the connection is closed with 1008 (batches it sent are applied, resend the unacknowledged ones on a new connection).'),
  SUBSCRIBER_TOO_SLOW: def('SLUICE_SUBSCRIBER_TOO_SLOW', 503, 'external', true,
    'A subscriber did not read window results fast enough (more than server.subscribe.maxBuffered unsent); the connection is closed with 1013.'),
  NOT_READY: def('SLUICE_NOT_READY', 503, 'external', true,
    '/readyz: the engine is not (or no longer) able to take batches — starting, stopping, or failed.'),

  // --- internal ------------------------------------------------------------------------------
  INTERNAL: def('SLUICE_INTERNAL', 500, 'internal', true,
    'A bug or an unexpected condition inside Sluice; the message carries the detail.'),
});

export type ErrorKey = keyof typeof ErrorCodes;

export class SluiceError extends Error {
  readonly code: string;
  readonly status: number;
  readonly domain: ErrorDomain;
  readonly retryable: boolean;

  constructor(def: ErrorDef, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'SluiceError';
    this.code = def.code;
    this.status = def.status;
    this.domain = def.domain;
    this.retryable = def.retryable;
  }

  /** The JSON body of an HTTP error response and of a WebSocket nack. */
  toJSON(): { code: string; message: string } {
    return { code: this.code, message: this.message };
  }
}

/** Shorthand: `throw sluiceError('BATCH_MALFORMED', 'truncated record batch')`. */
export function sluiceError(key: ErrorKey, message: string, cause?: unknown): SluiceError {
  return new SluiceError(ErrorCodes[key], message, cause === undefined ? undefined : { cause });
}

/** Any thrown value as a SluiceError: user errors keep their code, everything else is INTERNAL. */
export function asSluiceError(err: unknown): SluiceError {
  if (err instanceof SluiceError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new SluiceError(ErrorCodes.INTERNAL, message, { cause: err });
}

export function allErrorDefs(): ErrorDef[] {
  return Object.values(ErrorCodes);
}
