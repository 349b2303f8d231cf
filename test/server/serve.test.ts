/**
 * `sluice serve` as a child process (DESIGN.md A1): the address and summary on stdout, pino
 * JSON on stderr, flags over the file and SLUICE_* over both, usage and config errors, and a
 * graceful SIGTERM that keeps every acknowledged event across a restart.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { bidsConfig, freshDir, removeFreshDirs } from '../helpers/oracle.js';
import { spawnCli, type Spawned } from '../helpers/cli.js';
import { TUMBLE } from '../helpers/server.js';

after(removeFreshDirs);

interface Serving {
  child: ChildProcess;
  url: string;
  summary: string;
  stderr: () => string;
  exited: Promise<number | null>;
}

/** A config file for `serve`: the test bids stream and pipeline, data in `dir`. */
function configFile(dir: string, server: Record<string, unknown> = {}): string {
  const config = bidsConfig({ dir, threads: 1, pipelines: TUMBLE, server: { host: '127.0.0.1', port: 0, ...server } });
  const path = join(dir, 'sluice.yaml');
  writeFileSync(path, stringify(config));
  return path;
}

const run = (args: string[], env: Record<string, string> = {}): Spawned => spawnCli(args, { env });

async function serve(args: string[], env: Record<string, string> = {}): Promise<Serving> {
  const r = run(['serve', ...args], env);
  const deadline = Date.now() + 20_000;
  for (;;) {
    const lines = r.stdout().split('\n');
    if (lines.length >= 3) {
      const m = /^listening on (http:\/\/\S+)$/.exec(lines[0] ?? '');
      assert.ok(m, `first stdout line: ${lines[0]}`);
      return { child: r.child, url: m[1] as string, summary: lines[1] as string, stderr: r.stderr, exited: r.exited };
    }
    const code = r.child.exitCode;
    if (code !== null) assert.fail(`serve exited with ${code} before listening: ${r.stderr()}`);
    if (Date.now() > deadline) {
      r.child.kill('SIGKILL');
      assert.fail(`serve did not print its address within 20 s: ${r.stderr()}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

async function ingest(url: string, rows: Record<string, unknown>[]): Promise<number> {
  const res = await fetch(`${url}/v1/streams/bids/ingest`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(rows),
  });
  assert.equal(res.status, 200, await res.clone().text());
  return ((await res.json()) as { rows: number }).rows;
}

const T = Date.UTC(2026, 0, 1);
function rowsFor(auction: number, n: number, t0: number): Record<string, unknown>[] {
  return Array.from({ length: n }, (_, i) => ({ auction, bidder: i, price: 10 + i, qty: 1, channel: 'web', ts: new Date(t0 + i * 10).toISOString() }));
}

describe('sluice serve', () => {
  test('prints its address and a summary, logs JSON on stderr, stops on SIGTERM keeping every acknowledged event', async () => {
    const dir = freshDir();
    const file = configFile(dir);
    const a = await serve(['--config', file]);
    assert.match(a.summary, /^1 stream \(bids\) · 1 pipeline \(tumble: bids, tumbling 10s by auction\) · 1 worker · data /);
    assert.equal((await fetch(`${a.url}/healthz`)).status, 200);
    let acked = 0;
    for (let b = 0; b < 20; b++) acked += await ingest(a.url, rowsFor(b % 3, 50, T + b * 500));
    a.child.kill('SIGTERM');
    assert.equal(await a.exited, 0, a.stderr());
    const logs = a.stderr().trim().split('\n').map((l) => JSON.parse(l) as { msg: string; level: number });
    assert.ok(logs.some((l) => l.msg === 'listening'));
    assert.ok(logs.some((l) => l.msg === 'stopped'), a.stderr());

    // the same data directory: the open windows come back, and a flush emits them all
    const b = await serve(['--config', file]);
    const flushed = await fetch(`${b.url}/v1/flush`, { method: 'POST' });
    assert.equal(flushed.status, 200);
    const res = await fetch(`${b.url}/v1/sql`, { method: 'POST', body: JSON.stringify({ sql: 'SELECT sum(n)::BIGINT, count(DISTINCT auction)::BIGINT FROM tumble' }) });
    const body = (await res.json()) as { rows: number[][] };
    assert.deepEqual(body.rows, [[acked, 3]]);
    b.child.kill('SIGINT');
    assert.equal(await b.exited, 0, b.stderr());
  });

  test('flags override the file and SLUICE_* variables override both', async () => {
    const dir = freshDir();
    const other = freshDir();
    const file = configFile(dir, { port: 1 });
    // --port 1 would fail to bind as non-root; the environment's 0 wins over it
    const s = await serve(['--config', file, '--port', '1', '--data', other], { SLUICE_PORT: '0' });
    assert.match(s.summary, new RegExp(`data ${other.replace(/[/\\]/g, '\\$&')}$`));
    assert.notEqual(new URL(s.url).port, '1');
    s.child.kill('SIGTERM');
    // (a CI run once saw null here, a signal death not reproduced since: name it if it comes back)
    assert.equal(await s.exited, 0, `signal ${String(s.child.signalCode)}; stderr: ${s.stderr()}`);

    const t = await serve(['--config', file, '--data', other], { SLUICE_PORT: '0', SLUICE_DATA: dir });
    assert.match(t.summary, new RegExp(`data ${dir.replace(/[/\\]/g, '\\$&')}$`));
    t.child.kill('SIGTERM');
    assert.equal(await t.exited, 0, `signal ${String(t.child.signalCode)}; stderr: ${t.stderr()}`);
  });

  test('bad usage exits 2, a bad config or a taken port exits 1 with the reason', async () => {
    const dir = freshDir();
    const file = configFile(dir);

    const unknown = run(['serve', '--config', file, '--bogus']);
    assert.equal(await unknown.exited, 2);
    assert.match(unknown.stderr(), /bogus/);

    const badPort = run(['serve', '--config', file, '--port', 'eighty']);
    assert.equal(await badPort.exited, 2);
    assert.match(badPort.stderr(), /--port takes 0\.\.65535/);

    const missing = run(['serve', '--config', join(dir, 'nope.yaml')]);
    assert.equal(await missing.exited, 1);
    assert.match(missing.stderr(), /SLUICE_CONFIG_NOT_FOUND/);

    const invalidPath = join(dir, 'invalid.yaml');
    writeFileSync(invalidPath, 'server: { port: "x" }\nstreams: {}\n');
    const invalid = run(['serve', '--config', invalidPath]);
    assert.equal(await invalid.exited, 1);
    assert.match(invalid.stderr(), /SLUICE_CONFIG_INVALID.*server\.port/s);

    const first = await serve(['--config', file]);
    const port = new URL(first.url).port;
    const second = run(['serve', '--config', file, '--port', port, '--data', freshDir()]);
    assert.equal(await second.exited, 1);
    // one line, as docs/cli.md promises: no stack trace
    assert.match(second.stderr(), /^sluice: cannot listen on 127\.0\.0\.1:\d+ .*$/m);
    assert.doesNotMatch(second.stderr(), /^\s+at /m, second.stderr());
    for (const r of [missing, invalid]) assert.doesNotMatch(r.stderr(), /^\s+at /m, r.stderr());
    first.child.kill('SIGTERM');
    assert.equal(await first.exited, 0);
  });

  test('a kafka section, or SLUICE_KAFKA_BROKERS, is refused with SLUICE_CONFIG_INVALID and exit 1 (Kafka mode is not implemented)', async () => {
    const dir = freshDir();
    const withKafka = join(dir, 'kafka.yaml');
    const config = bidsConfig({ dir, threads: 1, pipelines: TUMBLE, server: { host: '127.0.0.1', port: 0 } });
    writeFileSync(withKafka, stringify({ ...config, kafka: { brokers: 'localhost:9092', group: 'test' } }));
    const fromFile = run(['serve', '--config', withKafka]);
    const fromEnv = run(['serve', '--config', configFile(freshDir())], { SLUICE_KAFKA_BROKERS: 'localhost:9092' });
    for (const r of [fromFile, fromEnv]) {
      assert.equal(await r.exited, 1, r.stderr());
      assert.equal(r.stdout(), '', 'nothing listened');
      assert.match(r.stderr(), /^sluice: SLUICE_CONFIG_INVALID: kafka: Kafka mode is not implemented yet in this version; remove the kafka section/m);
      assert.doesNotMatch(r.stderr(), /^\s+at /m, r.stderr());
    }
  });
});
