/**
 * The HTTP routes of DESIGN.md A4 besides SQL (test/server/sql.test.ts) over real sockets:
 * dashboard, health, readiness (also while the server closes), metrics, what is configured
 * with counters that move, the REST read of a result table — its filters and paging compared
 * row by row with DuckDB over the same events — flush, ingest statuses, 404 and 405 with
 * `Allow`, and the exact error body.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { encodeBatches, eventTimes, makeEvents, removeFreshDirs, T0 } from '../helpers/oracle.js';
import { testServer, until, within } from '../helpers/server.js';
import { openMemory, queryRows, loadBatch, type JsValue } from '../helpers/duckdb.js';
import { assertError, call, contentLength, json, rawRequest, RawConnection, type Answer, type RawAnswer } from '../helpers/http.js';
import { sliceBatch, type Batch } from '../../engine/schema.js';
import type { SluiceServer } from '../../server/app.js';

const ARROW = 'application/vnd.apache.arrow.stream';
const MAX_ROWS = 40;
/** 2000 events over 120 s of event time, disorder within maxOutOfOrder (2 s): none late */
const EVENTS = makeEvents({ seed: 5, n: 2000, step: 60, disorder: 1500 });
const FIRST = 1200;

type Row = [string, string, number | string | null, number, number | null, number | null];

interface ResultsAnswer {
  pipeline: string;
  columns: { name: string; type: string }[];
  rows: Row[];
  truncated?: boolean;
}

let server: SluiceServer;
/** every row of the `tumble` table as the route must give it, in the route's order */
let oracle: Row[];

function jsonInt(v: JsValue): number | string | null {
  if (v === null) return null;
  const b = BigInt(v as bigint | number);
  return b <= BigInt(Number.MAX_SAFE_INTEGER) && b >= -BigInt(Number.MAX_SAFE_INTEGER) ? Number(b) : b.toString();
}

/** Tumbling 10 s windows per auction, count / sum / max of price, computed by DuckDB from the events. */
async function oracleRows(events: Batch): Promise<Row[]> {
  const db = await openMemory();
  try {
    await loadBatch(db.conn, 'ev', events);
    const rows = await queryRows(db.conn,
      'SELECT ts - ts % 10000 AS ws, count(*) AS n, sum(price) AS total, max(price) AS top, auction FROM ev ' +
      'GROUP BY ws, auction ORDER BY ws, auction NULLS LAST');
    return rows.map(([ws, n, total, top, auction]) => [
      new Date(Number(ws)).toISOString(), new Date(Number(ws) + 10_000).toISOString(), jsonInt(auction!), Number(n),
      total === null ? null : Number(total), top === null ? null : Number(top),
    ]);
  } finally {
    db.close();
  }
}

/** Equal rows: sums of doubles within 1e-12 relative (addition order), everything else exactly. */
function assertRows(got: readonly Row[], want: readonly Row[], label: string): void {
  assert.equal(got.length, want.length, `${label}: ${got.length} rows, want ${want.length}`);
  got.forEach((g, i) => {
    const w = want[i]!;
    assert.deepEqual([g[0], g[1], g[2], g[3], g[5]], [w[0], w[1], w[2], w[3], w[5]], `${label}: row ${i}`);
    if (w[4] === null || g[4] === null) assert.equal(g[4], w[4], `${label}: row ${i} total`);
    else assert.ok(Math.abs(g[4] - w[4]) <= 1e-12 * Math.max(1, Math.abs(w[4])), `${label}: row ${i} total ${g[4]} vs ${w[4]}`);
  });
}

async function results(query: string): Promise<{ answer: Answer; body: ResultsAnswer }> {
  const answer = await call(server, `/v1/pipelines/tumble/results${query}`);
  assert.equal(answer.status, 200, `${query}: ${answer.text.slice(0, 300)}`);
  const body = json(answer) as ResultsAnswer;
  assert.equal(body.pipeline, 'tumble');
  assert.equal(answer.headers.get('sluice-truncated'), body.truncated === true ? 'true' : null, `${query}: header and body agree`);
  return { answer, body };
}

async function ingest(events: Batch): Promise<void> {
  let sent = 0;
  for (const p of encodeBatches(events, 400, 'arrow')) {
    const a = await call(server, '/v1/streams/bids/ingest', { method: 'POST', headers: { 'content-type': ARROW }, body: p.bytes });
    assert.equal(a.status, 200, a.text);
    assert.deepEqual(json(a), { rows: Math.min(400, events.length - sent) });
    sent += 400;
  }
}

async function streamsInfo(): Promise<Record<string, unknown>> {
  const body = json(await call(server, '/v1/streams')) as { streams: Record<string, unknown>[] };
  assert.equal(body.streams.length, 1);
  return body.streams[0]!;
}

async function pipelinesInfo(): Promise<Record<string, unknown>> {
  const body = json(await call(server, '/v1/pipelines')) as { pipelines: Record<string, unknown>[] };
  assert.equal(body.pipelines.length, 1);
  return body.pipelines[0]!;
}

/** The value of one sample line of a Prometheus text, 0 when absent. */
function sample(text: string, series: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? 0 : Number(line.slice(series.length + 1));
}

before(async () => {
  server = await testServer({ server: { sql: { maxRows: MAX_ROWS } } });
  oracle = await oracleRows(EVENTS);
});

after(async () => {
  await server?.close();
  removeFreshDirs();
});

describe('REST routes', () => {
  test('GET / is the dashboard page; /healthz and /readyz answer 200 when up', async () => {
    const page = await call(server, '/');
    assert.equal(page.status, 200);
    assert.match(page.headers.get('content-type') ?? '', /^text\/html/);
    assert.match(page.text, /^<!doctype html>/i);
    assert.deepEqual(json(await call(server, '/healthz')), { status: 'ok' });
    const ready = await call(server, '/readyz');
    assert.equal(ready.status, 200);
    assert.deepEqual(json(ready), { status: 'ready' });
  });

  test('/v1/streams and /v1/pipelines describe the config, with counters that move with ingest and flush', async () => {
    const s0 = await streamsInfo();
    assert.equal(s0['name'], 'bids');
    assert.deepEqual(s0['pipelines'], ['tumble']);
    assert.equal(s0['events'], 0);
    assert.equal(s0['bytes'], 0);
    assert.equal(s0['maxEventTime'], null);
    const p0 = await pipelinesInfo();
    assert.deepEqual({ name: p0['name'], from: p0['from'], window: p0['window'], groupBy: p0['groupBy'], events: p0['events'], windowsEmitted: p0['windowsEmitted'] },
      { name: 'tumble', from: 'bids', window: { tumbling: '10s' }, groupBy: ['auction'], events: 0, windowsEmitted: 0 });
    const m0 = (await call(server, '/metrics')).text;
    const series = 'sluice_ingest_events_total{stream="bids",transport="http"}';

    const first = sliceBatch(EVENTS, 0, FIRST);
    await ingest(first);
    const s1 = await streamsInfo();
    assert.equal(s1['events'], FIRST);
    assert.ok((s1['bytes'] as number) > 0);
    assert.equal(s1['maxEventTime'], new Date(Math.max(...eventTimes(first))).toISOString());
    const m1 = (await call(server, '/metrics')).text;
    assert.equal(sample(m1, series) - sample(m0, series), FIRST);

    // windows the watermark closed reach the table without a flush (acks come before
    // processing: wait); the windows it has not passed do not
    let committed = 0;
    await until(async () => {
      const p = await pipelinesInfo();
      committed = (await server.engine.query('SELECT count(*)::INTEGER FROM tumble')).rows[0]![0] as number;
      return p['events'] === FIRST && committed > 0 && committed === p['windowsEmitted'];
    }, 'the first events to be processed');
    assert.ok(committed < oracle.length, `${committed} of ${oracle.length} windows committed before the flush`);
    const early = await results('?limit=0');
    assert.equal(early.body.truncated, true);

    await ingest(sliceBatch(EVENTS, FIRST, EVENTS.length));
    const flushed = await call(server, '/v1/flush', { method: 'POST' });
    assert.equal(flushed.status, 200);
    const f = json(flushed) as Record<string, unknown>;
    assert.equal(f['flushed'], true);
    assert.equal(typeof f['ms'], 'number');

    const s2 = await streamsInfo();
    assert.equal(s2['events'], EVENTS.length);
    // the flush moved the clock past the last window it closed (lateness 0, maxOutOfOrder 2 s)
    const lastEnd = Math.max(...oracle.map((r) => Date.parse(r[1])));
    assert.equal(s2['watermark'], new Date(lastEnd).toISOString());
    assert.equal(s2['maxEventTime'], new Date(lastEnd + 2000).toISOString());
    const p2 = await pipelinesInfo();
    assert.equal(p2['events'], EVENTS.length);
    assert.equal(p2['lateEvents'], 0);
    assert.equal(p2['windowsEmitted'], oracle.length);
    const m2 = (await call(server, '/metrics')).text;
    assert.equal(sample(m2, series) - sample(m0, series), EVENTS.length);
  });

  test('/metrics is Prometheus text with the sluice_ prefix', async () => {
    const m = await call(server, '/metrics');
    assert.equal(m.status, 200);
    assert.match(m.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
    const samples = m.text.split('\n').filter((l) => l !== '' && !l.startsWith('#'));
    assert.ok(samples.length > 10);
    // prom-client writes NaN as "Nan"; Prometheus reads special values case-insensitively
    for (const l of samples) assert.match(l, /^sluice_[a-z0-9_]+(\{.*\})? (-?[0-9.e+-]+|NaN|[+-]Inf)$/i, l);
    assert.equal(sample(m.text, 'sluice_pipeline_events_total{pipeline="tumble"}'), EVENTS.length);
  });
});

describe('GET /v1/pipelines/{name}/results', () => {
  test('every row, equal to DuckDB over the same events; paged by maxRows with truncated and Sluice-Truncated', async () => {
    assert.ok(oracle.length > 3 * MAX_ROWS, `${oracle.length} rows: several pages`);
    const all: Row[] = [];
    for (let offset = 0; ; ) {
      const { body } = await results(offset === 0 ? '' : `?offset=${offset}`);
      assert.deepEqual(body.columns.map((c) => `${c.name} ${c.type}`), ['window_start TIMESTAMP', 'window_end TIMESTAMP', 'auction BIGINT', 'n BIGINT', 'total DOUBLE', 'top DOUBLE']);
      all.push(...body.rows);
      offset += body.rows.length;
      if (body.truncated !== true) {
        assert.ok(body.rows.length <= MAX_ROWS);
        break;
      }
      assert.equal(body.rows.length, MAX_ROWS);
    }
    assertRows(all, oracle, 'all pages');
    // null keys sort last within their window, keys beyond 2^53 are exact strings
    assert.ok(all.some((r) => r[2] === null) && all.some((r) => r[2] === '9007199254740993'));
  });

  test('limit and offset page exactly', async () => {
    for (const [limit, offset] of [[7, 0], [7, 7], [7, 35], [1, oracle.length - 1], [MAX_ROWS, oracle.length - 3], [5, oracle.length], [0, 0], [3, 1e9]]) {
      const { body } = await results(`?limit=${limit}&offset=${offset}`);
      assertRows(body.rows, oracle.slice(offset, offset + limit), `limit=${limit} offset=${offset}`);
      assert.equal(body.truncated === true, offset + limit < oracle.length, `limit=${limit} offset=${offset} truncated`);
    }
  });

  test('from / to select window_start in [from, to), as ISO-8601 or ms, in any combination', async () => {
    const at = (ms: number): string => new Date(T0 + ms).toISOString();
    const cases: [string, number, number][] = [
      [`?from=${at(30_000)}&to=${at(70_000)}`, T0 + 30_000, T0 + 70_000],
      [`?from=${T0 + 30_000}&to=${T0 + 70_000}`, T0 + 30_000, T0 + 70_000],
      [`?from=${T0 + 30_001}&to=${at(70_001)}`, T0 + 30_001, T0 + 70_001],
      [`?from=${encodeURIComponent('2023-11-14T23:13:50+01:00')}`, T0 + 30_000, Infinity],
      [`?to=${encodeURIComponent('2023-11-14T22:13:49.999Z')}`, -Infinity, T0 + 29_999],
      [`?from=2023-11-14T22:14:00Z&from=2023-11-14T22:14:10Z&to=2023-11-14T22:14:50Z&to=2023-11-14T22:14:40Z`, T0 + 50_000, T0 + 80_000],
      [`?from=${T0 + 90_000}&to=${T0 + 90_000}`, T0 + 90_000, T0 + 90_000],
      ['?from=2023-11-14', Date.UTC(2023, 10, 14), Infinity],
    ];
    for (const [q, from, to] of cases) {
      const want = oracle.filter((r) => Date.parse(r[0]) >= from && Date.parse(r[0]) < to);
      const { body } = await results(`${q}&limit=${MAX_ROWS}`);
      assertRows(body.rows, want.slice(0, MAX_ROWS), q);
      assert.equal(body.truncated === true, want.length > MAX_ROWS, `${q} truncated`);
    }
  });

  test('a groupBy column filters by its exact value, also beyond 2^53 and with the other parameters', async () => {
    for (const key of ['2', '-7', '-1000000007', '9007199254740993', '1152921504606846983', '-36028797018963965', '123456']) {
      const want = oracle.filter((r) => r[2] !== null && BigInt(r[2]) === BigInt(key));
      const { body } = await results(`?auction=${key}`);
      assertRows(body.rows, want.slice(0, MAX_ROWS), `auction=${key}`);
    }
    // 2^53 + 1 is not 2^53 or 2^53 + 2, which a double would confuse
    assert.ok(oracle.some((r) => r[2] === '9007199254740993'));
    const from = T0 + 20_000, to = T0 + 100_000;
    const want = oracle.filter((r) => r[2] === 2 && Date.parse(r[0]) >= from && Date.parse(r[0]) < to);
    assert.ok(want.length >= 4);
    const { body } = await results(`?to=${to}&auction=2&limit=2&offset=1&from=${new Date(from).toISOString()}`);
    assertRows(body.rows, want.slice(1, 3), 'combined');
    assert.equal(body.truncated, true);
  });

  test('an empty from, to, limit, offset or non-string groupBy value is the same as none', async () => {
    const full = (await results('')).body;
    assert.equal(full.truncated, true);
    for (const q of ['?from=', '?to=', '?limit=', '?offset=', '?auction=', '?from=&to=&limit=&offset=&auction=', '?limit=&limit=']) {
      const { body } = await results(q);
      assertRows(body.rows, full.rows, q);
      assert.equal(body.truncated, true, q);
    }
    // next to a value of the same parameter, or of others
    const to = T0 + 70_000;
    const want = oracle.filter((r) => r[2] === 2 && Date.parse(r[0]) < to);
    const { body } = await results(`?from=&to=${to}&auction=&auction=2&limit=&offset=1`);
    assertRows(body.rows, want.slice(1, 1 + MAX_ROWS), 'mixed');
  });

  test('an empty value of a string groupBy column selects the empty-string key', async () => {
    const s = await testServer({ pipelines: { by_channel: { window: { tumbling: '10s' }, groupBy: ['channel'], select: { n: 'count()' } } } });
    try {
      const ts = new Date(T0).toISOString();
      const rows = [['', 3], ['web', 2]].flatMap(([channel, n]) => Array.from({ length: n as number }, (_, i) => ({ id: i, auction: 1, bidder: 1, price: 1, channel, qty: 1, flag: true, ts })));
      const a = await call(s, '/v1/streams/bids/ingest', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(rows) });
      assert.equal(a.status, 200, a.text);
      assert.equal((await call(s, '/v1/flush', { method: 'POST' })).status, 200);
      const get = async (q: string): Promise<unknown[][]> => {
        const r = await call(s, `/v1/pipelines/by_channel/results${q}`);
        assert.equal(r.status, 200, r.text);
        return (json(r) as { rows: unknown[][] }).rows.map((row) => row.slice(2));
      };
      assert.deepEqual(await get('?channel='), [['', 3]]);
      assert.deepEqual(await get('?channel=web'), [['web', 2]]);
      assert.deepEqual(await get('?from=&limit='), [['', 3], ['web', 2]]);
    } finally {
      await s.close();
    }
  });

  test('bad parameters are 400 naming the parameter; an unknown pipeline is 404', async () => {
    const bad: [string, RegExp][] = [
      ['?nope=1', /nope/],
      ['?nope=', /nope/],
      ['?window_start=1', /window_start/],
      ['?from=yesterday', /from/],
      ['?from=2023-13-01', /from/],
      ['?to=1e3', /to/],
      ['?from=99999999999999999999', /from.*range/],
      ['?from=2023-11-14T22:13:20+01:00', /from/], // an unencoded + is a space
      [`?limit=${MAX_ROWS + 1}`, /limit.*40/],
      ['?limit=-1', /limit/],
      ['?limit=abc', /limit/],
      ['?offset=-1', /offset/],
      ['?offset=1.5', /offset/],
      ['?auction=abc', /auction.*64-bit/],
      ['?auction=1.5', /auction/],
      ['?auction=9223372036854775808', /auction/],
    ];
    for (const [q, message] of bad) {
      assert.match(assertError(await call(server, `/v1/pipelines/tumble/results${q}`), 400, 'SLUICE_BAD_REQUEST', q), message, q);
    }
    assert.match(assertError(await call(server, '/v1/pipelines/nope/results'), 404, 'SLUICE_UNKNOWN_PIPELINE'), /nope/);
    // the largest limit is allowed
    assert.equal((await results(`?limit=${MAX_ROWS}`)).body.rows.length, MAX_ROWS);
  });
});

describe('other statuses', () => {
  test('ingest: 200 with the row count, 404 unknown stream, 415 unknown type, 400 a bad batch', async () => {
    const s = await testServer();
    try {
      const rows = [{ id: 1, auction: 1, bidder: 1, price: 1.5, channel: 'web', qty: 1, flag: true, ts: '2024-01-01T00:00:00Z' }];
      const ok = await call(s, '/v1/streams/bids/ingest', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(rows) });
      assert.equal(ok.status, 200);
      assert.deepEqual(json(ok), { rows: 1 });
      assertError(await call(s, '/v1/streams/nope/ingest', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '[]' }), 404, 'SLUICE_UNKNOWN_STREAM');
      assertError(await call(s, '/v1/streams/bids/ingest', { method: 'POST', headers: { 'content-type': 'text/csv' }, body: 'a,b' }), 415, 'SLUICE_UNSUPPORTED_MEDIA_TYPE');
      const bad = await call(s, '/v1/streams/bids/ingest', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '[{"id": 1' });
      assert.equal(bad.status, 400);
      assertError(bad, 400, (json(bad) as { error: { code: string } }).error.code);
    } finally {
      await s.close();
    }
  });

  test('HEAD answers carry Content-Length and no body: the next answer on a kept-alive connection is intact', async () => {
    const conn = await RawConnection.open(server.port);
    /** one request; whatever else arrives within 100 ms of its answer would belong to no request */
    const exchange = (method: string, path: string, bodyLength?: (head: string) => number): Promise<RawAnswer> => conn.exchange(rawRequest(method, path), { bodyLength, quietMs: 100 });
    try {
      const heads: [string, number, string | null][] = [
        ['/healthz', 200, null],
        ['/readyz', 200, null],
        ['/metrics', 405, 'GET'],
        ['/v1/streams', 405, 'GET'],
        ['/nope', 404, null],
      ];
      for (const [path, status, allow] of heads) {
        const h = await exchange('HEAD', path, () => 0);
        assert.equal(h.status, status, `HEAD ${path}: ${h.head}`);
        assert.ok(contentLength(h.head) > 0, `HEAD ${path} has the GET's Content-Length: ${h.head}`);
        assert.equal(h.body, '');
        if (allow !== null) assert.match(h.head, new RegExp(`\r\nAllow: ${allow}(\r\n|$)`, 'i'));
        // and the same connection answers a GET in full
        const g = await exchange('GET', '/healthz');
        assert.equal(g.status, 200, `GET after HEAD ${path}: ${g.head}`);
        assert.deepEqual(JSON.parse(g.body), { status: 'ok' });
      }
      // the HEAD's Content-Length is the GET's
      const h = await exchange('HEAD', '/healthz', () => 0);
      assert.equal(contentLength(h.head), Buffer.byteLength('{"status":"ok"}'));
    } finally {
      conn.destroy();
    }
  });

  test('a failed engine: /healthz is 503 {"status":"failed"} with Retry-After, /readyz 503 SLUICE_NOT_READY', async () => {
    const s = await testServer();
    try {
      // what the engine does when its state worker dies (runtime.ts: the worker's 'error' event)
      (s.engine as unknown as { stateWorker: { emit(e: string, err: Error): void } }).stateWorker.emit('error', new Error('test: the state worker died'));
      assert.equal(s.engine.status, 'failed');
      const health = await call(s, '/healthz');
      assert.equal(health.status, 503);
      assert.deepEqual(json(health), { status: 'failed' });
      assert.equal(health.headers.get('retry-after'), '1');
      const ready = await call(s, '/readyz');
      assertError(ready, 503, 'SLUICE_NOT_READY');
      assert.equal(ready.headers.get('retry-after'), '1');
    } finally {
      await s.close();
    }
  });

  test('a known path with the wrong method is 405 with Allow; an unknown path is 404', async () => {
    const wrong: [string, string, string][] = [
      ['POST', '/', 'GET'],
      ['POST', '/healthz', 'GET, HEAD'],
      ['DELETE', '/readyz', 'GET, HEAD'],
      ['PUT', '/metrics', 'GET'],
      ['POST', '/v1/streams', 'GET'],
      ['DELETE', '/v1/pipelines', 'GET'],
      ['GET', '/v1/sql', 'POST'],
      ['PUT', '/v1/sql', 'POST'],
      ['GET', '/v1/flush', 'POST'],
      ['PATCH', '/v1/pipelines/tumble/results', 'GET'],
      ['POST', '/v1/pipelines/nope/results', 'GET'],
      ['GET', '/v1/streams/bids/ingest', 'POST, GET'],
      ['PUT', '/v1/streams/bids/ingest', 'POST, GET'],
      ['POST', '/v1/pipelines/tumble/subscribe', 'GET'],
    ];
    for (const [method, path, allow] of wrong) {
      const a = await call(server, path, { method });
      assert.match(assertError(a, 405, 'SLUICE_METHOD_NOT_ALLOWED', `${method} ${path}`), new RegExp(`${method} ${path}`));
      assert.equal(a.headers.get('allow'), allow, `${method} ${path}`);
    }
    for (const [method, path] of [['GET', '/nope'], ['GET', '/v1'], ['GET', '/v1/nope'], ['POST', '/v1/nope'], ['GET', '/v1/pipelines/tumble'],
      ['GET', '/v1/pipelines/tumble/results/x'], ['GET', '/v1/streams/bids'], ['GET', '/healthz/x']] as const) {
      const a = await call(server, path, { method });
      assertError(a, 404, 'SLUICE_NOT_FOUND', `${method} ${path}`);
      assert.equal(a.headers.get('allow'), null);
    }
  });

  test('while the server closes, /readyz is 503 SLUICE_NOT_READY with Retry-After and /healthz stays 200', async () => {
    const s = await testServer();
    // a connection made before close(): the listening socket goes first, open connections are still answered
    const conn = await RawConnection.open(s.port);
    const get = (path: string): Promise<RawAnswer> => conn.exchange(rawRequest('GET', path));
    try {
      assert.equal((await get('/readyz')).status, 200);
      const closing = s.close();
      const ready = await get('/readyz');
      const health = await get('/healthz');
      await closing;
      // and then the kept-alive connection is closed too: nothing answers from a closed engine
      await within(conn.closed, 'end of a kept-alive connection after close()', 2000);
      assert.equal(ready.status, 503, ready.body);
      assert.match(ready.head, /\r\nRetry-After: 1\r\n/i);
      assert.equal((JSON.parse(ready.body) as { error: { code: string } }).error.code, 'SLUICE_NOT_READY');
      assert.equal(health.status, 200, health.body);
    } finally {
      conn.destroy();
      await s.close();
    }
  });
});
