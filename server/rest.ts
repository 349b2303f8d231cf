/**
 * The JSON routes of DESIGN.md A4 besides ingest: health, readiness, metrics, what is
 * configured (with live counters), SQL, the REST read of a result table, and flush.
 * Every /v1 route checks the bearer token first.
 */

import type { HttpRequest, HttpResponse } from 'uWebSockets.js';
import type { WindowSpec } from '../engine/config.js';
import type { ColumnType } from '../engine/schema.js';
import { asSluiceError, sluiceError, SluiceError } from '../engine/errors.js';
import { quoteIdent } from '../engine/parquet-export.js';
import { formatDuration } from '../engine/units.js';
import { MAX_TIMESTAMP_MS, parseInt64Decimal } from '../native-free-kernels/decode.js';
import { parseIsoTimestamp } from '../native-free-kernels/iso-time.js';
import type { QueryOptions, QueryResult } from '../engine/runtime.js';
import { unknownPipeline, type ServerContext } from './context.js';
import { mediaType, parseQuery, readBody, Reply, requestInfo, type RequestInfo } from './http.js';
import { queryResultArrow } from './sql-arrow.js';

export type Handler = (res: HttpResponse, req: HttpRequest) => void;

const ARROW_STREAM = 'application/vnd.apache.arrow.stream';

/** A /v1 route: Reply, request facts and the token check done before `handle` runs. */
export function v1(ctx: ServerContext, handle: (reply: Reply, info: RequestInfo, req: HttpRequest) => void): Handler {
  return (res, req) => {
    const reply = new Reply(res, req);
    const info = requestInfo(req);
    const denied = ctx.auth.checkRequest(req);
    if (denied !== null) {
      reply.error(denied);
      return;
    }
    try {
      handle(reply, info, req);
    } catch (err) {
      reply.error(err);
    }
  };
}

function iso(ms: number): string | null {
  return Number.isFinite(ms) ? new Date(ms).toISOString() : null;
}

function windowForm(w: WindowSpec): Record<string, unknown> {
  switch (w.kind) {
    case 'tumbling': return { tumbling: formatDuration(w.size) };
    case 'hopping': return { hopping: { size: formatDuration(w.size), slide: formatDuration(w.slide) } };
    case 'session': return { session: { gap: formatDuration(w.gap) } };
  }
}

// --- health ----------------------------------------------------------------------------------

/** GET and HEAD (the Reply leaves out the body of a HEAD). */
export function healthz(ctx: ServerContext): Handler {
  return (res, req) => {
    const reply = new Reply(res, req);
    // liveness: a failed engine needs a restart; everything else is alive. The 503 keeps the
    // {"status"} body of the 200 (what probes and the docs read)
    if (ctx.engine.status === 'failed') reply.json(503, { status: 'failed' });
    else reply.json(200, { status: 'ok' });
  };
}

/** GET and HEAD. */
export function readyz(ctx: ServerContext): Handler {
  return (res, req) => {
    const reply = new Reply(res, req);
    const status = ctx.engine.status;
    if (status === 'open' && !ctx.stopping) {
      reply.json(200, { status: 'ready' });
      return;
    }
    const why = status === 'failed' ? 'the engine failed: see the log, then restart' : 'the server is stopping';
    reply.error(sluiceError('NOT_READY', why));
  };
}

export function metrics(ctx: ServerContext): Handler {
  return (res) => {
    const reply = new Reply(res);
    ctx.metrics.text().then(
      (text) => reply.send(200, ctx.metrics.contentType, text),
      (err: unknown) => reply.error(err),
    );
  };
}

// --- what is configured ------------------------------------------------------------------------

export function streams(ctx: ServerContext): Handler {
  return v1(ctx, (reply) => {
    const s = ctx.engine.snapshot();
    const out = Object.entries(ctx.config.streams).map(([name, cfg]) => ({
      name,
      schema: { ...cfg.schema },
      eventTime: { column: cfg.eventTime.column, maxOutOfOrder: formatDuration(cfg.eventTime.maxOutOfOrder), idleTimeout: formatDuration(cfg.eventTime.idleTimeout) },
      archive: cfg.archive,
      ack: cfg.ack,
      pipelines: Object.entries(ctx.config.pipelines).filter(([, p]) => p.from === name).map(([p]) => p),
      events: s.ingestEvents[name] ?? 0,
      bytes: s.ingestBytes[name] ?? 0,
      batchesRejected: { ...s.batchesRejected[name] },
      maxEventTime: iso(s.maxEventTime[name] ?? -Infinity),
      watermark: iso(s.watermark[name] ?? -Infinity),
      committedSeq: s.committed[name]?.seq ?? 0,
    }));
    reply.json(200, { streams: out });
  });
}

export function pipelines(ctx: ServerContext): Handler {
  return v1(ctx, (reply) => {
    const s = ctx.engine.snapshot();
    const out = Object.entries(ctx.config.pipelines).map(([name, p]) => ({
      name,
      from: p.from,
      where: p.where ?? null,
      window: windowForm(p.window),
      groupBy: [...p.groupBy],
      select: { ...p.select },
      lateness: formatDuration(p.lateness),
      table: name,
      lateTable: `${name}__late`,
      events: s.pipelineEvents[name] ?? 0,
      lateEvents: s.lateEvents[name] ?? 0,
      windowsEmitted: s.windowsEmitted[name] ?? 0,
    }));
    reply.json(200, { pipelines: out });
  });
}

// --- SQL ---------------------------------------------------------------------------------------

/**
 * Body types of the SQL route. application/json is always `{"sql", "params"}`. The others —
 * text/plain (fetch's default for a string body), form-urlencoded (curl -d's default) or none —
 * carry the same JSON object when the body starts with `{`, and otherwise the SQL text itself
 * (no parameters): `curl --data-binary 'SELECT 1' .../v1/sql`. No SQL statement starts with `{`.
 */
const SQL_BODY_TYPES = new Set(['application/json', 'text/plain', 'application/x-www-form-urlencoded', '']);
/** A SQL request is a query, not data: bodies beyond 1 MiB (or server.maxPayload, if smaller) get 413. */
const SQL_BODY_LIMIT = 1 << 20;

export function sql(ctx: ServerContext): Handler {
  return v1(ctx, (reply, info) => {
    const type = mediaType(info.contentType);
    if (!SQL_BODY_TYPES.has(type)) {
      reply.error(sluiceError('UNSUPPORTED_MEDIA_TYPE', `send the query as application/json {"sql": "...", "params": [...]} (or the SQL text as text/plain), not ${info.contentType}`), true);
      return;
    }
    const arrow = info.accept.toLowerCase().includes(ARROW_STREAM);
    const limit = Math.min(SQL_BODY_LIMIT, ctx.config.server.maxPayload);
    readBody(reply, info, limit, 'the SQL request limit').then((body) => {
      const { sql: text, params } = parseSqlBody(Buffer.from(body.buffer, body.byteOffset, body.length).toString('utf8'), type === 'application/json');
      return runQuery(ctx, reply, text, params, arrow);
    }).catch((err: unknown) => reply.error(err, err instanceof SluiceError && err.code === 'SLUICE_PAYLOAD_TOO_LARGE'));
  });
}

function parseSqlBody(body: string, json: boolean): { sql: string; params: unknown[] } {
  if (!json && !body.trimStart().startsWith('{')) {
    if (body.trim() === '') throw sluiceError('BAD_REQUEST', 'the body is empty: send {"sql": "...", "params": [...]} or the SQL text');
    return { sql: body, params: [] };
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch (err) {
    throw sluiceError('BAD_REQUEST', `the body is not JSON: ${err instanceof Error ? err.message : String(err)}`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw sluiceError('BAD_REQUEST', 'expected a JSON object {"sql": "...", "params": [...]}');
  const { sql: text, params, ...rest } = parsed as Record<string, unknown>;
  const extra = Object.keys(rest);
  if (extra.length > 0) throw sluiceError('BAD_REQUEST', `unknown field${extra.length > 1 ? 's' : ''} ${extra.map((k) => `"${k}"`).join(', ')}: expected "sql" and "params"`);
  if (typeof text !== 'string' || text.trim() === '') throw sluiceError('BAD_REQUEST', '"sql" must be a non-empty string');
  if (params !== undefined && !Array.isArray(params)) throw sluiceError('BAD_REQUEST', '"params" must be an array of positional parameters ($1, $2, ...)');
  return { sql: text, params: params ?? [] };
}

/** A client's query (/v1/sql, the results route), counted in sluice_sql_queries_total by outcome. */
async function clientQuery(ctx: ServerContext, text: string, params: readonly unknown[], opts: QueryOptions): Promise<QueryResult> {
  try {
    const result = await ctx.engine.query(text, params, opts);
    ctx.metrics.sqlQueries.inc({ outcome: 'ok' });
    return result;
  } catch (err) {
    const e = asSluiceError(err);
    ctx.metrics.sqlQueries.inc({ outcome: e.code });
    throw e;
  }
}

const TRUNCATED: Readonly<Record<string, string>> = { 'Sluice-Truncated': 'true' };

/** 200 with `{...first, columns, rows}`, and `truncated` (body and header) when maxRows cut it. */
function replyRows(reply: Reply, result: QueryResult, first: Record<string, unknown> = {}): void {
  const body = { ...first, columns: result.columns, rows: result.rows };
  if (result.truncated === true) reply.json(200, { ...body, truncated: true }, TRUNCATED);
  else reply.json(200, body);
}

async function runQuery(ctx: ServerContext, reply: Reply, text: string, params: readonly unknown[], arrow: boolean): Promise<void> {
  const { maxRows, timeout } = ctx.config.server.sql;
  const result = await clientQuery(ctx, text, params, { readOnly: true, maxRows, timeoutMs: timeout });
  if (arrow) reply.send(200, ARROW_STREAM, queryResultArrow(result), result.truncated === true ? TRUNCATED : {});
  else replyRows(reply, result);
}

// --- REST results --------------------------------------------------------------------------------

/** `?from=` / `?to=`: ISO-8601 or integer ms since the epoch */
function timeParam(name: string, v: string): number {
  const ms = /^-?\d+$/.test(v) ? Number(v) : parseIsoTimestamp(v);
  if (!Number.isFinite(ms)) throw sluiceError('BAD_REQUEST', `${name}: expected an ISO-8601 timestamp or ms since the epoch, got '${v}'`);
  if (Math.abs(ms) > MAX_TIMESTAMP_MS) throw sluiceError('BAD_REQUEST', `${name}: '${v}' is out of range (at most ${MAX_TIMESTAMP_MS} ms from the epoch)`);
  return ms;
}

function countParam(name: string, v: string, max: number): number {
  if (!/^\d+$/.test(v) || Number(v) > max) throw sluiceError('BAD_REQUEST', `${name}: expected an integer from 0 to ${max}, got '${v}'`);
  return Number(v);
}

/** scratch words for parseInt64Decimal, which only checks here */
const INT64_SCRATCH = new Int32Array(2);

/**
 * A groupBy column's value from the query string, checked here so that a bad one is a 400 that
 * names the parameter: the value bound to `$i`, and the SQL that compares the column with it.
 */
function keyParam(name: string, type: ColumnType, v: string, i: number): { value: string | number | boolean; sql: string } {
  const col = quoteIdent(name);
  const bad = (expected: string): SluiceError => sluiceError('BAD_REQUEST', `${name}: expected ${expected}, got '${v}'`);
  switch (type) {
    case 'int64':
      // text cast by DuckDB: exact beyond 2^53
      if (!parseInt64Decimal(v, INT64_SCRATCH, 0)) throw bad('a 64-bit integer');
      return { value: v, sql: `${col} = $${i}::BIGINT` };
    case 'int32':
      if (!/^-?\d+$/.test(v) || Math.abs(Number(v)) > 2 ** 31 || Number(v) === 2 ** 31) throw bad('a 32-bit integer');
      return { value: Number(v), sql: `${col} = $${i}::INTEGER` };
    case 'float64':
      // also NaN, Infinity and -Infinity by name, as /v1/sql writes them (in DuckDB NaN = NaN)
      if (v.trim() === '' || (Number.isNaN(Number(v)) && v !== 'NaN')) throw bad('a number');
      return { value: v, sql: `${col} = $${i}::DOUBLE` };
    case 'bool':
      if (v !== 'true' && v !== 'false') throw bad('true or false');
      return { value: v === 'true', sql: `${col} = $${i}::BOOLEAN` };
    case 'timestamp':
      return { value: timeParam(name, v), sql: `${col} = make_timestamp_ms($${i}::BIGINT)` };
    case 'string':
      return { value: v, sql: `${col} = $${i}::VARCHAR` };
  }
}

/**
 * `GET /v1/pipelines/{name}/results?from=&to=&limit=&offset=&<groupByCol>=`: rows with
 * from ≤ window_start < to and the given group keys (repeated parameters all apply: `from` twice
 * means both bounds), ordered by window_start, window_end, then the keys in groupBy order, nulls
 * last; `offset` rows skipped, at most `limit` rows (default and maximum server.sql.maxRows; a
 * larger limit is a 400). When more rows match than the answer holds, it says
 * `"truncated": true` and sends `Sluice-Truncated: true`, as /v1/sql does: read on with `offset`.
 * A null group key cannot be asked for here (use /v1/sql).
 *
 * An empty parameter is an absent one — `from=`, `to=`, `limit=`, `offset=`, as in the route
 * template of DESIGN.md A4, which a client fills in part — with one exception: an empty value
 * of a *string* groupBy column is the equality filter on '' (the empty string is a real key and
 * there is no other way to ask for it). For a groupBy column of any other type, where '' is no
 * value, empty means absent too.
 */
export function results(ctx: ServerContext): Handler {
  return v1(ctx, (reply, info, req) => {
    const name = req.getParameter(0);
    const unknown = unknownPipeline(ctx, name);
    if (unknown !== null) throw unknown;
    const p = ctx.config.pipelines[name]!;
    const schema = ctx.config.streams[p.from]!.schema;
    const { maxRows } = ctx.config.server.sql;
    const where: string[] = [];
    const params: (string | number | boolean)[] = [];
    let limit = maxRows;
    let offset = 0;
    for (const [k, v] of parseQuery(info.query)) {
      if (v === '' && !(p.groupBy.includes(k) && schema[k] === 'string')) {
        // absent (see above); an unknown parameter is still a 400, empty or not
        if (k === 'from' || k === 'to' || k === 'limit' || k === 'offset' || p.groupBy.includes(k)) continue;
      }
      if (k === 'from' || k === 'to') {
        params.push(timeParam(k, v));
        where.push(`window_start ${k === 'from' ? '>=' : '<'} make_timestamp_ms($${params.length}::BIGINT)`);
      } else if (k === 'limit') {
        limit = countParam(k, v, maxRows);
      } else if (k === 'offset') {
        offset = countParam(k, v, Number.MAX_SAFE_INTEGER);
      } else if (k === 'token') {
        // the bearer token, already checked
      } else if (p.groupBy.includes(k)) {
        const key = keyParam(k, schema[k]!, v, params.length + 1);
        params.push(key.value);
        where.push(key.sql);
      } else {
        throw sluiceError('BAD_REQUEST', `unknown query parameter '${k}': expected from, to, limit, offset${p.groupBy.length > 0 ? ` or a groupBy column (${p.groupBy.join(', ')})` : ''}`);
      }
    }
    const order = ['window_start', 'window_end', ...p.groupBy.map(quoteIdent)].join(', ');
    // one row more than asked for tells whether there are more (maxRows: `truncated`)
    const text = `SELECT * FROM ${quoteIdent(name)}${where.length > 0 ? ` WHERE ${where.join(' AND ')}` : ''} ORDER BY ${order} LIMIT ${limit + 1} OFFSET ${offset}`;
    clientQuery(ctx, text, params, { maxRows: limit, timeoutMs: ctx.config.server.sql.timeout }).then(
      (r) => replyRows(reply, r, { pipeline: name }),
      (err: unknown) => reply.error(err),
    );
  });
}

// --- flush -------------------------------------------------------------------------------------

export function flush(ctx: ServerContext): Handler {
  return v1(ctx, (reply) => {
    const started = performance.now();
    ctx.engine.flush().then(
      () => reply.json(200, { flushed: true, ms: Math.round(performance.now() - started) }),
      (err: unknown) => reply.error(err),
    );
  });
}
