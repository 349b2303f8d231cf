/**
 * GET /metrics (DESIGN.md A8): the Prometheus text format with the minimum set of names, the
 * values equal to what was sent and what the result tables hold — counters kept in two worker
 * threads summed into the main registry — and Node's default metrics under the sluice_ prefix.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { encodeArrow } from '../../native-free-kernels/encode-arrow.js';
import { encodeMsgpackRows } from '../../native-free-kernels/encode-msgpack.js';
import { sliceBatch } from '../../engine/schema.js';
import { makeEvents, removeFreshDirs, T0 } from '../helpers/oracle.js';
import { testServer, TestSocket, wsUrl } from '../helpers/server.js';
import { Metrics } from '../../server/metrics.js';

after(removeFreshDirs);

/** `name{labels}` → value, for every sample line; also the names that have a # TYPE line. */
function parseMetrics(text: string): { samples: Map<string, number>; typed: Map<string, string> } {
  const samples = new Map<string, number>();
  const typed = new Map<string, string>();
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const type = /^# TYPE (\S+) (counter|gauge|histogram|summary|untyped)$/.exec(line);
    if (type !== null) {
      typed.set(type[1]!, type[2]!);
      continue;
    }
    if (line.startsWith('# HELP ')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*",?)*\})? (-?[0-9.e+-]+|NaN|[+-]Inf)$/.exec(line);
    assert.ok(m !== null, `not a Prometheus sample line: ${line}`);
    samples.set(`${m[1]}${m[2] ?? ''}`, Number(m[3]!.replace('Inf', 'Infinity')));
  }
  return { samples, typed };
}

describe('/metrics', () => {
  test('the A8 set with values matching the data, counters summed over two workers', async () => {
    const server = await testServer({ threads: 2, pipelines: { tumble: { window: { tumbling: '10s' }, groupBy: ['auction'], select: { n: 'count()' } } } });
    try {
      // 2 % of events sent back up to 30 s: late for a 2 s out-of-orderness and no lateness
      const events = makeEvents({ seed: 9, n: 12_000, step: 5, disorder: 0, lateRate: 0.02, lateSpan: 30_000 });
      let httpRows = 0;
      let httpBytes = 0;
      for (let from = 0; from < 6_000; from += 2_000) {
        const bytes = encodeArrow(sliceBatch(events, from, from + 2_000));
        const res = await fetch(`${server.url}/v1/streams/bids/ingest`, { method: 'POST', headers: { 'content-type': 'application/vnd.apache.arrow.stream' }, body: bytes });
        assert.equal(res.status, 200);
        httpRows += 2_000;
        httpBytes += bytes.length;
      }
      const bad = await fetch(`${server.url}/v1/streams/bids/ingest`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '[{"ts": "not a time"}]' });
      assert.equal(bad.status, 400);
      const badCode = ((await bad.json()) as { error: { code: string } }).error.code;

      const ws = await TestSocket.open(wsUrl(server, '/v1/streams/bids/ingest'));
      const credits = (await ws.next()) as { credits: number };
      assert.ok(credits.credits >= 4);
      let wsRows = 0;
      for (let from = 6_000; from < 12_000; from += 2_000) {
        ws.send(encodeMsgpackRows(sliceBatch(events, from, from + 2_000)));
        wsRows += 2_000;
      }
      ws.send(Buffer.from([0x93, 0x01, 0x02])); // a msgpack array of numbers, not of rows: nacked
      let acked = 0;
      let nack: { nack: number; error: { code: string } } | null = null;
      while (acked < 3 || nack === null) {
        const m = (await ws.next()) as { ack?: number; nack?: number; error?: { code: string } };
        if (m.ack !== undefined) acked = m.ack;
        else nack = m as { nack: number; error: { code: string } };
      }
      assert.equal(nack.nack, 4);

      const before = parseMetrics(await (await fetch(`${server.url}/metrics`)).text()).samples;
      // wall clock minus the watermark (the newest event time less maxOutOfOrder, 2 s)
      const lag = before.get('sluice_watermark_lag_seconds{stream="bids"}');
      const newest = Math.max(...Array.from({ length: 12_000 }, (_, i) => T0 + i * 5));
      assert.ok(lag !== undefined && Math.abs(lag - (Date.now() - (newest - 2000)) / 1000) < 60, `watermark lag ${lag}`);

      assert.equal((await fetch(`${server.url}/v1/flush`, { method: 'POST' })).status, 200);
      const scrapedFrom = Date.now();
      const res = await fetch(`${server.url}/metrics`);
      const scrapedTo = Date.now();
      assert.equal(res.status, 200);
      assert.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
      const { samples, typed } = parseMetrics(await res.text());

      const expectType: Record<string, string> = {
        sluice_ingest_events_total: 'counter',
        sluice_ingest_bytes_total: 'counter',
        sluice_ingest_batches_rejected_total: 'counter',
        sluice_pipeline_events_total: 'counter',
        sluice_pipeline_late_events_total: 'counter',
        sluice_windows_emitted_total: 'counter',
        sluice_watermark_lag_seconds: 'gauge',
        sluice_batch_latency_seconds: 'histogram',
        sluice_flush_duration_seconds: 'histogram',
        sluice_pool_queue_depth: 'gauge',
        sluice_storage_memory_bytes: 'gauge',
        sluice_kafka_consumer_lag: 'gauge',
        sluice_process_cpu_user_seconds_total: 'counter',
        sluice_nodejs_heap_size_used_bytes: 'gauge',
      };
      for (const [name, type] of Object.entries(expectType)) assert.equal(typed.get(name), type, name);
      for (const key of samples.keys()) assert.ok(key.startsWith('sluice_'), key);

      const get = (key: string): number => {
        const v = samples.get(key);
        assert.ok(v !== undefined, `no sample ${key}`);
        return v;
      };
      assert.equal(get('sluice_ingest_events_total{stream="bids",transport="http"}'), httpRows);
      assert.equal(get('sluice_ingest_events_total{stream="bids",transport="ws"}'), wsRows);
      assert.equal(get('sluice_ingest_bytes_total{stream="bids",transport="http"}'), httpBytes);
      assert.equal(get(`sluice_ingest_batches_rejected_total{stream="bids",code="${badCode}"}`), 1);
      assert.equal(get(`sluice_ingest_batches_rejected_total{stream="bids",code="${nack.error.code}"}`) , badCode === nack.error.code ? 2 : 1);

      const count = async (table: string): Promise<number> => Number((await server.engine.query(`SELECT count(*)::INTEGER FROM ${table}`)).rows[0]![0]);
      const late = await count('tumble__late');
      assert.ok(late > 50, `only ${late} late events`);
      assert.equal(get('sluice_pipeline_events_total{pipeline="tumble"}'), httpRows + wsRows);
      assert.equal(get('sluice_pipeline_late_events_total{pipeline="tumble"}'), late);
      assert.equal(get('sluice_windows_emitted_total{pipeline="tumble"}'), await count('tumble'));
      // after the flush the watermark stands at the end of the last window it closed (lateness
      // 0), not at +∞: the gauge is still there, measured from that instant
      const lastEnd = Number((await server.engine.query('SELECT epoch_ms(max(window_end)) FROM tumble')).rows[0]![0]);
      const lagAfter = get('sluice_watermark_lag_seconds{stream="bids"}') * 1000;
      assert.ok(lagAfter >= scrapedFrom - lastEnd - 1 && lagAfter <= scrapedTo - lastEnd + 1, `watermark lag after the flush ${lagAfter} ms, want ${scrapedFrom - lastEnd}..${scrapedTo - lastEnd}`);
      // one observation per accepted batch (3 over HTTP, 3 over WebSocket)
      assert.equal(get('sluice_batch_latency_seconds_count'), 6);
      assert.ok(get('sluice_flush_duration_seconds_count') >= 1);
      assert.equal(get('sluice_pool_queue_depth'), 0);
      // DuckDB's memory, read after the first commit (the flush's at the latest): the tables
      // above hold rows, so its buffer pool is not empty; it is part of the process's RSS
      const storageMemory = get('sluice_storage_memory_bytes');
      assert.ok(storageMemory > 0 && storageMemory < get('sluice_process_resident_memory_bytes'), `sluice_storage_memory_bytes ${storageMemory}`);
      assert.equal(get('sluice_ws_connections{route="ingest"}'), 1);
      await ws.close();
    } finally {
      await server.close();
    }
  });

  test('a NaN sample is written NaN, the exposition format spelling (prom-client writes Nan)', async () => {
    const metrics = new Metrics();
    // no event-loop delay sample between two scrapes in the same tick: the lag mean is NaN
    await metrics.text();
    const text = await metrics.text();
    const { samples } = parseMetrics(text);
    assert.ok(Number.isNaN(samples.get('sluice_nodejs_eventloop_lag_mean_seconds')), text.split('\n').filter((l) => l.includes('eventloop_lag_mean')).join('\n'));
    assert.doesNotMatch(text, / Nan$/m);
  });
});
