/**
 * After `npm ci`, every package with native code loads and does real work. A failure names the
 * module, what went wrong and how to fix it, because the usual cause is the install (a skipped
 * optional binary, a node-gyp build without Node headers), not Sluice.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { get } from 'node:http';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type * as Rdkafka from 'node-rdkafka';
import type { us_listen_socket } from 'uWebSockets.js';

const require = createRequire(import.meta.url);

const NODE_GYP_HINT =
  'node-gyp needs python3, make, a C++ compiler and the Node headers. When it cannot download the headers, ' +
  'point it at the local Node install: `export npm_config_nodedir="$(dirname "$(dirname "$(command -v node)")")"` ' +
  '(the folder holding include/node/node.h), then run `npm ci` again (or `npm rebuild <package>`). ' +
  'Install scripts must be allowed for the package (see "allowScripts" in package.json).';

/** Run `fn`; if it throws, fail with the module name, the cause and the fix. */
async function loads<T>(module: string, fix: string, fn: () => T | Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    const why = err instanceof Error ? err.message : String(err);
    throw new Error(`native module ${module} did not load or does not work: ${why}\nHow to fix: ${fix}`, { cause: err });
  }
}

test('uWebSockets.js: the native binary loads, listens on a free port and serves a request', async () => {
  const fix = `uWebSockets.js ships prebuilt binaries per platform and Node ABI; this is ${process.platform}-${process.arch} ` +
    `with ABI ${process.versions.modules} (Node ${process.versions.node}). Use Node 20 on glibc Linux or macOS, x64 or arm64, ` +
    'leave UWS_USE_FALLBACK unset, and reinstall with `npm ci`.';
  const uWS = await loads('uWebSockets.js', fix, async () => (await import('uWebSockets.js')).default);
  // The package silently falls back to a slow pure-JS server when its binary cannot load: make
  // sure the module we got *is* the binary.
  await loads('uWebSockets.js', fix, () => {
    const binary = join(dirname(require.resolve('uWebSockets.js')), '..', 'binaries',
      `uws_${process.platform}_${process.arch}_${process.versions.modules}.node`);
    assert.equal(require('uWebSockets.js'), require(binary), 'uWebSockets.js is running its pure-JS fallback, not the native binary');
  });

  const app = uWS.App();
  app.get('/ping', (res) => {
    res.end('pong');
  });
  const listenSocket = await loads('uWebSockets.js', fix, () => new Promise<us_listen_socket>((resolve, reject) => {
    app.listen('127.0.0.1', 0, (socket) => (socket === false ? reject(new Error('listen on 127.0.0.1:0 failed')) : resolve(socket)));
  }));
  try {
    const port = uWS.us_socket_local_port(listenSocket);
    assert.ok(Number.isInteger(port) && port > 0 && port < 65536, `port ${port}`);
    // No keep-alive: an idle pooled connection would keep uWS's loop (and this process) alive.
    const { status, body } = await new Promise<{ status: number | undefined; body: string }>((resolve, reject) => {
      get({ host: '127.0.0.1', port, path: '/ping', agent: false, headers: { connection: 'close' } }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => { body += chunk; });
        res.on('end', () => resolve({ status: res.statusCode, body }));
      }).on('error', reject);
    });
    assert.equal(status, 200);
    assert.equal(body, 'pong');
  } finally {
    uWS.us_listen_socket_close(listenSocket);
  }
});

test('@duckdb/node-api: in-memory query and Parquet round trip', async () => {
  const fix = '@duckdb/node-api loads its binary from the optional dependency @duckdb/node-bindings-<platform>-<arch>. ' +
    'If npm skipped it (--omit=optional, or a lockfile made without this platform), run `npm ci` again with optional ' +
    'dependencies. Parquet is built into these bindings; a "cannot autoload extension" error means a build without it.';
  const { DuckDBInstance } = await loads('@duckdb/node-api', fix, () => import('@duckdb/node-api'));
  const instance = await loads('@duckdb/node-api', fix, () => DuckDBInstance.create(':memory:'));
  const conn = await instance.connect();
  const dir = mkdtempSync(join(tmpdir(), 'sluice-native-'));
  try {
    const answer = await conn.runAndReadAll('SELECT 42 AS answer');
    assert.deepEqual(answer.columnNames(), ['answer']);
    assert.deepEqual(answer.getRowsJS(), [[42]]);

    const file = join(dir, 'x.parquet').replaceAll("'", "''");
    await loads('DuckDB parquet extension', fix, async () => {
      await conn.run(`COPY (SELECT 1 AS x) TO '${file}' (FORMAT parquet)`);
      const back = await conn.runAndReadAll(`SELECT x FROM read_parquet('${file}')`);
      assert.deepEqual(back.getRowsJS(), [[1]]);
    });
  } finally {
    conn.closeSync();
    instance.closeSync();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('node-rdkafka: librdkafka is built and a Producer can be constructed', async () => {
  const fix = `node-rdkafka compiles its bundled librdkafka during \`npm ci\` (~2 min). ${NODE_GYP_HINT} ` +
    'Rebuild just this package with `npm rebuild node-rdkafka`.';
  const Kafka = await loads('node-rdkafka', fix, () => require('node-rdkafka') as typeof Rdkafka);
  assert.match(Kafka.librdkafkaVersion, /^\d+\.\d+\.\d+/);
  assert.ok(Array.isArray(Kafka.features) && Kafka.features.length > 0, `features: ${String(Kafka.features)}`);
  // Nothing connects: constructing the client is enough to prove the binding creates a handle.
  const producer = new Kafka.Producer({ 'metadata.broker.list': '127.0.0.1:9', 'client.id': 'sluice-native-test' });
  assert.equal(producer.isConnected(), false);
});

test('msgpackr: the native msgpackr-extract accelerator is enabled and round-trips', async () => {
  const fix = 'msgpackr loads the optional msgpackr-extract, which takes a prebuilt binary from ' +
    '@msgpackr-extract/msgpackr-extract-<platform>-<arch> or builds one with node-gyp. Leave ' +
    `MSGPACKR_NATIVE_ACCELERATION_DISABLED unset and run \`npm rebuild msgpackr-extract\`. ${NODE_GYP_HINT}`;
  const msgpackr = await loads('msgpackr', fix, () => import('msgpackr'));
  await loads('msgpackr-extract', fix, () => {
    const extract = require('msgpackr-extract') as { extractStrings?: unknown };
    assert.equal(typeof extract.extractStrings, 'function');
    assert.equal(msgpackr.isNativeAccelerationEnabled, true, 'msgpackr.isNativeAccelerationEnabled is false');
  });
  // Many short strings in one message: the case the native string extractor handles.
  const rows = Array.from({ length: 500 }, (_, i) => ({ auction: i, channel: `channel-${i % 7}`, note: 'é✓'.repeat(i % 5) }));
  const columns = { auction: [1, 2, 3], price: [1.5, -2.25, 1e300], channel: ['a', 'bb', 'ccc'] };
  assert.deepEqual(msgpackr.unpack(msgpackr.pack(rows)), rows);
  assert.deepEqual(msgpackr.unpack(msgpackr.pack(columns)), columns);
});

test('apache-arrow: tableToIPC / tableFromIPC round trip', async () => {
  const fix = 'apache-arrow is plain JavaScript; reinstall with `npm ci`.';
  const arrow = await loads('apache-arrow', fix, () => import('apache-arrow'));
  const table = arrow.tableFromArrays({
    auction: new BigInt64Array([1n, -2n, 2n ** 40n]),
    price: new Float64Array([1.5, 2.5, 3.5]),
    bidder: new Int32Array([7, 8, 9]),
    channel: ['web', 'app', 'web'],
  });
  for (const format of ['stream', 'file'] as const) {
    const back = arrow.tableFromIPC(arrow.tableToIPC(table, format));
    assert.equal(back.numRows, 3);
    assert.deepEqual(back.schema.fields.map((f) => f.name), ['auction', 'price', 'bidder', 'channel']);
    assert.deepEqual([...back.getChild('auction')!.toArray()], [1n, -2n, 2n ** 40n]);
    assert.deepEqual([...back.getChild('price')!.toArray()], [1.5, 2.5, 3.5]);
    assert.deepEqual([...back.getChild('bidder')!.toArray()], [7, 8, 9]);
    assert.deepEqual(back.getChild('channel')!.toJSON(), ['web', 'app', 'web']);
  }
});
