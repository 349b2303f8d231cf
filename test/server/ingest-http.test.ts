/**
 * `POST /v1/streams/{stream}/ingest` over real sockets (DESIGN.md A4): each content type (with
 * parameters) → 200 `{"rows": n}` and the rows in the archive; 415, 413, 400 and 404 with the
 * exact error JSON `{"error": {"code", "message"}}`, its catalogued status, and nothing applied.
 * Every batch carries its own `bidder` value (a marker) so the archive tells which landed.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { connect } from 'node:net';
import { Packr } from 'msgpackr';
import type { Batch } from '../../engine/schema.js';
import type { SluiceServer } from '../../server/app.js';
import { encodeArrow, encodeArrowDictionary } from '../../native-free-kernels/encode-arrow.js';
import { encodeJson, encodeNdjson } from '../../native-free-kernels/encode-json.js';
import { encodeMsgpackColumns, encodeMsgpackRows } from '../../native-free-kernels/encode-msgpack.js';
import { assertError as assertErrorAnswer, call, json, type Answer } from '../helpers/http.js';
import { archived, marked, summary, withServer } from '../helpers/marked.js';
import { removeFreshDirs } from '../helpers/oracle.js';

after(removeFreshDirs);

const INGEST = '/v1/streams/bids/ingest';
const ARROW = 'application/vnd.apache.arrow.stream';

function post(server: SluiceServer, body: Uint8Array | string | ReadableStream<Uint8Array>, type: string | null, path = INGEST): Promise<Answer> {
  const init: RequestInit & { duplex?: 'half' } = { method: 'POST', headers: type === null ? {} : { 'content-type': type }, body };
  if (body instanceof ReadableStream) init.duplex = 'half';
  return call(server, path, init);
}

/** The error shape of A4 (helpers/http.ts), and exactly `application/json`. */
function assertError(a: Answer, status: number, code: string): string {
  assert.equal(a.headers.get('content-type'), 'application/json', a.text);
  return assertErrorAnswer(a, status, code);
}

function assertRows(a: Answer, rows: number): void {
  assert.equal(a.status, 200, a.text);
  assert.equal(a.headers.get('content-type'), 'application/json');
  assert.deepEqual(json(a), { rows });
}

/** A body sent in chunks without Content-Length (Transfer-Encoding: chunked). */
function chunked(bytes: Uint8Array, chunk = 16 * 1024): ReadableStream<Uint8Array> {
  let at = 0;
  return new ReadableStream({
    pull(c) {
      if (at >= bytes.length) c.close();
      else c.enqueue(bytes.slice(at, (at += chunk)));
    },
  });
}

/** Send only the request head with this Content-Length and read the answer (no body follows). */
function headOnly(server: SluiceServer, contentLength: number, type: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: server.port, method: 'POST', path: INGEST, headers: { 'content-type': type, 'content-length': String(contentLength) } }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString('utf8')));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.flushHeaders();
  });
}

describe('HTTP ingest', () => {
  test('every content type, with parameters and in any case → 200 {"rows": n}; the rows land whole', async () => {
    await withServer({}, async (server) => {
      const cases: [string, (b: Batch) => Uint8Array | string, number][] = [
        [ARROW, encodeArrow, 500],
        [`${ARROW}; charset=binary`, encodeArrowDictionary, 333],
        ['application/msgpack', encodeMsgpackRows, 120],
        ['application/msgpack; foo=bar', encodeMsgpackColumns, 71],
        ['application/x-ndjson', encodeNdjson, 64],
        ['application/x-ndjson; charset=utf-8', encodeNdjson, 1],
        ['application/json', encodeJson, 250],
        ['Application/JSON; Charset=UTF-8', encodeJson, 9],
        ['application/json;charset="utf-8"', (b) => Buffer.from(encodeJson(b)).toString('utf8'), 17],
      ];
      const want = new Map<string, string>();
      for (const [i, [type, encode, n]] of cases.entries()) {
        const b = marked(100 + i, n);
        want.set(String(100 + i), summary(b));
        assertRows(await post(server, encode(b), type), n);
      }
      // empty batches are batches of 0 rows
      assertRows(await post(server, '', 'application/x-ndjson'), 0);
      assertRows(await post(server, '[]', 'application/json'), 0);
      assertRows(await post(server, encodeArrow(marked(199, 0)), ARROW), 0);
      assert.deepEqual(await archived(server), want);
    });
  });

  test('an unknown or missing content type → 415; an unknown stream → 404; nothing applied', async () => {
    await withServer({}, async (server) => {
      const body = encodeNdjson(marked(200, 10));
      for (const type of ['text/csv', 'application/octet-stream', 'text/plain; charset=utf-8', 'application/jsonx', 'json']) {
        const message = assertError(await post(server, body, type), 415, 'SLUICE_UNSUPPORTED_MEDIA_TYPE');
        assert.ok(message.includes(ARROW), message);
      }
      assertError(await post(server, body, null), 415, 'SLUICE_UNSUPPORTED_MEDIA_TYPE');
      const unknown = assertError(await post(server, body, 'application/x-ndjson', '/v1/streams/asks/ingest'), 404, 'SLUICE_UNKNOWN_STREAM');
      assert.match(unknown, /'asks'/);
      assert.deepEqual(await archived(server), new Map());
    });
  });

  test('a body over server.maxPayload → 413, declared or chunked; exactly maxPayload is a batch', async () => {
    const maxPayload = 64 * 1024;
    await withServer({ server: { maxPayload } }, async (server) => {
      const b = marked(300, 200);
      const ndjson = encodeNdjson(b);
      const exact = new Uint8Array(maxPayload).fill(0x0a);
      exact.set(ndjson);
      assertRows(await post(server, exact, 'application/x-ndjson'), 200);
      const over = new Uint8Array(maxPayload + 1).fill(0x0a);
      over.set(encodeNdjson(marked(301, 200)));
      assertError(await post(server, over, 'application/x-ndjson'), 413, 'SLUICE_PAYLOAD_TOO_LARGE');
      assertError(await post(server, chunked(over), 'application/x-ndjson'), 413, 'SLUICE_PAYLOAD_TOO_LARGE');
      // a chunked body within the limit is a batch
      assertRows(await post(server, chunked(encodeArrow(marked(302, 100))), ARROW), 100);
      // a declared length far beyond the limit, and beyond workers.queue (256 MiB): 413 — a 503
      // would tell the producer to retry a request that can never succeed
      for (const length of [4 * maxPayload, 300 << 20]) {
        const head = await headOnly(server, length, ARROW);
        assert.equal(head.status, 413, head.body);
        assert.equal((JSON.parse(head.body) as { error: { code: string } }).error.code, 'SLUICE_PAYLOAD_TOO_LARGE');
      }
      assert.deepEqual(await archived(server), new Map([['300', summary(b)], ['302', summary(marked(302, 100))]]));
    });
  });

  test('with maxPayload above workers.queue a body larger than the queue, or chunked, is still taken', async () => {
    await withServer({ server: { maxPayload: '4MiB' }, workers: { queue: '1MiB' } }, async (server) => {
      const big = marked(400, 30_000);
      const bytes = encodeArrow(big);
      assert.ok(bytes.length > 1 << 20 && bytes.length < 4 << 20, `${bytes.length} bytes`);
      assertRows(await post(server, bytes, ARROW), 30_000);
      assertRows(await post(server, chunked(encodeArrow(marked(401, 10))), ARROW), 10);
      assert.deepEqual(await archived(server), new Map([['400', summary(big)], ['401', summary(marked(401, 10))]]));
    });
  });

  test('clients that go away mid-body or before the answer leave no body counted against workers.queue', async () => {
    await withServer({ server: { maxPayload: '1MiB' }, workers: { queue: '1MiB' } }, async (server) => {
      const gone = marked(451, 12_000);
      const bytes = encodeArrow(gone);
      assert.ok(bytes.length > 600_000 && bytes.length < 1 << 20, `${bytes.length} bytes`);
      const head = `POST ${INGEST} HTTP/1.1\r\nHost: x\r\nContent-Type: ${ARROW}\r\nContent-Length: ${bytes.length}\r\n\r\n`;
      // cut after the head, in the body, and right after the whole body (before the answer)
      for (const cut of [0, 1000, bytes.length >> 1, bytes.length]) {
        await new Promise<void>((resolve, reject) => {
          const s = connect(server.port, '127.0.0.1', () => {
            s.write(head);
            s.write(bytes.subarray(0, cut), () => {
              s.destroy();
              resolve();
            });
          });
          s.on('error', reject);
        });
      }
      await new Promise((resolve) => setTimeout(resolve, 200));
      // a body that fits only when no other is counted (600 KB + 600 KB > 1 MiB)
      const kept = marked(450, 12_000);
      assertRows(await post(server, encodeArrow(kept), ARROW), 12_000);
      assert.equal((await fetch(`${server.url}/healthz`)).status, 200);
      // the cut bodies applied nothing; the whole one, sent before its client left, once at most
      const got = await archived(server);
      assert.equal(got.get('450'), summary(kept));
      assert.ok(!got.has('451') || got.get('451') === summary(gone), got.get('451'));
      assert.ok([...got.keys()].every((k) => k === '450' || k === '451'), [...got.keys()].join());
    });
  });

  test('malformed batches → 400 with their code, nothing of them applied; later batches apply', async () => {
    await withServer({}, async (server) => {
      const packr = new Packr({ useRecords: false });
      const arrow = encodeArrow(marked(500, 300));
      const row = (m: number, ts: unknown): Record<string, unknown> => ({ bidder: m, price: 1, channel: 'web', ts });
      const cases: [string, Uint8Array | string, string][] = [
        [ARROW, arrow.subarray(0, arrow.length - 100), 'SLUICE_BATCH_MALFORMED'],
        [ARROW, encodeMsgpackRows(marked(501, 5)), 'SLUICE_BATCH_MALFORMED'],
        [ARROW, new Uint8Array(0), 'SLUICE_BATCH_MALFORMED'],
        ['application/msgpack', encodeMsgpackRows(marked(502, 20)).subarray(0, 100), 'SLUICE_BATCH_MALFORMED'],
        ['application/msgpack', packr.pack([row(503, 1), row(503, 'May 1 2024')]), 'SLUICE_BATCH_BAD_TIMESTAMP'],
        ['application/msgpack', packr.pack({ bidder: [504], ts: [1] }), 'SLUICE_BATCH_MISSING_COLUMN'],
        ['application/x-ndjson', `${JSON.stringify(row(505, 1))}\n{"bidder": 505,`, 'SLUICE_BATCH_MALFORMED'],
        ['application/x-ndjson', Buffer.concat([Buffer.from(`${JSON.stringify(row(506, 1))}\n{"bidder": 506, "ts": 1, "channel": "`), Buffer.from([0xc3, 0x28]), Buffer.from('"}')]), 'SLUICE_BATCH_MALFORMED'],
        ['application/x-ndjson', `${JSON.stringify(row(507, 1))}\n${JSON.stringify({ ...row(507, 2), extra: 1 })}`, 'SLUICE_BATCH_UNKNOWN_COLUMN'],
        ['application/json', JSON.stringify(row(508, 1)), 'SLUICE_BATCH_MALFORMED'],
        ['application/json', JSON.stringify([row(509, 1), row(509, null)]), 'SLUICE_BATCH_BAD_TIMESTAMP'],
        ['application/json', JSON.stringify([row(510, 1), { ...row(510, 2), price: '1.5' }]), 'SLUICE_BATCH_TYPE_MISMATCH'],
        ['application/json', '[{"bidder": 511, "ts": 1}', 'SLUICE_BATCH_MALFORMED'],
      ];
      for (const [type, body, code] of cases) assertError(await post(server, body, type), 400, code);
      const good = marked(520, 42);
      assertRows(await post(server, encodeMsgpackColumns(good), 'application/msgpack'), 42);
      assert.deepEqual(await archived(server), new Map([['520', summary(good)]]));
    });
  });
});
