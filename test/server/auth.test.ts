/**
 * Bearer tokens (DESIGN.md A2 `server.auth.tokens`, A4, A5) over real sockets: with tokens
 * configured, every /v1 HTTP route and both WebSocket upgrades answer 401 — with
 * `WWW-Authenticate` and the JSON error — to no token, a wrong one, a prefix or suffix of a
 * right one, or another scheme, before saying anything else about the request (an unknown
 * stream or pipeline is still 401); `Authorization: Bearer T` and `?token=T` both work, with any
 * configured token. `/`, `/healthz`, `/readyz` and `/metrics` stay open: probes and Prometheus
 * scrapers carry no token (docs/config.md).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import WebSocket from 'ws';
import { removeFreshDirs } from '../helpers/oracle.js';
import { testServer, TestSocket, wsUrl } from '../helpers/server.js';
import { assertError, call, json, type Answer } from '../helpers/http.js';
import type { SluiceServer } from '../../server/app.js';

const T1 = 'Ab3-long-token_with.dots~';
/** characters that need encoding in a query string */
const T2 = 'tok+/=&%?# end';

let server: SluiceServer;

before(async () => {
  server = await testServer({ server: { auth: { tokens: [T1, T2] } } });
});

after(async () => {
  await server?.close();
  removeFreshDirs();
});

const ROW = JSON.stringify([{ id: 1, auction: 1, bidder: 1, price: 1.5, channel: 'web', qty: 1, flag: true, ts: '2024-01-01T00:00:00Z' }]);

/** Every /v1 HTTP route, with a request that succeeds given a token. */
const ROUTES: readonly { method: string; path: string; type?: string; body?: string; ok: number }[] = [
  { method: 'GET', path: '/v1/streams', ok: 200 },
  { method: 'GET', path: '/v1/pipelines', ok: 200 },
  { method: 'GET', path: '/v1/pipelines/tumble/results', ok: 200 },
  { method: 'GET', path: '/v1/pipelines/tumble/results?limit=1', ok: 200 },
  { method: 'POST', path: '/v1/sql', type: 'application/json', body: JSON.stringify({ sql: 'SELECT 1' }), ok: 200 },
  { method: 'POST', path: '/v1/flush', ok: 200 },
  { method: 'POST', path: '/v1/streams/bids/ingest', type: 'application/json', body: ROW, ok: 200 },
  // the token is checked before anything is said about the stream or pipeline
  { method: 'POST', path: '/v1/streams/nope/ingest', type: 'application/json', body: ROW, ok: 404 },
  { method: 'GET', path: '/v1/pipelines/nope/results', ok: 404 },
];

function withQuery(path: string, token: string): string {
  return `${path}${path.includes('?') ? '&' : '?'}token=${encodeURIComponent(token)}`;
}

async function send(route: (typeof ROUTES)[number], authorization: string | null, token: string | null): Promise<Answer> {
  const headers: Record<string, string> = {};
  if (route.type !== undefined) headers['content-type'] = route.type;
  if (authorization !== null) headers['authorization'] = authorization;
  const init: RequestInit = { method: route.method, headers };
  if (route.body !== undefined) init.body = route.body;
  return call(server, token === null ? route.path : withQuery(route.path, token), init);
}

/** Credentials that must not pass: [Authorization header or null, ?token= or null]. */
const DENIED: readonly [string | null, string | null][] = [
  [null, null],
  ['Bearer wrong', null],
  [`Bearer ${T1}x`, null], // a right token is a prefix of it
  [`Bearer x${T1}`, null], // ... a suffix
  [`Bearer ${T1.slice(0, -1)}`, null], // it is a prefix of a right token
  [`Bearer ${T1.slice(1)}`, null], // ... a suffix
  [`Bearer ${T1}${T2}`, null],
  [`Bearer ${T1} ${T2}`, null],
  [`Bearer ${T1}, Bearer ${T2}`, null],
  [`Basic ${T1}`, null],
  [`Basic ${Buffer.from(`user:${T1}`).toString('base64')}`, null],
  [`Token ${T1}`, null],
  [T1, null],
  ['Bearer', null],
  ['Bearer ', null],
  [`Bearer${T1}`, null],
  [null, 'wrong'],
  [null, T1.slice(0, -1)],
  [null, `${T1}x`],
  [null, ''],
  [null, T2.replace('+', ' ')], // what an unencoded '+' becomes
  // a wrong header is not rescued by a right ?token=
  ['Bearer wrong', T1],
  [`Basic ${T1}`, T1],
];

/** Credentials that pass. */
const ACCEPTED: readonly [string | null, string | null][] = [
  [`Bearer ${T1}`, null],
  [`Bearer ${T2}`, null],
  [`bearer ${T1}`, null], // the scheme is case-insensitive (RFC 9110)
  [`Bearer   ${T1}  `, null],
  [null, T1],
  [null, T2],
  // the header decides when both are there
  [`Bearer ${T2}`, 'wrong'],
];

function assertUnauthorized(a: Answer, label: string): void {
  assertError(a, 401, 'SLUICE_UNAUTHORIZED', label);
  assert.match(a.headers.get('www-authenticate') ?? '', /^Bearer realm="sluice"/, `${label}: WWW-Authenticate`);
}

describe('bearer tokens on the HTTP routes', () => {
  test('every /v1 route is 401 with WWW-Authenticate and the JSON error without a right token', async () => {
    for (const route of ROUTES) {
      for (const [header, token] of DENIED) {
        assertUnauthorized(await send(route, header, token), `${route.method} ${route.path} header=${header} token=${token}`);
      }
    }
  });

  test('every /v1 route works with Authorization: Bearer or ?token=, with any configured token', async () => {
    for (const route of ROUTES) {
      for (const [header, token] of ACCEPTED) {
        const a = await send(route, header, token);
        assert.equal(a.status, route.ok, `${route.method} ${route.path} header=${header} token=${token}: ${a.text.slice(0, 200)}`);
        assert.equal(a.headers.get('www-authenticate'), null);
      }
    }
    // and what was ingested with a token is there
    const auth = { authorization: `Bearer ${T1}` };
    assert.equal((await call(server, '/v1/flush', { method: 'POST', headers: auth })).status, 200);
    const q = await call(server, '/v1/sql', { method: 'POST', headers: { authorization: `Bearer ${T1}`, 'content-type': 'application/json' }, body: JSON.stringify({ sql: 'SELECT sum(n)::INTEGER FROM tumble' }) });
    assert.deepEqual((json(q) as { rows: unknown[][] }).rows, [[ACCEPTED.length]]);
  });

  test('unknown /v1 paths and wrong methods on /v1 routes are 401 too: the API surface is not revealed', async () => {
    for (const [method, path] of [['GET', '/v1'], ['GET', '/v1/nope'], ['GET', '/v1/sql'], ['DELETE', '/v1/streams'], ['PUT', '/v1/streams/bids/ingest']] as const) {
      assertUnauthorized(await call(server, path, { method }), `${method} ${path}`);
      const a = await call(server, path, { method, headers: { authorization: `Bearer ${T1}` } });
      assert.ok(a.status === 404 || a.status === 405, `${method} ${path} with a token: ${a.status}`);
    }
    // HEAD too: the 401's status and headers, without its body (rest.test.ts checks the bytes)
    for (const path of ['/v1/nope', '/v1/streams']) {
      const a = await call(server, path, { method: 'HEAD' });
      assert.equal(a.status, 401, `HEAD ${path}`);
      assert.match(a.headers.get('www-authenticate') ?? '', /^Bearer realm="sluice"/, `HEAD ${path}`);
      assert.equal(a.body.length, 0);
      assert.ok(Number(a.headers.get('content-length')) > 0, `HEAD ${path}: the GET's Content-Length`);
    }
  });

  test('/, /healthz, /readyz and /metrics need no token', async () => {
    for (const path of ['/', '/healthz', '/readyz', '/metrics']) {
      const a = await call(server, path);
      assert.equal(a.status, 200, path);
      assert.equal(a.headers.get('www-authenticate'), null);
    }
  });
});

interface Refusal {
  status: number;
  headers: IncomingMessage['headers'];
  body: string;
}

/** Open a WebSocket; resolves 'open' (then closes it) or the HTTP answer that refused the upgrade. */
function upgrade(path: string, headers: Record<string, string>): Promise<'open' | Refusal> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(wsUrl(server, path), { headers });
    ws.once('open', () => {
      ws.close(1000);
      resolve('open');
    });
    ws.once('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString('utf8')));
      res.on('end', () => {
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body });
        ws.terminate();
      });
    });
    ws.once('error', (err) => reject(err));
  });
}

describe('bearer tokens on the WebSocket upgrades', () => {
  const PATHS = ['/v1/streams/bids/ingest', '/v1/pipelines/tumble/subscribe', '/v1/streams/nope/ingest', '/v1/pipelines/nope/subscribe'];

  test('ingest and subscribe upgrades are 401 with WWW-Authenticate and the JSON error without a right token', async () => {
    for (const path of PATHS) {
      for (const [header, token] of DENIED) {
        const label = `${path} header=${header} token=${token}`;
        const r = await upgrade(token === null ? path : withQuery(path, token), header === null ? {} : { authorization: header });
        assert.notEqual(r, 'open', label);
        if (r === 'open') continue;
        assert.match(String(r.headers['www-authenticate']), /^Bearer realm="sluice"/, label);
        const headers = new Headers({ 'content-type': String(r.headers['content-type'] ?? '') });
        assertError({ status: r.status, headers, body: Buffer.from(r.body), text: r.body }, 401, 'SLUICE_UNAUTHORIZED', label);
      }
    }
  });

  test('ingest and subscribe upgrades open with Authorization: Bearer or ?token=', async () => {
    for (const path of PATHS.slice(0, 2)) {
      for (const [header, token] of ACCEPTED) {
        const r = await upgrade(token === null ? path : withQuery(path, token), header === null ? {} : { authorization: header });
        assert.equal(r, 'open', `${path} header=${header} token=${token}: ${r === 'open' ? '' : `${r.status} ${r.body}`}`);
      }
    }
    // an opened ingest socket works as usual
    const s = await TestSocket.open(wsUrl(server, withQuery('/v1/streams/bids/ingest', T2)));
    assert.deepEqual(await s.next(), { credits: 16 });
    s.send(ROW.slice(1, -1));
    assert.deepEqual(await s.next(), { ack: 1, rows: 1 });
    await s.close();
  });
});
