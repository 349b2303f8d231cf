/**
 * `sluice query` as a child process against a real server in this process: json is the server's
 * answer unchanged, csv parses back (RFC 4180) to exactly /v1/sql's values, table is aligned
 * with a row-count footer that tells about truncation, parameters bind in order, and errors exit
 * 1 with the server's code (2 for bad usage).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type AddressInfo } from 'node:net';
import type { SluiceServer } from '../../server/app.js';
import { removeFreshDirs } from '../helpers/oracle.js';
import { runCli, type Ran } from '../helpers/cli.js';
import { testServer } from '../helpers/server.js';

const TOKEN = 's3cret';

const cli = (args: string[], env: Record<string, string> = {}, input = ''): Promise<Ran> => runCli(args, { env, input, timeoutMs: 30_000 });

let server: SluiceServer;
let small: SluiceServer;

function query(s: SluiceServer, sql: string, ...args: string[]): Promise<Ran> {
  return cli(['query', sql, '--url', s.url, ...args], { SLUICE_TOKEN: TOKEN });
}

interface SqlAnswer {
  columns: { name: string; type: string }[];
  rows: unknown[][];
  truncated?: boolean;
}

async function direct(s: SluiceServer, sql: string, params: unknown[] = []): Promise<SqlAnswer> {
  const res = await fetch(`${s.url}/v1/sql`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}` }, body: JSON.stringify({ sql, params }), signal: AbortSignal.timeout(20_000) });
  const text = await res.text();
  assert.equal(res.status, 200, text);
  return JSON.parse(text) as SqlAnswer;
}

/** RFC 4180 records; each field with whether it was quoted (so "" and an empty field differ). */
function parseCsv(text: string): { text: string; quoted: boolean }[][] {
  const records: { text: string; quoted: boolean }[][] = [];
  let record: { text: string; quoted: boolean }[] = [];
  let i = 0;
  for (;;) {
    let field = '';
    let quoted = false;
    if (text[i] === '"') {
      quoted = true;
      i++;
      for (;;) {
        const q = text.indexOf('"', i);
        assert.ok(q >= 0, 'unterminated quoted field');
        field += text.slice(i, q);
        i = q + 1;
        if (text[i] === '"') {
          field += '"';
          i++;
        } else {
          break;
        }
      }
    } else {
      while (i < text.length && text[i] !== ',' && text[i] !== '\n') field += text[i++];
      assert.ok(!field.includes('"') && !field.includes('\r'), `unquoted field with a quote or CR: ${field}`);
    }
    record.push({ text: field, quoted });
    if (text[i] === ',') {
      i++;
      continue;
    }
    assert.equal(text[i], '\n', `a record ends in LF (at ${i})`);
    i++;
    records.push(record);
    record = [];
    if (i === text.length) return records;
  }
}

/** What a value of /v1/sql's JSON must read as in the CSV. */
function csvExpect(v: unknown): { text: string; quoted?: boolean } {
  if (v === null) return { text: '', quoted: false };
  if (v === '') return { text: '', quoted: true };
  if (typeof v === 'string') return { text: v };
  if (typeof v === 'object') return { text: JSON.stringify(v) };
  return { text: String(v) };
}

const T = Date.UTC(2026, 0, 1);
const CHANNELS = ['plain', 'a,b', 'say "hi"', 'line\nbreak', '', 'ünïcødé ✓', 'cr\r\nlf', null];

before(async () => {
  server = await testServer({ archive: true, server: { auth: { tokens: [TOKEN] } } });
  small = await testServer({ server: { sql: { maxRows: 3 } } });
  const rows = CHANNELS.map((channel, i) => ({
    id: i === 0 ? '9007199254740993' : i, auction: i % 3, bidder: 100 + i, price: i === 7 ? null : 1.5 * i + 0.25,
    channel, qty: i, flag: i % 2 === 0, ts: new Date(T + i * 1000).toISOString(),
  }));
  // straight into the engine: this file tests the query side, not the ingest routes
  assert.equal((await server.engine.ingest('bids', Buffer.from(JSON.stringify(rows)), 'json')).rows, CHANNELS.length);
  const flushed = await fetch(`${server.url}/v1/flush`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}` }, signal: AbortSignal.timeout(20_000) });
  assert.equal(flushed.status, 200);
});

after(async () => {
  await server?.close();
  await small?.close();
  removeFreshDirs();
});

const QUERIES = [
  'SELECT * FROM bids ORDER BY ts',
  'SELECT * FROM tumble ORDER BY window_start, auction',
  "SELECT 1 AS a, 2 AS a, [1, 2] AS list, {'k': 'v'} AS st, 'x'::VARCHAR AS s, NULL AS n, true AS b",
];

describe('sluice query', () => {
  test('--format json prints the server answer unchanged', async () => {
    for (const sql of QUERIES) {
      const r = await query(server, sql, '--format', 'json');
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(JSON.parse(r.stdout), await direct(server, sql), sql);
      assert.ok(r.stdout.endsWith('}\n'));
    }
  });

  test('--format csv parses back to exactly the values of /v1/sql', async () => {
    for (const sql of QUERIES) {
      const r = await query(server, sql, '--format', 'csv');
      assert.equal(r.code, 0, r.stderr);
      const want = await direct(server, sql);
      const [header, ...records] = parseCsv(r.stdout);
      assert.deepEqual(header!.map((f) => f.text), want.columns.map((c) => c.name));
      assert.equal(records.length, want.rows.length, sql);
      want.rows.forEach((row, i) => {
        row.forEach((v, j) => {
          const got = records[i]![j]!;
          const e = csvExpect(v);
          assert.equal(got.text, e.text, `${sql}: row ${i} column ${j}`);
          if (e.quoted !== undefined) assert.equal(got.quoted, e.quoted, `${sql}: row ${i} column ${j} (null vs empty string)`);
        });
      });
    }
    // the archive holds every tricky string, and nothing else but what CSV needs is quoted
    const r = await query(server, 'SELECT channel FROM bids ORDER BY ts', '--format', 'csv');
    assert.equal(r.stdout, 'channel\nplain\n"a,b"\n"say ""hi"""\n"line\nbreak"\n""\nünïcødé ✓\n"cr\r\nlf"\n\n');
  });

  test('--format table: aligned, NULL, numbers to the right, a row-count footer', async () => {
    const r = await query(server, "SELECT * FROM (VALUES (1, 'x', 1.5), (22, NULL, NULL), (-3, 'a longer one', 10.25)) t(n, s, f) ORDER BY n");
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, [
      ' n  s                 f',
      '--  ------------  -----',
      '-3  a longer one  10.25',
      ' 1  x               1.5',
      '22  NULL           NULL',
      '(3 rows)',
      '',
    ].join('\n'));
    const one = await query(server, "SELECT 'tab\there' AS s, 'line\nbreak' AS t");
    assert.equal(one.stdout, 's          t\n---------  -----------\ntab\\there  line\\nbreak\n(1 row)\n');
    const none = await query(server, 'SELECT 1 AS x WHERE false');
    assert.equal(none.stdout, 'x\n-\n(0 rows)\n');
  });

  test('a result cut at server.sql.maxRows says so in every format', async () => {
    const sql = 'SELECT range AS i FROM range(10)';
    const table = await cli(['query', sql, '--url', small.url]);
    assert.equal(table.code, 0, table.stderr);
    assert.equal(table.stdout, 'i\n-\n0\n1\n2\n(3 rows; truncated: the server returns at most server.sql.maxRows rows)\n');
    const json = await cli(['query', sql, '--url', small.url, '--format', 'json']);
    assert.deepEqual(JSON.parse(json.stdout), { columns: [{ name: 'i', type: 'BIGINT' }], rows: [[0], [1], [2]], truncated: true });
    const csv = await cli(['query', sql, '--url', small.url, '--format', 'csv']);
    assert.equal(csv.stdout, 'i\n0\n1\n2\n');
  });

  test('--param binds $1, $2, ... (JSON scalars as such, the rest as text); SQL from stdin with -', async () => {
    const r = await query(server, 'SELECT $1::INTEGER + 1 AS n, $2 AS s, $3 AS b, $4 AS z, $5::BIGINT AS big, $6 AS q', '--format', 'json',
      '--param', '41', '--param', 'web', '--param', 'true', '--param', 'null', '--param', '9007199254740993', '--param', '"42"');
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual((JSON.parse(r.stdout) as SqlAnswer).rows, [[42, 'web', true, null, '9007199254740993', '42']]);
    const count = await direct(server, 'SELECT count(*) FROM bids WHERE auction = $1', [1]);
    const p = await query(server, 'SELECT count(*) FROM bids WHERE auction = $1', '-p', '1', '--format', 'csv');
    assert.equal(p.stdout, `count_star()\n${String(count.rows[0]![0])}\n`);
    const stdin = await cli(['query', '-', '--url', server.url, '--format', 'csv', '--param', '5'], { SLUICE_TOKEN: TOKEN }, 'SELECT $1 * 2 AS ten');
    assert.equal(stdin.stdout, 'ten\n10\n', stdin.stderr);
  });

  test('errors: the server code on stderr and exit 1; unreachable server; bad usage exits 2', async () => {
    const bad = await query(server, 'SELECT 1 +');
    assert.equal(bad.code, 1);
    assert.equal(bad.stdout, '');
    assert.match(bad.stderr, /^sluice: SLUICE_STORAGE_QUERY: .*syntax error/im);
    const table = await query(server, 'SELECT * FROM no_such_table');
    assert.equal(table.code, 1);
    assert.match(table.stderr, /^sluice: SLUICE_STORAGE_QUERY: .*no_such_table/m);

    const write = await query(server, 'DELETE FROM bids');
    assert.equal(write.code, 1);
    assert.match(write.stderr, /^sluice: SLUICE_SQL_NOT_READ_ONLY: /m);

    const noToken = await cli(['query', 'SELECT 1', '--url', server.url]);
    assert.equal(noToken.code, 1);
    assert.match(noToken.stderr, /^sluice: SLUICE_UNAUTHORIZED: /m);
    const flagToken = await cli(['query', 'SELECT 1 AS one', '--url', server.url, '--token', TOKEN, '--format', 'csv']);
    assert.equal(flagToken.stdout, 'one\n1\n');

    // a port that was free a moment ago
    const probe = createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const port = (probe.address() as AddressInfo).port;
    await new Promise((resolve) => probe.close(resolve));
    const down = await cli(['query', 'SELECT 1', '--url', `http://127.0.0.1:${port}`]);
    assert.equal(down.code, 1);
    assert.match(down.stderr, /^sluice: cannot reach http:\/\/127\.0\.0\.1:\d+: .*ECONNREFUSED/m);

    const missing = await cli(['query']);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /the SQL statement is missing/);
    const format = await cli(['query', 'SELECT 1', '--format', 'xml']);
    assert.equal(format.code, 2);
    assert.match(format.stderr, /--format takes table, json, csv, got 'xml'/);
  });
});
