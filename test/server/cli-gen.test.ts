/**
 * `sluice gen` as a child process against a real server in this process: what it reports as
 * acknowledged is what the engine counted, what it sends is exactly the seeded generator's
 * events in every format, it keeps within the server's credits, and failures (unknown stream,
 * wrong schema, no server, no token, a connection the server closes) exit 1 with the reason.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { startServer, type SluiceServer } from '../../server/app.js';
import { AckTracker, Latencies, makeRing, parseGenArgs, type GenSummary } from '../../server/gen.js';
import { BID_FORMATS } from '../../bench/bids.js';
import { valueAt, type Batch } from '../../engine/schema.js';
import { BIDS_SCHEMA, freshDir, removeFreshDirs } from '../helpers/oracle.js';
import { runCli, type Ran } from '../helpers/cli.js';
import { testServer } from '../helpers/server.js';
import { withServer } from '../helpers/marked.js';

after(removeFreshDirs);

/** The CLI to its end, 30 s at most (async: the server answering it runs in this process). */
const cli = (args: string[], env: Record<string, string> = {}): Promise<Ran> => runCli(args, { env, timeoutMs: 30_000 });

async function gen(server: SluiceServer, args: string[], env: Record<string, string> = {}): Promise<{ ran: Ran; summary: GenSummary }> {
  const ran = await cli(['gen', '--url', `ws://127.0.0.1:${server.port}`, '--json', ...args], env);
  assert.ok(ran.stdout.trim() !== '', `no JSON summary; exit ${ran.code}, stderr:\n${ran.stderr}`);
  return { ran, summary: JSON.parse(ran.stdout) as GenSummary };
}

async function post(server: SluiceServer, path: string, body?: unknown): Promise<unknown> {
  const res = await fetch(`${server.url}${path}`, { method: 'POST', signal: AbortSignal.timeout(20_000), ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
  const text = await res.text();
  assert.equal(res.status, 200, text);
  return JSON.parse(text);
}

async function sql(server: SluiceServer, text: string): Promise<unknown[][]> {
  return ((await post(server, '/v1/sql', { sql: text })) as { rows: unknown[][] }).rows;
}

async function counters(server: SluiceServer): Promise<{ streamEvents: number; pipelineEvents: number }> {
  const s = (await (await fetch(`${server.url}/v1/streams`)).json()) as { streams: { name: string; events: number }[] };
  const p = (await (await fetch(`${server.url}/v1/pipelines`)).json()) as { pipelines: { name: string; events: number }[] };
  return { streamEvents: s.streams.find((x) => x.name === 'bids')!.events, pipelineEvents: p.pipelines.find((x) => x.name === 'tumble')!.events };
}

/** Rows as sortable text, in the order of the archive query below. */
function expectedRows(events: Batch): string[] {
  const names = ['auction', 'bidder', 'price', 'channel', 'ts', 'id', 'qty', 'flag'];
  const cols = names.map((n) => events.columns[events.schema.index.get(n)!]!);
  const out: string[] = [];
  for (let i = 0; i < events.length; i++) out.push(JSON.stringify(cols.map((c) => valueAt(c, i))));
  return out.sort();
}

const ARCHIVE_ROWS = 'SELECT auction, bidder, price, channel, epoch_ms(ts), id, qty, flag FROM bids';

describe('sluice gen', () => {
  test('every format: acked = counted by the engine, and the archive holds exactly the seeded events', async () => {
    // a ring of 7 batches of 300 rows and 5000 events: laps re-stamp the timestamps, and the
    // last batch (200 rows) is partial
    const args = ['--events', '5000', '--batch', '300', '--ring', '2000', '--rate', '0', '--seed', '7', '--disorder', '20', '--connections', '2', '--start', '2023-11-14T22:13:20Z'];
    const want = expectedRows(makeRing(parseGenArgs(args), BIDS_SCHEMA).events(5000));
    for (const format of BID_FORMATS) {
      const server = await testServer({ archive: true });
      try {
        const { ran, summary } = await gen(server, [...args, '--format', format]);
        assert.equal(ran.code, 0, ran.stderr);
        assert.equal(summary.eventsSent, 5000);
        assert.equal(summary.eventsAcked, 5000);
        assert.equal(summary.batchesAcked, 17);
        assert.equal(summary.nacks, 0);
        assert.deepEqual(summary.closes, []);
        assert.equal(summary.generator.ringEvents, 2100);
        assert.match(ran.stderr, /^gen: sent 5000 events \(17 batches\), acked 5000 in .* events\/s; ack latency p50 .* ms, p99 .* ms; 0 nacks/m);
        await post(server, '/v1/flush');
        assert.deepEqual(await counters(server), { streamEvents: 5000, pipelineEvents: 5000 });
        assert.deepEqual(await sql(server, 'SELECT (SELECT count(*) FROM bids)::INTEGER, (SELECT sum(n) FROM tumble)::INTEGER'), [[5000, 5000]]);
        const got = (await sql(server, ARCHIVE_ROWS)).map((r) => JSON.stringify(r)).sort();
        assert.equal(got.length, want.length);
        assert.deepEqual(got, want, `${format}: the archive differs from the seeded events`);
      } finally {
        await server.close();
      }
    }
    // another seed, other events
    const other = expectedRows(makeRing(parseGenArgs(args.map((a) => (a === '7' ? '8' : a))), BIDS_SCHEMA).events(5000));
    assert.notDeepEqual(other, want);
  });

  test('keeps within the credits when the engine pushes back (1 credit, 1 MiB queue, 3 connections)', async () => {
    const server = await testServer({ server: { credits: 1 }, workers: { queue: '1MiB' } });
    try {
      const { ran, summary } = await gen(server, ['--events', '400000', '--batch', '20000', '--rate', '0', '--connections', '3', '--format', 'msgpack']);
      // one batch over the credit would have closed the connection with 1008
      assert.equal(ran.code, 0, ran.stderr);
      assert.equal(summary.credits, 1);
      assert.deepEqual(summary.closes, []);
      assert.equal(summary.eventsAcked, 400000);
      await post(server, '/v1/flush');
      assert.deepEqual(await counters(server), { streamEvents: 400000, pipelineEvents: 400000 });
    } finally {
      await server.close();
    }
  });

  test('frames without a copy (zero masking key) over many laps of the ring: the archive still holds exactly the stream', async () => {
    // a ring of 100 000 events in 50 steps lapped 6 times, each lap re-stamping payloads ws sent
    // by reference (the first test does the same with a ring of 7 steps, fewer than the credits)
    const args = ['--rate', '0', '--events', '600000', '--ring', '100000', '--batch', '2000', '--connections', '2', '--seed', '4', '--start', '2023-11-14T22:13:20Z'];
    await withServer({}, async (server) => {
      const { ran, summary } = await gen(server, args);
      assert.equal(ran.code, 0, ran.stderr);
      assert.equal(summary.generator.ringEvents, 100_000);
      assert.equal(summary.eventsAcked, 600_000);
      await post(server, '/v1/flush');
      const want = makeRing(parseGenArgs(args), BIDS_SCHEMA).events(summary.eventsAcked);
      const ts = want.columns[want.schema.index.get('ts')!]!;
      const auction = want.columns[want.schema.index.get('auction')!]!;
      let sumTs = 0n;
      let sumAuction = 0;
      let xorPrice = 0;
      const price = want.columns[want.schema.index.get('price')!]!;
      for (let i = 0; i < want.length; i++) {
        sumTs += BigInt(valueAt(ts, i) as number);
        sumAuction += valueAt(auction, i) as number;
        xorPrice ^= Math.round((valueAt(price, i) as number) * 100);
      }
      const [[n, gotTs, gotAuction, gotXor]] = (await sql(server, 'SELECT count(*)::BIGINT::VARCHAR, sum(epoch_ms(ts))::VARCHAR, sum(auction)::VARCHAR, bit_xor(round(price * 100)::INTEGER) FROM bids')) as [string, string, string, number][];
      assert.deepEqual([n, gotTs, gotAuction, gotXor], [String(summary.eventsAcked), String(sumTs), String(sumAuction), xorPrice]);
    });
  });

  test('paces to --rate and stops at --seconds', async () => {
    const server = await testServer();
    try {
      const { ran, summary } = await gen(server, ['--rate', '20000', '--seconds', '2', '--batch', '500', '--format', 'ndjson']);
      assert.equal(ran.code, 0, ran.stderr);
      // 2 s at 20 000 events/s: the 80 batches of 500 due before the end, however late timers fire
      assert.equal(summary.eventsSent, 40_000);
      assert.equal(summary.eventsAcked, summary.eventsSent);
      assert.ok(summary.seconds >= 1.9 && summary.seconds < 4, `took ${summary.seconds} s`);
      assert.match(ran.stderr, /^gen\s+1s: sent \d+ {2}acked \d+ {2}\d+ events\/s {2}ack p50 .* {2}p99 .* {2}nacks 0$/m);
      await post(server, '/v1/flush');
      assert.equal((await counters(server)).streamEvents, summary.eventsAcked);
    } finally {
      await server.close();
    }
  });

  test('--warmup: the summary counts events and latencies after it; firstSendAt is the wall clock of the first send', async () => {
    const server = await testServer();
    try {
      const before = Date.now();
      const { ran, summary } = await gen(server, ['--rate', '20000', '--seconds', '3', '--warmup', '1', '--batch', '500']);
      assert.equal(ran.code, 0, ran.stderr);
      assert.equal(summary.eventsSent, 60_000);
      assert.equal(summary.warmupSeconds, 1);
      assert.ok(summary.firstSendAt !== null && summary.firstSendAt >= before && summary.firstSendAt < Date.now());
      // about 2 s measured at the paced rate (the first second left out)
      assert.ok(summary.seconds >= 1.8 && summary.seconds < 3, `measured ${summary.seconds} s`);
      assert.ok(Math.abs(summary.eventsPerSecond - 20_000) < 2_000, `${summary.eventsPerSecond} events/s`);
      const bad = await cli(['gen', '--seconds', '2', '--warmup', '2']);
      assert.equal(bad.code, 2);
      assert.match(bad.stderr, /--warmup \(2 s\) must be shorter than --seconds \(2 s\)/);
    } finally {
      await server.close();
    }
  });

  test('--ramp: the send rate rises over the ramp, the measured seconds run at --rate; bad ramps are usage errors', async () => {
    const server = await testServer();
    try {
      const { ran, summary } = await gen(server, ['--rate', '20000', '--seconds', '4', '--warmup', '2', '--ramp', '2', '--batch', '500']);
      assert.equal(ran.code, 0, ran.stderr);
      assert.equal(summary.rampSeconds, 2);
      // rate × (seconds − ramp / 2): 20 000 × 3 events
      assert.equal(summary.eventsSent, 60_000);
      assert.ok(Math.abs(summary.eventsPerSecond - 20_000) < 2_000, `${summary.eventsPerSecond} events/s after the warm-up`);
      // the first progress second sends a quarter of the rate (the ramp's triangle up to 1 s)
      const first = /^gen\s+1s: sent (\d+) /m.exec(ran.stderr);
      assert.ok(first !== null, ran.stderr);
      assert.ok(Number(first[1]) >= 3_000 && Number(first[1]) <= 8_000, `sent ${first[1]} in the first second`);
      for (const [args, pattern] of [
        [['--rate', '1000', '--seconds', '4', '--warmup', '1', '--ramp', '2'], /--ramp \(2 s\) must not exceed --warmup \(1 s\)/],
        [['--rate', '0', '--seconds', '4', '--warmup', '2', '--ramp', '1'], /--ramp needs a --rate/],
        [['--rate', '1000', '--ramp', 'x'], /--ramp takes a number of seconds/],
      ] as [string[], RegExp][]) {
        const bad = await cli(['gen', ...args]);
        assert.equal(bad.code, 2, args.join(' '));
        assert.match(bad.stderr, pattern);
      }
    } finally {
      await server.close();
    }
  });

  test('a connection the server closes: exit 1 with the close code and reason', async () => {
    const server = await testServer({ server: { maxPayload: '1KiB' } });
    try {
      const { ran, summary } = await gen(server, ['--events', '10000', '--batch', '1000', '--rate', '0']);
      assert.equal(ran.code, 1);
      assert.equal(summary.ok, false);
      assert.equal(summary.closes.length, 1);
      assert.equal(summary.closes[0]!.code, 1009);
      assert.match(ran.stderr, /connection 1 closed by the server: 1009 SLUICE_PAYLOAD_TOO_LARGE/);
      assert.equal(summary.eventsAcked, 0);
    } finally {
      await server.close();
    }
  });

  test('unknown stream, a stream without the bid columns, no server, no token: exit 1 with a clear message', async () => {
    const server = await startServer({
      server: { host: '127.0.0.1', port: 0, auth: { tokens: ['s3cret'] } },
      storage: { dir: freshDir() },
      workers: { threads: 1 },
      streams: { clicks: { schema: { auction: 'int64', price: 'int32', ts: 'timestamp' }, eventTime: { column: 'ts' } } },
      pipelines: {},
    }, { log: pino({ level: 'silent' }) });
    try {
      const url = `ws://127.0.0.1:${server.port}`;
      const noToken = await cli(['gen', '--url', url, '--stream', 'clicks', '--events', '10']);
      assert.equal(noToken.code, 1);
      assert.match(noToken.stderr, /^sluice: SLUICE_UNAUTHORIZED: /m);

      const unknown = await cli(['gen', '--url', url, '--stream', 'nope', '--events', '10'], { SLUICE_TOKEN: 's3cret' });
      assert.equal(unknown.code, 1);
      assert.match(unknown.stderr, /^sluice: SLUICE_UNKNOWN_STREAM: the server at http:\/\/127\.0\.0\.1:\d+ has no stream 'nope' \(streams: clicks\)$/m);

      const schema = await cli(['gen', '--url', url, '--stream', 'clicks', '--events', '10', '--token', 's3cret']);
      assert.equal(schema.code, 1);
      assert.match(schema.stderr, /stream 'clicks' cannot take generated bids: no column 'bidder' \(int64\); column 'price' is int32, the generator writes float64; no column 'channel' \(string\)/);
    } finally {
      await server.close();
    }
    const down = await cli(['gen', '--url', `ws://127.0.0.1:${server.port}`, '--events', '10']);
    assert.equal(down.code, 1);
    assert.match(down.stderr, /^sluice: cannot reach http:\/\/127\.0\.0\.1:\d+: .*ECONNREFUSED/m);

    const usage = await cli(['gen', '--format', 'xml']);
    assert.equal(usage.code, 2);
    assert.match(usage.stderr, /--format takes arrow, msgpack, ndjson, got 'xml'/);
  });
});

describe('gen bookkeeping', () => {
  test('coalesced acks settle every batch up to seq, each with its own latency; a nack settles the ones before it', () => {
    const t = new AckTracker();
    const seen: number[] = [];
    const lat = (ms: number): void => void seen.push(ms);
    for (let i = 0; i < 5; i++) assert.equal(t.sent(100 + i, i * 10), i + 1);
    assert.equal(t.outstanding, 5);
    assert.deepEqual(t.ack(3, 100, lat), { batches: 3, rows: 303 });
    assert.deepEqual(seen, [100, 90, 80]);
    assert.deepEqual(t.ack(3, 100, lat), { batches: 0, rows: 0 }, 'a repeated ack settles nothing');
    const r = t.nack(5, 200, lat);
    assert.deepEqual(r, { acked: { batches: 1, rows: 103 }, rejectedRows: 104 });
    assert.equal(t.outstanding, 0);
    assert.deepEqual(seen, [100, 90, 80, 170]);
  });

  test('nearest-rank percentiles, over everything or since a mark', () => {
    const l = new Latencies();
    for (let i = 1; i <= 2000; i++) l.add(i);
    assert.deepEqual(l.percentiles([50, 99, 100]), [1000, 1980, 2000]);
    assert.deepEqual(l.percentiles([50], 1000), [1500]);
    assert.deepEqual(new Latencies().percentiles([50]), [null]);
  });
});
