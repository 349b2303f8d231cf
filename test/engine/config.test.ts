import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  configFromObject, configKeyPaths, type ConfigOptions, ENV_OVERRIDES, ENV_TOKEN, loadConfig, NON_CONFIG_ENV_VARS,
  parseConfig, resolveStorageThreads, resolveWorkerThreads, streamSchemaOf, type SluiceConfig,
} from '../../engine/config.js';
import { SluiceError } from '../../engine/errors.js';
import { repoRoot } from '../helpers/paths.js';

type Tree = Record<string, unknown>;

/** The A2 example without server/storage/workers/kafka: everything else comes from defaults. */
function base(): Tree {
  return {
    streams: {
      bids: {
        schema: { auction: 'int64', bidder: 'int64', price: 'float64', channel: 'string', ts: 'timestamp' },
        eventTime: { column: 'ts', maxOutOfOrder: '2s' },
      },
    },
    pipelines: {
      bid_stats: {
        from: 'bids',
        where: "price > 100 and channel != 'spam'",
        window: { tumbling: '10s' },
        groupBy: ['auction'],
        select: { bids: 'count()', max_price: 'max(price)' },
        lateness: '5s',
      },
    },
  };
}

const BASE_YAML = `
streams:
  bids:
    schema: { auction: int64, bidder: int64, price: float64, channel: string, ts: timestamp }
    eventTime: { column: ts, maxOutOfOrder: 2s }
pipelines:
  bid_stats:
    from: bids
    where: "price > 100 and channel != 'spam'"
    window: { tumbling: 10s }
    groupBy: [auction]
    select: { bids: count(), max_price: max(price) }
    lateness: 5s
`;

function node(tree: Tree, path: string): Tree {
  let cur: unknown = tree;
  for (const seg of path.split('.')) {
    if (seg === '') continue;
    const obj = cur as Tree;
    if (obj[seg] === undefined) obj[seg] = {};
    cur = obj[seg];
  }
  return cur as Tree;
}

/** Set (or with `undefined`, delete) the key at a dotted path. */
function set(tree: Tree, path: string, value: unknown): Tree {
  const cut = path.lastIndexOf('.');
  const parent = node(tree, cut < 0 ? '' : path.slice(0, cut));
  const key = path.slice(cut + 1);
  if (value === undefined) delete parent[key];
  else parent[key] = value;
  return tree;
}

function load(value: unknown, opts: ConfigOptions = {}): SluiceConfig {
  return configFromObject(value, { env: {}, ...opts });
}

/** The error a call throws, checked to be a SluiceError with the given code. */
function errorOf(fn: () => unknown, code: string): SluiceError {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof SluiceError, `expected a SluiceError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    return err;
  }
  assert.fail(`expected ${code}, but nothing was thrown`);
}

/** The problem lines of a SLUICE_CONFIG_INVALID error (the first line is the headline). */
function problems(fn: () => unknown): string[] {
  const err = errorOf(fn, 'SLUICE_CONFIG_INVALID');
  const [headline = '', ...lines] = err.message.split('\n');
  const count = Number(/\((\d+) problems?\):$/.exec(headline)?.[1]);
  assert.equal(count, lines.length, `headline count disagrees with the lines:\n${err.message}`);
  return lines;
}

function assertProblem(fn: () => unknown, line: string): void {
  const lines = problems(fn);
  assert.ok(lines.includes(line), `expected the line\n  ${line}\ngot\n  ${lines.join('\n  ')}`);
}

// ---------------------------------------------------------------------------------------------

test('defaults: an empty document gives every default and no streams', () => {
  for (const c of [parseConfig('', { env: {} }), parseConfig('{}', { env: {}, format: 'json' }), load(null), load({})]) {
    assert.deepEqual(c, {
      server: {
        host: '127.0.0.1', port: 8080, maxPayload: 16 * 2 ** 20, idleTimeout: 120_000, credits: 16,
        sql: { maxRows: 100_000, timeout: 30_000 }, subscribe: { maxBuffered: 16 * 2 ** 20 },
      },
      storage: { dir: './data', parquet: { every: 60_000 }, checkpoint: { every: 5_000 }, onPipelineChange: 'error', threads: 'auto', walCheckpoint: 64 * 2 ** 20, memoryLimit: 'auto' },
      workers: { threads: 'auto', queue: 256 * 2 ** 20, coalesce: 2 ** 20, heap: 2 ** 31 },
      streams: {},
      pipelines: {},
    });
  }
});

test('defaults: stream, event time and pipeline keys', () => {
  const t = base();
  set(t, 'streams.bids.eventTime', { column: 'ts' });
  set(t, 'pipelines.bid_stats', { from: 'bids', window: { tumbling: '1m' }, select: { n: 'count()' } });
  const c = load(t);
  assert.deepEqual(c.streams['bids'], {
    schema: { auction: 'int64', bidder: 'int64', price: 'float64', channel: 'string', ts: 'timestamp' },
    eventTime: { column: 'ts', maxOutOfOrder: 0, idleTimeout: 10_000 },
    archive: false,
    ack: 'accepted',
  });
  assert.deepEqual(c.pipelines['bid_stats'], {
    from: 'bids', window: { kind: 'tumbling', size: 60_000 }, groupBy: [], select: { n: 'count()' }, lateness: 0,
  });
  assert.equal(c.kafka, undefined);
  assert.equal(c.server.auth, undefined);
});

test('the A2 example normalises durations, sizes and windows', () => {
  const c = parseConfig(readFileSync(join(repoRoot, 'configs', 'sluice.yaml'), 'utf8'), { env: {} });
  assert.equal(c.server.maxPayload, 16_777_216);
  assert.equal(c.storage.parquet.every, 60_000);
  assert.deepEqual(c.streams['bids']?.eventTime, { column: 'ts', maxOutOfOrder: 2_000, idleTimeout: 10_000 });
  assert.deepEqual(c.pipelines['bid_stats']?.window, { kind: 'tumbling', size: 10_000 });
  assert.equal(c.pipelines['bid_stats']?.lateness, 5_000);

  const hop = load(set(base(), 'pipelines.bid_stats.window', { hopping: { size: '10s', slide: '2s' } }));
  assert.deepEqual(hop.pipelines['bid_stats']?.window, { kind: 'hopping', size: 10_000, slide: 2_000 });
  const ses = load(set(base(), 'pipelines.bid_stats.window', { session: { gap: '30s' } }));
  assert.deepEqual(ses.pipelines['bid_stats']?.window, { kind: 'session', gap: 30_000 });
});

test('the values given in the file win over the defaults', () => {
  const c = parseConfig(`
server: { host: 0.0.0.0, port: 0, maxPayload: 1MiB, idleTimeout: 0, credits: 4, auth: { tokens: [a, b, a] }, sql: { maxRows: 10, timeout: 2s }, subscribe: { maxBuffered: 1MiB } }
storage: { dir: /var/lib/sluice, parquet: { every: 30s }, checkpoint: { every: 1s }, threads: 2, walCheckpoint: 64MiB, memoryLimit: 1GiB }
workers: { threads: 3 }
${BASE_YAML}`, { env: {} });
  assert.deepEqual(c.server, {
    host: '0.0.0.0', port: 0, maxPayload: 2 ** 20, idleTimeout: 0, credits: 4, auth: { tokens: ['a', 'b'] },
    sql: { maxRows: 10, timeout: 2_000 }, subscribe: { maxBuffered: 2 ** 20 },
  });
  assert.deepEqual(c.storage, { dir: '/var/lib/sluice', parquet: { every: 30_000 }, checkpoint: { every: 1_000 }, onPipelineChange: 'error', threads: 2, walCheckpoint: 64 * 2 ** 20, memoryLimit: 2 ** 30 });
  assert.equal(c.workers.threads, 3);
});

test('storage.threads auto is the cores the worker pool leaves, at least one; a number is taken as it is', () => {
  const cores = availableParallelism();
  const withThreads = (storage: unknown, workers: unknown) => load(set(set(base(), 'storage.threads', storage), 'workers.threads', workers));
  assert.equal(resolveStorageThreads(withThreads('auto', 'auto')), 1);
  assert.equal(resolveStorageThreads(withThreads('auto', 1)), Math.max(1, cores - 1));
  assert.equal(resolveStorageThreads(withThreads('auto', cores + 4)), 1);
  assert.equal(resolveStorageThreads(withThreads(3, 'auto')), 3);
});

// --- layering ----------------------------------------------------------------------------------

test('layering: defaults < file < flags < environment, for every overridable key', () => {
  const rows: {
    path: (c: SluiceConfig) => unknown;
    file: [string, unknown];
    flag: ConfigOptions['overrides'];
    env: [string, string];
    expect: [unknown, unknown, unknown, unknown];
  }[] = [
    { path: (c) => c.server.host, file: ['server.host', '10.0.0.1'], flag: { host: '10.0.0.2' }, env: ['SLUICE_HOST', '10.0.0.3'],
      expect: ['127.0.0.1', '10.0.0.1', '10.0.0.2', '10.0.0.3'] },
    { path: (c) => c.server.port, file: ['server.port', 9000], flag: { port: 9100 }, env: ['SLUICE_PORT', '9200'],
      expect: [8080, 9000, 9100, 9200] },
    { path: (c) => c.storage.dir, file: ['storage.dir', './a'], flag: { dataDir: './b' }, env: ['SLUICE_DATA', './c'],
      expect: ['./data', './a', './b', './c'] },
    { path: (c) => c.server.maxPayload, file: ['server.maxPayload', '1MiB'], flag: { maxPayload: '2MiB' }, env: ['SLUICE_MAX_PAYLOAD', '3MiB'],
      expect: [16 * 2 ** 20, 2 ** 20, 2 * 2 ** 20, 3 * 2 ** 20] },
    { path: (c) => c.workers.threads, file: ['workers.threads', 2], flag: { workers: 3 }, env: ['SLUICE_WORKERS', '4'],
      expect: ['auto', 2, 3, 4] },
    { path: (c) => c.kafka?.brokers, file: ['kafka.brokers', 'k1:9092'], flag: { kafkaBrokers: 'k2:9092' }, env: ['SLUICE_KAFKA_BROKERS', 'k3:9092,k4:9093'],
      expect: [undefined, ['k1:9092'], ['k2:9092'], ['k3:9092', 'k4:9093']] },
    { path: (c) => c.kafka?.group, file: ['kafka', { brokers: 'k:1', group: 'g1' }], flag: { kafkaGroup: 'g2' }, env: ['SLUICE_KAFKA_GROUP', 'g3'],
      expect: [undefined, 'g1', 'g2', 'g3'] },
    { path: (c) => c.server.port, file: ['server.port', 9000], flag: { port: 9100 }, env: ['SLUICE_CONFIG__server__port', '9300'],
      expect: [8080, 9000, 9100, 9300] },
    { path: (c) => c.pipelines['bid_stats']?.lateness, file: ['pipelines.bid_stats.lateness', '1s'], flag: {}, env: ['SLUICE_CONFIG__pipelines__bid_stats__lateness', '1m30s'],
      expect: [5_000, 1_000, 1_000, 90_000] },
  ];
  for (const r of rows) {
    const withFile = (): Tree => set(base(), r.file[0], r.file[1]);
    const got = [
      r.path(load(base())),
      r.path(load(withFile())),
      r.path(load(withFile(), { overrides: r.flag })),
      r.path(load(withFile(), { overrides: r.flag, env: { [r.env[0]]: r.env[1] } })),
    ];
    assert.deepEqual(got, r.expect, r.env[0]);
  }
});

test('flags and environment apply to YAML text and to loadConfig as well', () => {
  const c = parseConfig(`server: { port: 1 }\n${BASE_YAML}`, { env: { SLUICE_HOST: '::1' }, overrides: { port: 2 } });
  assert.equal(c.server.port, 2);
  assert.equal(c.server.host, '::1');
});

test('an empty environment value counts as unset', () => {
  assert.equal(load(set(base(), 'server.port', 9000), { env: { SLUICE_PORT: '' } }).server.port, 9000);
});

test('SLUICE_TOKEN adds a token, creating server.auth when the file has none', () => {
  assert.deepEqual(load(base(), { env: { SLUICE_TOKEN: 's3cret' } }).server.auth, { tokens: ['s3cret'] });
  const withTokens = set(base(), 'server.auth', { tokens: ['a'] });
  assert.deepEqual(load(withTokens, { env: { SLUICE_TOKEN: 'b' } }).server.auth, { tokens: ['a', 'b'] });
  // The file's own reference to the same variable does not produce a duplicate.
  const ref = set(base(), 'server.auth', { tokens: ['${SLUICE_TOKEN}'] });
  assert.deepEqual(load(ref, { env: { SLUICE_TOKEN: 'b' } }).server.auth, { tokens: ['b'] });
});

test('SLUICE_KAFKA_BROKERS turns on Kafka mode with default group and one topic per stream', () => {
  const c = load(base(), { env: { SLUICE_KAFKA_BROKERS: 'a:9092, b:9093' } });
  assert.deepEqual(c.kafka, { brokers: ['a:9092', 'b:9093'], group: 'sluice', topics: { bids: 'bids' } });
  const t = set(base(), 'streams.clicks', { schema: { at: 'timestamp' }, eventTime: { column: 'at' } });
  set(t, 'kafka', { brokers: ['h:1'], topics: { bids: 'sluice.bids' } });
  assert.deepEqual(load(t).kafka?.topics, { bids: 'sluice.bids', clicks: 'clicks' });
});

test('generic overrides: text converted by the key type, flow collections for lists', () => {
  const c = load(base(), {
    env: {
      SLUICE_CONFIG__streams__bids__archive: 'true',
      SLUICE_CONFIG__pipelines__bid_stats__groupBy: '[auction, channel]',
      SLUICE_CONFIG__kafka__brokers: 'h:1',
      SLUICE_CONFIG__kafka__group: '123',
      SLUICE_CONFIG__server__auth__tokens: '[t1, t2]',
    },
  });
  assert.equal(c.streams['bids']?.archive, true);
  assert.deepEqual(c.pipelines['bid_stats']?.groupBy, ['auction', 'channel']);
  assert.equal(c.kafka?.group, '123');
  assert.deepEqual(c.server.auth?.tokens, ['t1', 't2']);
});

test('generic overrides cannot reach Object.prototype', () => {
  assertProblem(() => load(base(), { env: { SLUICE_CONFIG____proto____polluted: 'yes' } }),
    'SLUICE_CONFIG____proto____polluted: malformed override: expected SLUICE_CONFIG__<key>__<key>..., e.g. SLUICE_CONFIG__server__port');
  assertProblem(() => load(base(), { env: { SLUICE_CONFIG__server__constructor: 'x' } }),
    'SLUICE_CONFIG__server__constructor: malformed override: expected SLUICE_CONFIG__<key>__<key>..., e.g. SLUICE_CONFIG__server__port');
  assert.equal(({} as Tree)['polluted'], undefined);
});

test('the environment variables that other components read are not rejected', () => {
  const env: NodeJS.ProcessEnv = { SLUICE_BENCH_SECONDS: '3', PATH: '/bin', SLUICE_KAFKA_TOPIC: 't' };
  for (const name of NON_CONFIG_ENV_VARS) env[name] = 'x';
  // SLUICE_KAFKA_TOPIC looks like a config variable, but the file refers to it, so it is in use.
  const t = set(base(), 'streams.bids.eventTime.column', '${SLUICE_TS_COLUMN:-ts}');
  set(t, 'kafka', { brokers: 'h:1', topics: { bids: '${SLUICE_KAFKA_TOPIC}' } });
  assert.equal(load(t, { env }).kafka?.topics['bids'], 't');
  // ... and without the reference it is rejected.
  assertProblem(() => load(base(), { env }),
    'SLUICE_KAFKA_TOPIC: unknown configuration variable; set any key with SLUICE_CONFIG__<key>__<key>, e.g. SLUICE_CONFIG__server__port');
});

// --- ${VAR} substitution ---------------------------------------------------------------------

test('${VAR} substitution in string values, with defaults and $${ escapes', () => {
  const env = { H: 'db.local', A: 'x', EMPTY: '' };
  const t = set(base(), 'server.host', '${H}');
  set(t, 'storage.dir', '/srv/${A}-${A}/${NOPE:-fallback}/${EMPTY:-was-empty}/${EMPTY}.');
  set(t, 'pipelines.bid_stats.where', "channel != '$${A}' and channel != '${A}' and channel != 'cost $$5 $$'");
  const c = load(t, { env });
  assert.equal(c.server.host, 'db.local');
  assert.equal(c.storage.dir, '/srv/x-x/fallback/was-empty/.');
  assert.equal(c.pipelines['bid_stats']?.where, "channel != '${A}' and channel != 'x' and channel != 'cost $$5 $$'");
});

test('a substituted value is one string: it cannot inject YAML structure', () => {
  const yaml = `server:\n  host: "\${H}"\n${BASE_YAML}`;
  const env = { H: 'evil\nport: 1\nauth: { tokens: [x] }' };
  const c = parseConfig(yaml, { env });
  assert.equal(c.server.host, env.H.trim());
  assert.equal(c.server.port, 8080);
  assert.equal(c.server.auth, undefined);
  // Substituted into an expression, the YAML-looking text stays one string: the expression
  // parser rejects it at its first ':' and groupBy / select are untouched.
  const withWhere = BASE_YAML.replace(`where: "price > 100 and channel != 'spam'"`, 'where: ${W}');
  const W = "price > 1\n    groupBy: [bidder]\n    select: { n: 'count()' }";
  assertProblem(() => parseConfig(withWhere, { env: { W } }), "pipelines.bid_stats.where: unexpected character ':' at 2:12");
  // A mapping-looking value in a number field stays text and is rejected as such.
  assertProblem(() => parseConfig(`server: { port: "\${P}" }`, { env: { P: '{ a: 1 }' } }), 'server.port: expected an integer from 0 to 65535');
  // A numeric value in a number field is converted by the schema.
  assert.equal(parseConfig('server: { port: "${P}" }', { env: { P: '9000' } }).server.port, 9000);
});

test('an unset variable without default is SLUICE_CONFIG_ENV_MISSING naming path and variable', () => {
  const t = set(base(), 'server.auth', { tokens: ['${SLUICE_TOKEN_A}', 'ok', '${SLUICE_TOKEN_B}'] });
  const err = errorOf(() => load(t, { source: 'x.yaml' }), 'SLUICE_CONFIG_ENV_MISSING');
  assert.equal(err.message, [
    'missing environment variables in x.yaml (2 problems):',
    'server.auth.tokens[0]: environment variable SLUICE_TOKEN_A is not set (write ${SLUICE_TOKEN_A:-default} to give a default)',
    'server.auth.tokens[2]: environment variable SLUICE_TOKEN_B is not set (write ${SLUICE_TOKEN_B:-default} to give a default)',
  ].join('\n'));
});

test('malformed ${...} references are configuration errors with the path', () => {
  assertProblem(() => load(set(base(), 'server.host', 'a${1X}b')), "server.host: '${1X}' is not a variable reference: write ${NAME} or ${NAME:-default}");
  assertProblem(() => load(set(base(), 'server.host', 'a${}b')), "server.host: '${}' is not a variable reference: write ${NAME} or ${NAME:-default}");
  assertProblem(() => load(set(base(), 'storage.dir', '/x/${HOME')), 'storage.dir: unterminated ${ (write $${ for a literal ${)');
});

test('keys are never substituted', () => {
  assertProblem(() => load(set(base(), 'server.${K}', 1), { env: { K: 'port' } }), 'server.${K}: unknown key');
});

// --- error messages name the path ------------------------------------------------------------

const PROBLEMS: { name: string; edit: (t: Tree) => void; env?: NodeJS.ProcessEnv; line: string }[] = [
  { name: 'bad duration', edit: (t) => set(t, 'pipelines.bid_stats.window.tumbling', '10x'),
    line: 'pipelines.bid_stats.window.tumbling: expected a duration like 10s' },
  { name: 'duration of the wrong type', edit: (t) => set(t, 'streams.bids.eventTime.maxOutOfOrder', [1]),
    line: 'streams.bids.eventTime.maxOutOfOrder: expected a duration like 10s' },
  { name: 'zero window', edit: (t) => set(t, 'pipelines.bid_stats.window.tumbling', '0s'),
    line: 'pipelines.bid_stats.window.tumbling: must be greater than 0' },
  { name: 'bad size', edit: (t) => set(t, 'server.maxPayload', '16MiBs'),
    line: 'server.maxPayload: expected a size like 16MiB' },
  { name: 'size out of range', edit: (t) => set(t, 'server.maxPayload', '2GiB'),
    line: 'server.maxPayload: must be between 1KiB and 1GiB' },
  { name: 'unknown key at the root', edit: (t) => set(t, 'serve', {}),
    line: 'serve: unknown key (did you mean server?)' },
  { name: 'unknown key in server', edit: (t) => set(t, 'server.prot', 1),
    line: 'server.prot: unknown key (did you mean port?)' },
  { name: 'unknown key in a stream', edit: (t) => set(t, 'streams.bids.shema', {}),
    line: 'streams.bids.shema: unknown key (did you mean schema?)' },
  { name: 'unknown key in eventTime', edit: (t) => set(t, 'streams.bids.eventTime.watermark', '1s'),
    line: 'streams.bids.eventTime.watermark: unknown key' },
  { name: 'unknown key in a hopping window', edit: (t) => set(t, 'pipelines.bid_stats.window', { hopping: { size: '10s', slid: '1s' } }),
    line: 'pipelines.bid_stats.window.hopping.slid: unknown key (did you mean slide?)' },
  { name: 'unknown key in storage.parquet', edit: (t) => set(t, 'storage.parquet.Every', '1m'),
    line: 'storage.parquet.Every: unknown key (did you mean every?)' },
  { name: 'port not a number', edit: (t) => set(t, 'server.port', 'eighty'),
    line: 'server.port: expected an integer from 0 to 65535' },
  { name: 'port out of range', edit: (t) => set(t, 'server.port', 65536),
    line: 'server.port: expected an integer from 0 to 65535' },
  { name: 'port not an integer', edit: (t) => set(t, 'server.port', 80.5),
    line: 'server.port: expected an integer from 0 to 65535' },
  { name: 'host of the wrong type', edit: (t) => set(t, 'server.host', 12),
    line: 'server.host: expected a host name or IP address' },
  { name: 'empty host', edit: (t) => set(t, 'server.host', '  '),
    line: 'server.host: must not be empty' },
  { name: 'server not a mapping', edit: (t) => set(t, 'server', 'localhost'),
    line: 'server: expected a mapping, got a string' },
  { name: 'streams not a mapping', edit: (t) => set(t, 'streams', []),
    line: 'streams: expected a mapping of stream name to stream' },
  { name: 'idle timeout uWS cannot take', edit: (t) => set(t, 'server.idleTimeout', '5s'),
    line: 'server.idleTimeout: must be 0 (never) or whole seconds of at least 8s' },
  { name: 'credits out of range', edit: (t) => set(t, 'server.credits', 0),
    line: 'server.credits: expected an integer from 1 to 1024' },
  { name: 'no tokens', edit: (t) => set(t, 'server.auth', { tokens: [] }),
    line: 'server.auth.tokens: expected at least one token' },
  { name: 'empty token', edit: (t) => set(t, 'server.auth', { tokens: ['ok', ''] }),
    line: 'server.auth.tokens[1]: must not be empty' },
  { name: 'auth without tokens', edit: (t) => set(t, 'server.auth', {}),
    line: 'server.auth.tokens: required' },
  { name: 'threads', edit: (t) => set(t, 'workers.threads', 0),
    line: 'workers.threads: expected auto or an integer from 1 to 256' },
  { name: 'threads text', edit: (t) => set(t, 'workers.threads', 'all'),
    line: 'workers.threads: expected auto or an integer from 1 to 256' },
  { name: 'storage threads', edit: (t) => set(t, 'storage.threads', 0),
    line: 'storage.threads: expected auto or an integer from 1 to 256' },
  { name: 'WAL checkpoint too small', edit: (t) => set(t, 'storage.walCheckpoint', '64KiB'),
    line: 'storage.walCheckpoint: must be between 1MiB and 1TiB' },
  { name: 'memory limit too small', edit: (t) => set(t, 'storage.memoryLimit', '1MiB'),
    line: 'storage.memoryLimit: must be between 16MiB and 1PiB' },
  { name: 'memory limit neither auto nor a size', edit: (t) => set(t, 'storage.memoryLimit', 'lots'),
    line: 'storage.memoryLimit: expected auto or a size like 16MiB' },
  { name: 'archive', edit: (t) => set(t, 'streams.bids.archive', 'yes'),
    line: 'streams.bids.archive: expected true or false' },
  { name: 'ack', edit: (t) => set(t, 'streams.bids.ack', 'fsync'),
    line: 'streams.bids.ack: expected accepted or durable' },
  { name: 'column type', edit: (t) => set(t, 'streams.bids.schema.price', 'float'),
    line: 'streams.bids.schema.price: expected one of bool, int32, int64, float64, string, timestamp' },
  { name: 'no columns', edit: (t) => set(t, 'streams.bids.schema', {}),
    line: 'streams.bids.schema: must declare at least one column' },
  { name: 'missing eventTime', edit: (t) => set(t, 'streams.bids.eventTime', undefined),
    line: 'streams.bids.eventTime: required' },
  { name: 'missing from', edit: (t) => set(t, 'pipelines.bid_stats.from', undefined),
    line: 'pipelines.bid_stats.from: required' },
  { name: 'missing select', edit: (t) => set(t, 'pipelines.bid_stats.select', undefined),
    line: 'pipelines.bid_stats.select: required' },
  { name: 'empty select', edit: (t) => set(t, 'pipelines.bid_stats.select', {}),
    line: 'pipelines.bid_stats.select: must have at least one output column' },
  { name: 'aggregate not a string', edit: (t) => set(t, 'pipelines.bid_stats.select.n', 3),
    line: 'pipelines.bid_stats.select.n: expected an aggregate call like count() or max(price)' },
  { name: 'groupBy not a list', edit: (t) => set(t, 'pipelines.bid_stats.groupBy', 'auction'),
    line: 'pipelines.bid_stats.groupBy: expected a list of column names' },
  { name: 'groupBy twice', edit: (t) => set(t, 'pipelines.bid_stats.groupBy', ['auction', 'channel', 'auction']),
    line: "pipelines.bid_stats.groupBy[2]: column 'auction' is listed twice" },
  { name: 'window with two kinds', edit: (t) => set(t, 'pipelines.bid_stats.window', { tumbling: '10s', session: { gap: '1s' } }),
    line: 'pipelines.bid_stats.window: expected exactly one of tumbling, hopping, session, got tumbling and session' },
  { name: 'window with no kind', edit: (t) => set(t, 'pipelines.bid_stats.window', {}),
    line: 'pipelines.bid_stats.window: expected one of tumbling, hopping, session' },
  { name: 'hopping slide > size', edit: (t) => set(t, 'pipelines.bid_stats.window', { hopping: { size: '10s', slide: '20s' } }),
    line: 'pipelines.bid_stats.window.hopping.slide: must be at most size (10s)' },
  { name: 'hopping slide not dividing size', edit: (t) => set(t, 'pipelines.bid_stats.window', { hopping: { size: '10s', slide: '3s' } }),
    line: 'pipelines.bid_stats.window.hopping.slide: must divide size (10s) evenly' },
  { name: 'hopping slide 0', edit: (t) => set(t, 'pipelines.bid_stats.window', { hopping: { size: '10s', slide: 0 } }),
    line: 'pipelines.bid_stats.window.hopping.slide: must be greater than 0' },
  { name: 'session without gap', edit: (t) => set(t, 'pipelines.bid_stats.window', { session: {} }),
    line: 'pipelines.bid_stats.window.session.gap: required' },
  { name: 'from names a missing stream', edit: (t) => set(t, 'pipelines.bid_stats.from', 'bidz'),
    line: "pipelines.bid_stats.from: no stream named 'bidz' (streams: bids)" },
  { name: 'groupBy names a missing column', edit: (t) => set(t, 'pipelines.bid_stats.groupBy', ['channel', 'auktion']),
    line: "pipelines.bid_stats.groupBy[1]: column 'auktion' is not in stream 'bids'" },
  { name: 'groupBy names a result column', edit: (t) => {
    set(t, 'streams.bids.schema.partition', 'int32');
    set(t, 'pipelines.bid_stats.groupBy', ['partition']);
  }, line: "pipelines.bid_stats.groupBy[0]: column 'partition' collides with the result column of the same name" },
  { name: 'eventTime on a missing column', edit: (t) => set(t, 'streams.bids.eventTime.column', 'time'),
    line: "streams.bids.eventTime.column: column 'time' is not in the stream's schema" },
  { name: 'eventTime on a non-timestamp column', edit: (t) => set(t, 'streams.bids.eventTime.column', 'price'),
    line: "streams.bids.eventTime.column: column 'price' has type float64; the event-time column must be a timestamp" },
  { name: 'output named window_start', edit: (t) => set(t, 'pipelines.bid_stats.select.window_start', 'min(ts)'),
    line: "pipelines.bid_stats.select.window_start: output name 'window_start' is reserved for a result column" },
  { name: 'output named Window_End', edit: (t) => set(t, 'pipelines.bid_stats.select.Window_End', 'max(ts)'),
    line: "pipelines.bid_stats.select.Window_End: output name 'Window_End' is reserved for a result column" },
  { name: 'output named partition', edit: (t) => set(t, 'pipelines.bid_stats.select.partition', 'count()'),
    line: "pipelines.bid_stats.select.partition: output name 'partition' is reserved for a result column" },
  { name: 'output named like a groupBy column', edit: (t) => set(t, 'pipelines.bid_stats.select.auction', 'count()'),
    line: "pipelines.bid_stats.select.auction: output name 'auction' collides with groupBy column 'auction'" },
  { name: 'outputs differing in case only', edit: (t) => set(t, 'pipelines.bid_stats.select.Bids', 'count(price)'),
    line: "pipelines.bid_stats.select.Bids: output name 'Bids' collides with 'bids' (DuckDB names are case-insensitive)" },
  { name: 'columns differing in case only', edit: (t) => set(t, 'streams.bids.schema.Price', 'float64'),
    line: "streams.bids.schema.Price: column name collides with 'price' (DuckDB names are case-insensitive)" },
  { name: 'pipeline named like a stream', edit: (t) => set(t, 'pipelines.bids', { from: 'bids', window: { tumbling: '1s' }, select: { n: 'count()' } }),
    line: "pipelines.bids: table name 'bids' is already used by stream 'bids'" },
  { name: 'stream named like a late table', edit: (t) => set(t, 'streams.bid_stats__late', { schema: { ts: 'timestamp' }, eventTime: { column: 'ts' } }),
    line: "pipelines.bid_stats: table name 'bid_stats__late' is already used by stream 'bid_stats__late'" },
  { name: 'pipeline named like a merged view', edit: (t) => set(t, 'pipelines.bid_stats_merged', { from: 'bids', window: { tumbling: '1s' }, select: { n: 'count()' } }),
    line: "pipelines.bid_stats_merged: table name 'bid_stats_merged' is already used by the merged view of pipeline 'bid_stats'" },
  { name: 'streams differing in case only', edit: (t) => set(t, 'streams.BIDS', { schema: { ts: 'timestamp' }, eventTime: { column: 'ts' } }),
    line: "streams.BIDS: table name 'BIDS' is already used by stream 'bids' (DuckDB names are case-insensitive)" },
  { name: 'stream column named reason', edit: (t) => set(t, 'streams.bids.schema.reason', 'string'),
    line: "pipelines.bid_stats.from: stream 'bids' has a column 'reason', which collides with the 'reason' column of the late-events table 'bid_stats__late'" },
  { name: 'reserved table prefix', edit: (t) => set(t, 'streams.sluice_state', { schema: { ts: 'timestamp' }, eventTime: { column: 'ts' } }),
    line: "streams.sluice_state: names starting with 'sluice_' are reserved for Sluice's own tables" },
  { name: 'bad stream name', edit: (t) => set(t, 'streams.bad-name', { schema: { ts: 'timestamp' }, eventTime: { column: 'ts' } }),
    line: "streams.bad-name: 'bad-name' is not a valid name: use letters, digits and _, start with a letter or _, at most 63 characters" },
  { name: 'bad column name', edit: (t) => set(t, 'streams.bids.schema.1st', 'int32'),
    line: "streams.bids.schema.1st: '1st' is not a valid name: use letters, digits and _, start with a letter or _, at most 63 characters" },
  { name: 'bad pipeline name', edit: (t) => set(t, 'pipelines.bid stats', { from: 'bids', window: { tumbling: '1s' }, select: { n: 'count()' } }),
    line: "pipelines.bid stats: 'bid stats' is not a valid name: use letters, digits and _, start with a letter or _, at most 63 characters" },
  { name: 'bad output name', edit: (t) => set(t, 'pipelines.bid_stats.select.max-price', 'max(price)'),
    line: "pipelines.bid_stats.select.max-price: 'max-price' is not a valid name: use letters, digits and _, start with a letter or _, at most 63 characters" },
  { name: 'name too long', edit: (t) => set(t, `streams.${'s'.repeat(64)}`, { schema: { ts: 'timestamp' }, eventTime: { column: 'ts' } }),
    line: `streams.${'s'.repeat(64)}: '${'s'.repeat(64)}' is not a valid name: use letters, digits and _, start with a letter or _, at most 63 characters` },
  { name: 'kafka topic for a missing stream', edit: (t) => set(t, 'kafka', { brokers: 'h:1', topics: { bidz: 'b' } }),
    line: "kafka.topics.bidz: no stream named 'bidz'" },
  { name: 'kafka topic shared by two streams', edit: (t) => {
    set(t, 'streams.asks', { schema: { ts: 'timestamp' }, eventTime: { column: 'ts' } });
    set(t, 'kafka', { brokers: 'h:1', topics: { asks: 'bids' } });
  }, line: "kafka.topics.asks: topic 'bids' is already used by stream 'bids'" },
  { name: 'kafka broker without port', edit: (t) => set(t, 'kafka', { brokers: 'h:1,localhost' }),
    line: "kafka.brokers: 'localhost' is not host:port" },
  { name: 'kafka without brokers', edit: (t) => set(t, 'kafka', { group: 'g' }),
    line: 'kafka.brokers: required' },
  { name: 'kafka bad topic name', edit: (t) => set(t, 'kafka', { brokers: 'h:1', topics: { bids: 'a topic' } }),
    line: 'kafka.topics.bids: expected a Kafka topic name (letters, digits, . _ -, at most 249 characters)' },
  { name: 'unknown generic env override', edit: () => undefined, env: { SLUICE_CONFIG__server__prot: '9000' },
    line: 'server.prot: unknown key (did you mean port?) (from SLUICE_CONFIG__server__prot)' },
  { name: 'generic env override into a scalar', edit: (t) => set(t, 'server.port', 9000), env: { SLUICE_CONFIG__server__port__x: '1' },
    line: 'SLUICE_CONFIG__server__port__x: cannot set server.port.x: server.port is not a mapping' },
  { name: 'bad generic env flow value', edit: () => undefined, env: { SLUICE_CONFIG__pipelines__bid_stats__groupBy: '[a, b' },
    line: 'SLUICE_CONFIG__pipelines__bid_stats__groupBy: a value starting with [ or { must be a YAML flow list or mapping, e.g. [a, b]' },
  { name: 'bad value from a named env variable', edit: () => undefined, env: { SLUICE_PORT: 'http' },
    line: 'server.port: expected an integer from 0 to 65535 (from SLUICE_PORT)' },
  { name: 'two env variables for one key', edit: () => undefined, env: { SLUICE_PORT: '1', SLUICE_CONFIG__server: '{ port: 2 }' },
    line: 'SLUICE_PORT: sets server.port, which SLUICE_CONFIG__server also sets' },
  { name: 'misspelt env variable', edit: () => undefined, env: { SLUICE_PROT: '9000' },
    line: 'SLUICE_PROT: unknown configuration variable; did you mean SLUICE_PORT? set any key with SLUICE_CONFIG__<key>__<key>, e.g. SLUICE_CONFIG__server__port' },
  { name: 'env variable extending a known one', edit: () => undefined, env: { SLUICE_DATA_DIR: '/x' },
    line: 'SLUICE_DATA_DIR: unknown configuration variable; did you mean SLUICE_DATA? set any key with SLUICE_CONFIG__<key>__<key>, e.g. SLUICE_CONFIG__server__port' },
  { name: 'env variable named after a section', edit: () => undefined, env: { SLUICE_SERVER_PORT: '1' },
    line: 'SLUICE_SERVER_PORT: unknown configuration variable; set any key with SLUICE_CONFIG__<key>__<key>, e.g. SLUICE_CONFIG__server__port' },
  { name: 'generic prefix with one underscore', edit: () => undefined, env: { SLUICE_CONFIG_server__port: '1' },
    line: 'SLUICE_CONFIG_server__port: unknown configuration variable; set any key with SLUICE_CONFIG__<key>__<key>, e.g. SLUICE_CONFIG__server__port' },
];

for (const p of PROBLEMS) {
  test(`error names the path: ${p.name}`, () => {
    const t = base();
    p.edit(t);
    assertProblem(() => load(t, { env: p.env ?? {} }), p.line);
  });
}

test('flag values that fail say which flag set them', () => {
  assertProblem(() => load(base(), { overrides: { port: 70000 } }), 'server.port: expected an integer from 0 to 65535 (from --port)');
  assertProblem(() => load(base(), { overrides: { maxPayload: 'lots' } }), 'server.maxPayload: expected a size like 16MiB (from --max-payload)');
});

test('several problems are reported together in one error, one per line', () => {
  const t = base();
  set(t, 'server.port', -1);
  set(t, 'pipelines.bid_stats.window.tumbling', 'soon');
  set(t, 'streams.bids.shema', {});
  set(t, 'pipelines.bid_stats.from', 'asks');
  const lines = problems(() => load(t, { env: { SLUICE_PROT: '1' } }));
  assert.equal(lines.length, 5, lines.join('\n'));
  for (const prefix of ['server.port: ', 'pipelines.bid_stats.window.tumbling: ', 'streams.bids.shema: ', 'pipelines.bid_stats.from: ', 'SLUICE_PROT: ']) {
    assert.ok(lines.some((l) => l.startsWith(prefix)), `no line for ${prefix}\n${lines.join('\n')}`);
  }
  const err = errorOf(() => load(t, { source: 'configs/x.yaml' }), 'SLUICE_CONFIG_INVALID');
  assert.ok(err.message.startsWith('invalid configuration in configs/x.yaml (4 problems):\n'), err.message);
});

test('a document that is not a mapping', () => {
  assert.deepEqual(problems(() => parseConfig('- a\n- b\n', { env: {} })), ['(root): expected a mapping at the top level, got a list']);
  assert.deepEqual(problems(() => parseConfig('42', { env: {}, format: 'json' })), ['(root): expected a mapping at the top level, got a number']);
});

// --- parsing -------------------------------------------------------------------------------------

test('YAML syntax errors are SLUICE_CONFIG_PARSE with source:line:col', () => {
  const cases: [string, RegExp][] = [
    ['server:\n  port: [1, 2\n', /^x\.yaml:3:1: Flow sequence in block collection must be sufficiently indented and end with a \]/],
    ['server:\n  port: 1\n  port: 2\n', /^x\.yaml:3:3: Map keys must be unique/],
    ['server: {}\n---\nserver: {}\n', /^x\.yaml:2:1: Source contains multiple documents/],
    ['server:\n  host: "oops\n', /^x\.yaml:3:1: Missing closing "quote/],
    ['server: *nope\n', /^x\.yaml(:\d+:\d+)?: .*nope/],
  ];
  for (const [text, expected] of cases) {
    const err = errorOf(() => parseConfig(text, { env: {}, source: 'x.yaml' }), 'SLUICE_CONFIG_PARSE');
    assert.match(err.message, expected);
  }
});

test('JSON input gives the same config as YAML; JSON errors carry line:col', () => {
  const fromJson = parseConfig(JSON.stringify(base(), null, 2), { env: {}, format: 'json' });
  assert.deepEqual(fromJson, parseConfig(BASE_YAML, { env: {} }));
  const err = errorOf(() => parseConfig('{\n  "server": { "port": 1, }\n}', { env: {}, format: 'json', source: 'c.json' }), 'SLUICE_CONFIG_PARSE');
  assert.match(err.message, /^c\.json:2:\d+: /);
  const err2 = errorOf(() => parseConfig('{"server": ', { env: {}, format: 'json', source: 'c.json' }), 'SLUICE_CONFIG_PARSE');
  assert.match(err2.message, /^c\.json(:\d+:\d+)?: /);
});

test('YAML 1.2: `yes` is a string, so it is not a boolean', () => {
  const yaml = BASE_YAML.replace('eventTime: { column: ts, maxOutOfOrder: 2s }', 'eventTime: { column: ts, maxOutOfOrder: 2s }\n    archive: yes');
  assertProblem(() => parseConfig(yaml, { env: {} }), 'streams.bids.archive: expected true or false');
  const ok = BASE_YAML.replace('eventTime: { column: ts, maxOutOfOrder: 2s }', 'eventTime: { column: ts, maxOutOfOrder: 2s }\n    archive: true');
  assert.equal(parseConfig(ok, { env: {} }).streams['bids']?.archive, true);
});

test('loadConfig: missing file, directory, JSON by extension, BOM', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-config-'));
  try {
    const missing = errorOf(() => loadConfig(join(dir, 'nope.yaml')), 'SLUICE_CONFIG_NOT_FOUND');
    assert.match(missing.message, /nope\.yaml.*ENOENT/);
    errorOf(() => loadConfig(dir), 'SLUICE_CONFIG_NOT_FOUND');

    const json = join(dir, 'c.json');
    writeFileSync(json, `\ufeff${JSON.stringify(base())}`);
    assert.equal(loadConfig(json, { env: {} }).pipelines['bid_stats']?.lateness, 5000);

    // `a: b` is valid YAML but not JSON: the extension decides.
    writeFileSync(json, 'server: {}\n');
    const parse = errorOf(() => loadConfig(json, { env: {} }), 'SLUICE_CONFIG_PARSE');
    assert.ok(parse.message.startsWith(json), parse.message);

    const yaml = join(dir, 'c.yml');
    writeFileSync(yaml, 'server: { port: [1 }\n');
    assert.match(errorOf(() => loadConfig(yaml, { env: {} }), 'SLUICE_CONFIG_PARSE').message, /c\.yml:1:\d+: /);
    writeFileSync(yaml, 'server: { prot: 1 }\n');
    assert.ok(errorOf(() => loadConfig(yaml, { env: {} }), 'SLUICE_CONFIG_INVALID').message.startsWith(`invalid configuration in ${yaml} (1 problem):\n`));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('configs/sluice.yaml and every file in configs/examples load cleanly', () => {
  const files = [join(repoRoot, 'configs', 'sluice.yaml'),
    ...readdirSync(join(repoRoot, 'configs', 'examples')).sort().map((f) => join(repoRoot, 'configs', 'examples', f))];
  assert.ok(files.length >= 5);
  for (const f of files) {
    const c = loadConfig(f, { env: {} });
    assert.ok(Object.keys(c.streams).length > 0, f);
    assert.ok(Object.keys(c.pipelines).length > 0, f);
  }
  const demo = loadConfig(files[0]!, { env: {} });
  assert.equal(demo.server.port, 8080);
  assert.equal(demo.server.host, '127.0.0.1');
  assert.equal(demo.storage.dir, './data');
  assert.deepEqual(Object.keys(demo.streams), ['bids']);
  assert.deepEqual(Object.keys(demo.pipelines), ['bid_stats']);
});

// --- result --------------------------------------------------------------------------------------

test('the result is deeply frozen', () => {
  const c = load(set(base(), 'kafka', { brokers: 'h:1' }));
  const targets: [object, string][] = [
    [c, 'server'], [c.server, 'port'], [c.storage.parquet, 'every'], [c.streams, 'x'], [c.streams['bids']!.schema, 'price'],
    [c.streams['bids']!.eventTime, 'column'], [c.pipelines['bid_stats']!.window, 'kind'], [c.pipelines['bid_stats']!.select, 'n'],
    [c.kafka!.topics, 'bids'],
  ];
  for (const [obj, key] of targets) {
    assert.ok(Object.isFrozen(obj));
    assert.throws(() => { (obj as Record<string, unknown>)[key] = 1; }, TypeError);
  }
  assert.throws(() => { (c.pipelines['bid_stats']!.groupBy as string[]).push('x'); }, TypeError);
  assert.throws(() => { (c.kafka!.brokers as string[])[0] = 'x'; }, TypeError);
});

test('configFromObject does not modify its input', () => {
  const t = base();
  const before = JSON.stringify(t);
  load(t, { env: { SLUICE_PORT: '1', SLUICE_TOKEN: 'x' }, overrides: { host: 'h' } });
  assert.equal(JSON.stringify(t), before);
});

test('streamSchemaOf: columns in file order, cached, unknown stream is an internal error', () => {
  const c = parseConfig(BASE_YAML, { env: {} });
  const s = streamSchemaOf(c, 'bids');
  assert.deepEqual(s.fields.map((f) => `${f.name}:${f.type}`), ['auction:int64', 'bidder:int64', 'price:float64', 'channel:string', 'ts:timestamp']);
  assert.equal(s.index.get('price'), 2);
  assert.equal(streamSchemaOf(c, 'bids'), s);
  errorOf(() => streamSchemaOf(c, 'asks'), 'SLUICE_INTERNAL');
  errorOf(() => streamSchemaOf(c, 'toString'), 'SLUICE_INTERNAL');
});

test('resolveWorkerThreads: auto is the available parallelism', () => {
  assert.equal(resolveWorkerThreads('auto'), availableParallelism());
  assert.equal(resolveWorkerThreads(3), 3);
});

test('docs/config.md documents every key and every environment variable', () => {
  const doc = readFileSync(join(repoRoot, 'docs', 'config.md'), 'utf8');
  const keys = configKeyPaths();
  assert.ok(keys.length > 30);
  for (const k of keys) assert.ok(doc.includes(`\`${k}\``), `docs/config.md does not document \`${k}\``);
  for (const v of [...ENV_OVERRIDES.keys(), ENV_TOKEN, ...NON_CONFIG_ENV_VARS, 'SLUICE_CONFIG__']) {
    assert.ok(doc.includes(`\`${v}`), `docs/config.md does not document ${v}`);
  }
});
