/**
 * Producers that outrun the engine (DESIGN.md A4, A5, A6): HTTP producers get 503 with
 * Retry-After and SLUICE_OVERLOADED, WebSocket clients get their acks — their credits — only
 * as the engine takes batches, the server's memory stays bounded while gigabytes are offered,
 * and afterwards every batch that got a 200 or an ack is in the results exactly once and
 * nothing else is.
 *
 * Every batch is the same 15,000 events with its own `bidder` value (a marker); the pipeline
 * counts rows per bidder in one window that stays open until the flush (maxOutOfOrder 1h), so
 * the result table says, per marker, how many times its rows were applied. One worker thread
 * and a 32 MiB slab arena (the least there is) keep the engine the bottleneck.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Column } from '../../engine/schema.js';
import type { SluiceServer } from '../../server/app.js';
import { encodeArrow } from '../../native-free-kernels/encode-arrow.js';
import { BIDS_SCHEMA, makeEvents, removeFreshDirs } from '../helpers/oracle.js';
import { testServer, TestSocket, wsUrl } from '../helpers/server.js';

after(removeFreshDirs);

const ROWS = 15_000;
/** the bidder value the template carries in every row; each batch overwrites it with its marker */
const PLACEHOLDER = 0x1234_5678_90ab_cdefn;
const MiB = 2 ** 20;

/**
 * One Arrow batch of ROWS events and where its bidder values sit: `make(marker)` is a copy
 * with every bidder set to `marker` (a view over the copy's 8-aligned values buffer).
 */
function template(): { bytes: number; make: (marker: number) => Uint8Array } {
  const events = makeEvents({ seed: 31, n: ROWS, step: 1, disorder: 0 });
  const words = new Int32Array(2 * ROWS);
  const lo = Number(PLACEHOLDER & 0xffff_ffffn) | 0, hi = Number(PLACEHOLDER >> 32n) | 0;
  for (let i = 0; i < ROWS; i++) [words[2 * i], words[2 * i + 1]] = [lo, hi];
  const bidder = BIDS_SCHEMA.index.get('bidder')!;
  const bytes = encodeArrow({ ...events, columns: events.columns.map((c, i): Column => (i === bidder ? { type: 'int64', words, valid: null } : c)) }).slice();
  const pattern = Buffer.alloc(8);
  pattern.writeBigInt64LE(PLACEHOLDER);
  const at = Buffer.from(bytes.buffer).indexOf(pattern);
  assert.ok(at >= 0 && at % 8 === 0, `bidder values at ${at}`);
  const values = new BigInt64Array(bytes.buffer, at, ROWS);
  assert.ok(values.every((v) => v === PLACEHOLDER), 'the bidder values are not one contiguous buffer');
  assert.equal(Buffer.from(bytes.buffer).indexOf(pattern, at + 8 * ROWS), -1, 'the placeholder also occurs elsewhere');
  return {
    bytes: bytes.length,
    make: (marker) => {
      const copy = bytes.slice();
      new BigInt64Array(copy.buffer, at, ROWS).fill(BigInt(marker));
      return copy;
    },
  };
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

describe('backpressure', () => {
  test('producers outrunning the engine: 503 + Retry-After, withheld credits, bounded memory, every acknowledged batch exactly once', async (ctx) => {
    const CREDITS = 16;
    const server: SluiceServer = await testServer({
      threads: 1,
      maxOutOfOrder: '1h',
      pipelines: { by_bidder: { window: { tumbling: '1h' }, groupBy: ['bidder'], select: { n: 'count()' } } },
      server: { maxPayload: '1MiB', credits: CREDITS },
      workers: { queue: '1MiB' },
    });
    const sockets: TestSocket[] = [];
    try {
      const t = template();
      assert.ok(t.bytes > 700_000 && t.bytes <= MiB, `${t.bytes} bytes per batch`);
      const OFFER = 3 * 2 ** 30;
      const DEADLINE = Date.now() + 25_000;
      let offered = 0;
      let nextMarker = 1;
      const stop = (): boolean => offered >= OFFER || Date.now() > DEADLINE;
      const acked = new Map<number, 'http' | 'ws'>();
      const problems: string[] = [];
      let http503 = 0;
      let sawFull = false;
      let wsStalls = 0;
      // an answer means the engine processed the batch: its rows are counted before the answer
      let ackedRows = 0;
      const checkProcessed = (what: string): void => {
        const processed = server.engine.snapshot().ingestEvents['bids'] ?? 0;
        if (processed < ackedRows) problems.push(`${what}: ${ackedRows} rows acknowledged, ${processed} processed`);
      };

      const rss0 = process.memoryUsage().rss;
      let rssMax = rss0;
      // RSS growth every half second, in MiB: it should rise to a plateau, not with the data
      const trace: number[] = [];
      let tick = 0;
      const sampler = setInterval(() => {
        const rss = process.memoryUsage().rss;
        rssMax = Math.max(rssMax, rss);
        if (tick++ % 50 === 0) trace.push(Math.round((rss - rss0) / MiB));
        sawFull ||= server.engine.full;
      }, 10);

      const httpProducer = async (): Promise<void> => {
        while (!stop()) {
          const marker = nextMarker++;
          const body = t.make(marker);
          for (;;) {
            offered += body.length;
            const res = await fetch(`${server.url}/v1/streams/bids/ingest`, { method: 'POST', headers: { 'content-type': 'application/vnd.apache.arrow.stream' }, body });
            const answer = (await res.json()) as { rows?: number; error?: { code: string } };
            if (res.status === 200) {
              if (answer.rows !== ROWS) problems.push(`marker ${marker}: 200 with ${JSON.stringify(answer)}`);
              acked.set(marker, 'http');
              ackedRows += ROWS;
              checkProcessed(`HTTP marker ${marker}`);
              break;
            }
            if (res.status !== 503) {
              problems.push(`marker ${marker}: ${res.status} ${JSON.stringify(answer)}`);
              break;
            }
            http503++;
            if (res.headers.get('retry-after') !== '1' || answer.error?.code !== 'SLUICE_OVERLOADED') problems.push(`503 with Retry-After ${res.headers.get('retry-after')}, ${JSON.stringify(answer)}`);
            if (stop()) break;
            // a producer that does not wait as long as it is told: it outruns the engine
            await sleep(2);
          }
        }
      };

      const wsProducer = async (): Promise<void> => {
        const socket = await TestSocket.open(wsUrl(server, '/v1/streams/bids/ingest'));
        sockets.push(socket);
        assert.deepEqual(await socket.next(), { credits: CREDITS });
        const markers: number[] = [];
        let answered = 0;
        while (!stop() || answered < markers.length) {
          while (!stop() && markers.length - answered < CREDITS) {
            const marker = nextMarker++;
            const body = t.make(marker);
            markers.push(marker);
            offered += body.length;
            socket.send(body);
          }
          // every credit in use: the next one comes only once the engine processed a batch
          const waited = Date.now();
          const m = (await socket.next(30_000)) as { ack?: number; rows?: number };
          if (Date.now() - waited > 100) wsStalls++;
          if (m.ack === undefined || m.ack <= answered || m.ack > markers.length) {
            problems.push(`ws answer ${JSON.stringify(m)} after ${answered} of ${markers.length}`);
            break;
          }
          if (m.rows !== (m.ack - answered) * ROWS) problems.push(`ack ${m.ack} after ${answered}: rows ${m.rows}`);
          ackedRows += (m.ack - answered) * ROWS;
          checkProcessed(`ack ${m.ack}`);
          for (; answered < m.ack; answered++) acked.set(markers[answered]!, 'ws');
        }
        await socket.close();
      };

      const started = Date.now();
      await Promise.all([httpProducer(), httpProducer(), httpProducer(), wsProducer(), wsProducer(), wsProducer(), wsProducer()]);
      clearInterval(sampler);
      const seconds = (Date.now() - started) / 1000;
      assert.deepEqual(problems.slice(0, 10), []);

      const flushed = await fetch(`${server.url}/v1/flush`, { method: 'POST' });
      assert.equal(flushed.status, 200, await flushed.text());
      const { rows } = await server.engine.query('SELECT bidder::VARCHAR, n::VARCHAR FROM by_bidder');
      const counted = new Map(rows.map((r) => [Number(r[0]), Number(r[1])]));

      const byHttp = [...acked.values()].filter((v) => v === 'http').length;
      const summary = `${(offered / 2 ** 30).toFixed(2)} GiB offered in ${seconds.toFixed(1)} s, ${acked.size} batches acknowledged (${byHttp} over HTTP), ${http503} × 503, ${wsStalls} WS stalls > 100 ms, RSS +${((rssMax - rss0) / MiB).toFixed(0)} MiB`;
      ctx.diagnostic(summary);
      ctx.diagnostic(`RSS growth (MiB) every 0.5 s: ${trace.join(' ')}`);
      // the load really exceeded the engine: the arena filled, producers were pushed back
      assert.ok(offered >= 2 ** 30, summary);
      assert.ok(sawFull, `the engine never filled: ${summary}`);
      assert.ok(http503 > 0, summary);
      // HTTP bodies wait in the engine's line with the WebSocket batches: they get in at about
      // the ratio of their byte budget (workers.queue) to the WebSocket credits (~1.5 % here),
      // where refusing every body while the arena was full let through ~0.1 %
      assert.ok(byHttp * 200 >= acked.size, `HTTP producers starved: ${summary}`);
      // Bounded: the 32 MiB arena, ≤ 4 × 16 WebSocket batches copied to the heap while they wait,
      // the clients' own copies and the worker heaps come to ~250 MiB here; a server that acked
      // before the engine took the batches grew by ~60 MiB/s, to ~1 GiB. And a plateau: the last
      // third of the run holds no more than the first third (a leak grows with the data).
      assert.ok(rssMax - rss0 < 400 * MiB, summary);
      const third = Math.floor(trace.length / 3);
      assert.ok(third >= 2, `too few samples: ${trace.join(' ')}`);
      assert.ok(Math.max(...trace.slice(-third)) - Math.max(...trace.slice(0, third)) < 128, `RSS kept growing: ${trace.join(' ')}`);
      // exactly once: every acknowledged batch's rows once, nothing of any other batch
      const missing = [...acked.keys()].filter((m) => counted.get(m) !== ROWS);
      const extra = [...counted.keys()].filter((m) => !acked.has(m));
      assert.deepEqual({ missing: missing.slice(0, 10), extra: extra.slice(0, 10) }, { missing: [], extra: [] }, summary);
      assert.equal(counted.size, acked.size);
    } finally {
      await Promise.all(sockets.map((s) => s.close()));
      await server.close();
    }
  });
});
