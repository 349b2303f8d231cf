/**
 * `ws://HOST:PORT/v1/pipelines/{name}/subscribe` (DESIGN.md A5): every committed window result
 * reaches every subscriber exactly once, as JSON or Arrow IPC, equal to the result table; a
 * subscriber that stops reading is closed with 1013 while the others carry on; bad upgrades
 * are refused with the catalogued status.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { tableFromIPC } from 'apache-arrow';
import WebSocket from 'ws';
import { encodeArrow } from '../../native-free-kernels/encode-arrow.js';
import { sliceBatch } from '../../engine/schema.js';
import type { SluiceServer } from '../../server/app.js';
import { encodeBatches, makeEvents, removeFreshDirs, type Payload } from '../helpers/oracle.js';
import { rawRequest, RawConnection } from '../helpers/http.js';
import { testServer, TestSocket, until, within, wsUrl } from '../helpers/server.js';

after(removeFreshDirs);

type JsonRow = Record<string, unknown>;

async function post(server: SluiceServer, path: string, body: Uint8Array | string, type: string): Promise<Response> {
  return fetch(`${server.url}${path}`, { method: 'POST', headers: { 'content-type': type }, body });
}

async function ingestAll(server: SluiceServer, payloads: readonly Payload[]): Promise<void> {
  for (const p of payloads) {
    const res = await post(server, '/v1/streams/bids/ingest', p.bytes, 'application/vnd.apache.arrow.stream');
    assert.equal(res.status, 200, await res.text());
  }
}

async function sql(server: SluiceServer, query: string): Promise<{ columns: { name: string }[]; rows: unknown[][] }> {
  const res = await post(server, '/v1/sql', JSON.stringify({ sql: query }), 'application/json');
  assert.equal(res.status, 200);
  return (await res.json()) as { columns: { name: string }[]; rows: unknown[][] };
}

describe('subscribe', () => {
  test('every window reaches JSON and Arrow subscribers exactly once, equal to the result table', async () => {
    const server = await testServer({ threads: 2 });
    try {
      const json = await TestSocket.open(wsUrl(server, '/v1/pipelines/tumble/subscribe'));
      const json2 = await TestSocket.open(wsUrl(server, '/v1/pipelines/tumble/subscribe?format=json'));
      const arrow = await TestSocket.open(wsUrl(server, '/v1/pipelines/tumble/subscribe?format=arrow'));
      // 30 000 events over ~150 s of event time, disorder within maxOutOfOrder: windows close
      // while the data arrives (watermark) and the rest at the flush.
      const events = makeEvents({ seed: 21, n: 30_000, step: 5, disorder: 1500 });
      await ingestAll(server, encodeBatches(events, 997, 'arrow'));
      const flushed = await post(server, '/v1/flush', '', 'application/json');
      assert.equal(flushed.status, 200);

      const table = await sql(server, 'SELECT * FROM tumble');
      const names = table.columns.map((c) => c.name);
      const want = table.rows.map((r) => Object.fromEntries(names.map((n, i) => [n, r[i]])) as JsonRow);
      assert.ok(want.length > 1000, `only ${want.length} result rows`);

      const rowsOf = (s: TestSocket): JsonRow[] => (s.messages as { pipeline: string; rows: JsonRow[] }[]).flatMap((m) => {
        assert.equal(m.pipeline, 'tumble');
        return m.rows;
      });
      const arrowRows = (): number => (arrow.messages as Buffer[]).reduce((n, b) => n + tableFromIPC(b).numRows, 0);
      await until(() => rowsOf(json).length >= want.length && rowsOf(json2).length >= want.length && arrowRows() >= want.length, 'every window');
      // anything sent twice would arrive by now
      await new Promise((resolve) => setTimeout(resolve, 300));

      const key = (r: JsonRow): string => `${String(r.window_start)}|${String(r.auction)}`;
      const sortRows = (rows: JsonRow[]): JsonRow[] => [...rows].sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0));
      for (const s of [json, json2]) {
        const got = rowsOf(s);
        assert.equal(new Set(got.map(key)).size, got.length, 'a window was sent twice');
        assert.deepEqual(sortRows(got), sortRows(want));
      }

      const fromArrow: JsonRow[] = [];
      for (const b of arrow.messages as Buffer[]) {
        const t = tableFromIPC(b);
        assert.deepEqual(t.schema.fields.map((f) => f.name), names);
        for (const r of t) {
          const o = r.toJSON() as Record<string, unknown>;
          fromArrow.push({
            window_start: new Date(Number(o.window_start)).toISOString(),
            auction: o.auction === null ? null : String(o.auction),
            n: Number(o.n),
            total: o.total,
          });
        }
      }
      const wantArrow = want.map((r) => ({ window_start: r.window_start, auction: r.auction === null ? null : String(r.auction), n: Number(r.n), total: r.total }));
      assert.equal(fromArrow.length, wantArrow.length);
      assert.deepEqual(sortRows(fromArrow), sortRows(wantArrow));

      for (const s of [json, json2, arrow]) assert.equal((await s.close()).code, 1000);
    } finally {
      await server.close();
    }
  });

  test('a subscriber that stops reading is closed with 1013; the others get everything', async () => {
    // one result row per event (groupBy the unique id): ~40 MB of JSON results, in messages of
    // ~1 MB; the reading subscriber shares this event loop with the server, so the bound must
    // leave it room to drain between two messages
    const server = await testServer({
      threads: 1,
      server: { subscribe: { maxBuffered: '8MiB' } },
      pipelines: { per_id: { window: { tumbling: '1s' }, groupBy: ['id'], select: { n: 'count()', p: 'max(price)' } } },
    });
    try {
      const slow = await TestSocket.open(wsUrl(server, '/v1/pipelines/per_id/subscribe'));
      const fast = await TestSocket.open(wsUrl(server, '/v1/pipelines/per_id/subscribe'));
      slow.ws.pause();
      const events = makeEvents({ seed: 5, n: 320_000, step: 1, disorder: 0 });
      // a producer at a pace a reader can follow (~1.2 MB of results per batch), with pauses in
      // which the reading subscriber, on this same event loop, drains
      for (let from = 0; from < events.length; from += 10_000) {
        await ingestAll(server, [{ bytes: encodeArrow(sliceBatch(events, from, from + 10_000)), format: 'arrow' }]);
        await new Promise((resolve) => setTimeout(resolve, 40));
      }
      assert.equal((await post(server, '/v1/flush', '', 'application/json')).status, 200);

      const rows = (): number => (fast.messages as { rows: unknown[] }[]).reduce((n, m) => n + m.rows.length, 0);
      await until(() => rows() >= 320_000, 'the reading subscriber to get every row', 20_000);
      assert.equal(rows(), 320_000);

      const dropped = async (): Promise<number> => {
        const text = await (await fetch(`${server.url}/metrics`)).text();
        const m = /^sluice_subscribers_dropped_total\{pipeline="per_id"\} (\d+)$/m.exec(text);
        return m === null ? 0 : Number(m[1]);
      };
      assert.equal(await dropped(), 1);
      slow.ws.resume();
      const closed = await within(slow.closed, 'close of the slow subscriber', 10_000);
      assert.equal(closed.code, 1013);
      assert.match(closed.reason, /^SLUICE_SUBSCRIBER_TOO_SLOW: /);
      const got = (slow.messages as { rows: unknown[] }[]).reduce((n, m) => n + m.rows.length, 0);
      assert.ok(got < 320_000, `the slow subscriber got ${got} rows`);
      assert.equal(fast.ws.readyState, WebSocket.OPEN);
      await fast.close();
    } finally {
      await server.close();
    }
  });

  test('while the server stops, an upgrade on a kept-alive connection is 503 SLUICE_SHUTTING_DOWN with Retry-After', async () => {
    const server = await testServer();
    // a connection made before close(): the listening socket goes first, this one is still answered
    const conn = await RawConnection.open(server.port);
    try {
      assert.match((await conn.exchange(rawRequest('GET', '/readyz'))).head, /^HTTP\/1\.1 200 /);
      const closing = server.close();
      const refused = await conn.exchange(rawRequest('GET', '/v1/pipelines/tumble/subscribe', {
        Upgrade: 'websocket', Connection: 'Upgrade', 'Sec-WebSocket-Key': 'dGhlIHNhbXBsZSBub25jZQ==', 'Sec-WebSocket-Version': '13',
      }));
      await closing;
      assert.match(refused.head, /^HTTP\/1\.1 503 /);
      assert.match(refused.head, /\r\nRetry-After: 1(\r\n|$)/i);
      assert.equal((JSON.parse(refused.body) as { error: { code: string } }).error.code, 'SLUICE_SHUTTING_DOWN');
    } finally {
      conn.destroy();
      await server.close();
    }
  });

  test('unknown pipeline 404, bad format 400, and subscribing costs nothing when no one listens', async () => {
    const server = await testServer();
    try {
      await assert.rejects(TestSocket.open(wsUrl(server, '/v1/pipelines/nope/subscribe')), /upgrade refused: 404/);
      await assert.rejects(TestSocket.open(wsUrl(server, '/v1/pipelines/tumble/subscribe?format=csv')), /upgrade refused: 400/);
      const s = await TestSocket.open(wsUrl(server, '/v1/pipelines/tumble/subscribe'));
      assert.equal(server.engine.listenerCount('windows'), 1);
      await s.close();
      await until(() => server.engine.listenerCount('windows') === 0, 'the windows listener to go', 2000);
    } finally {
      await server.close();
    }
  });
});
