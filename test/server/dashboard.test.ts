/**
 * `GET /` (DESIGN.md A4), the live dashboard, in a real browser: Debian's chromium driven by
 * playwright-core against a real server. The page must load without console or page errors,
 * show the stream and the pipelines with the counters /v1/streams and /v1/pipelines give, draw
 * the events/s chart, show the windows its WebSocket subscription receives (equal to the rows
 * of /v1/sql), insert data as text (never as markup), and with server.auth work as `/?token=T`
 * and say "unauthorized" without the token instead of showing empty tables (and stop asking);
 * when the server stops, the windows already shown stay and the subscription says it retries.
 *
 * The browser comes from test/setup/install-chromium.sh (.ci/run calls it). Without it the
 * suite is skipped on a developer's machine and fails under CI.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { chromium, type Browser, type Page } from 'playwright-core';
import type { SluiceServer } from '../../server/app.js';
import { encodeBatches, makeEvents, removeFreshDirs, T0 } from '../helpers/oracle.js';
import { testServer, TUMBLE } from '../helpers/server.js';

const CHROMIUM = '/usr/bin/chromium';
const haveChromium = existsSync(CHROMIUM);
const skip = !haveChromium && process.env.CI === undefined
  ? `${CHROMIUM} is missing: run \`bash test/setup/install-chromium.sh\` (as root) to install Debian's chromium`
  : false;

/** Every query below has at most this much time to come true: the page polls once a second. */
const WAIT_MS = 8_000;

/** The pipelines of these tests: TUMBLE, and one keyed by a string so that markup can arrive as data. */
const PIPELINES = {
  ...TUMBLE,
  by_channel: { window: { tumbling: '10s' }, groupBy: ['channel'], select: { n: 'count()' } },
};

/** A group key that would run script if the page inserted it as HTML. */
const MARKUP = '<img src=x onerror="window.__injected=1"><b>bold</b> & "q"';

type Row = Record<string, unknown>;

interface Opened {
  page: Page;
  /** console errors, page errors, failed requests and answers ≥ 400, in order */
  problems: string[];
}

async function open(browser: Browser, url: string): Promise<Opened> {
  const page = await browser.newPage();
  const problems: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error') problems.push(`console: ${m.text()} (${m.location().url})`);
  });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('requestfailed', (r) => problems.push(`request failed: ${r.url()} ${r.failure()?.errorText ?? ''}`));
  page.on('response', (r) => {
    if (r.status() >= 400) problems.push(`HTTP ${r.status()}: ${r.url()}`);
  });
  const res = await page.goto(url);
  assert.equal(res?.status(), 200, `GET ${url}`);
  assert.match(res.headers()['content-type'] ?? '', /^text\/html/);
  return { page, problems };
}

/** The text of every cell of every row matching `selector`, read in the page. */
function cells(page: Page, selector: string): Promise<string[][]> {
  return page.evaluate<string[][]>(
    `[...document.querySelectorAll(${JSON.stringify(selector)})].map((tr) => [...tr.cells].map((c) => c.textContent))`,
  );
}

/** Retry `check` (which throws while its condition does not hold) until it passes or `ms` is up. */
async function eventually<T>(what: string, check: () => Promise<T>, ms = WAIT_MS): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    try {
      return await check();
    } catch (err) {
      if (Date.now() > end) {
        throw new Error(`${what}: still failing after ${ms} ms: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}

function headers(token: string | undefined, type?: string): Record<string, string> {
  // `Connection: close`: a kept-alive socket would hold the process open after the server closed
  const h: Record<string, string> = { connection: 'close' };
  if (token !== undefined) h.authorization = `Bearer ${token}`;
  if (type !== undefined) h['content-type'] = type;
  return h;
}

async function ok(res: Response, what: string): Promise<unknown> {
  const text = await res.text();
  assert.equal(res.status, 200, `${what}: ${text.slice(0, 300)}`);
  return JSON.parse(text) as unknown;
}

async function getJson(server: SluiceServer, path: string, token?: string): Promise<unknown> {
  return ok(await fetch(`${server.url}${path}`, { headers: headers(token) }), path);
}

async function post(server: SluiceServer, path: string, body: Uint8Array | string, type: string, token?: string): Promise<unknown> {
  return ok(await fetch(`${server.url}${path}`, { method: 'POST', headers: headers(token, type), body }), path);
}

/** 100 s of seeded bids as Arrow batches of 1000, then one NDJSON bid whose channel is markup. */
async function ingest(server: SluiceServer, n: number, token?: string): Promise<void> {
  for (const p of encodeBatches(makeEvents({ seed: 11, n, step: 100_000 / n, disorder: 1500 }), 1000, 'arrow')) {
    await post(server, '/v1/streams/bids/ingest', p.bytes, 'application/vnd.apache.arrow.stream', token);
  }
  // after every seeded event (≤ T0 + 101.5 s), so not late: in the last window, closed by the flush
  const bid = { id: 1, auction: 5, bidder: 6, price: 1.5, channel: MARKUP, qty: 1, flag: true, ts: T0 + 105_000 };
  await post(server, '/v1/streams/bids/ingest', JSON.stringify(bid) + '\n', 'application/x-ndjson', token);
}

/** /v1/sql's rows as objects keyed by column name. */
async function sqlRows(server: SluiceServer, sql: string, token?: string): Promise<Row[]> {
  const r = await post(server, '/v1/sql', JSON.stringify({ sql }), 'application/json', token) as { columns: { name: string }[]; rows: unknown[][] };
  return r.rows.map((row) => Object.fromEntries(r.columns.map((c, i) => [c.name, row[i]])));
}

/** "12,345" → 12345 */
const num = (text: string | undefined): number => Number((text ?? '').replace(/,/g, ''));

/** The "Latest windows" table of a pipeline, as its header and its rows (newest first). */
async function windowsTable(page: Page, pipeline: string): Promise<{ head: string[]; rows: string[][] }> {
  const sel = `[data-pipeline=${JSON.stringify(pipeline)}] table`;
  const [head] = await cells(page, `${sel} thead tr`);
  return { head: head ?? [], rows: await cells(page, `${sel} tbody tr`) };
}

/** Per column of a table, the text-align values of its header and cells: one each when they line up. */
function alignments(page: Page, table: string): Promise<string[][]> {
  return page.evaluate<string[][]>(`(() => {
    const out = [];
    for (const tr of document.querySelector(${JSON.stringify(table)}).rows) [...tr.cells].forEach((c, i) => (out[i] ??= new Set()).add(getComputedStyle(c).textAlign));
    return out.map((s) => [...s].sort());
  })()`);
}

/** The page's text for one value of a result row, as the page writes it. */
const shown = (v: unknown): string => (v === null ? 'null' : String(v));

describe('dashboard (GET /) in chromium', { skip }, () => {
  let browser: Browser;

  before(async () => {
    assert.ok(haveChromium, `${CHROMIUM} is missing and CI is set: .ci/run must install it with test/setup/install-chromium.sh`);
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
    });
  });

  after(async () => {
    await browser?.close();
    removeFreshDirs();
  });

  test('counters, chart and subscribed windows match the API; no errors; data stays text', async () => {
    const server = await testServer({ threads: 2, pipelines: PIPELINES });
    try {
      const { page, problems } = await open(browser, `${server.url}/`);
      await eventually('status live', async () => assert.equal(await page.textContent('#status'), 'live'));
      assert.equal(await page.isVisible('[role=alert]'), false);
      // both subscriptions open before any window is emitted
      for (const p of Object.keys(PIPELINES)) {
        await eventually(`${p} subscribed`, async () => assert.equal(await page.getAttribute(`[data-pipeline="${p}"]`, 'data-state'), 'open'));
      }

      await ingest(server, 20_000);

      // the tables show what the API says (the API's counters settle once the workers are done)
      await eventually('stream and pipeline rows equal to the API', async () => {
        const { streams } = await getJson(server, '/v1/streams') as { streams: Row[] };
        const { pipelines } = await getJson(server, '/v1/pipelines') as { pipelines: Row[] };
        const s = await cells(page, '#streams tbody tr');
        assert.equal(s.length, 1);
        const [name, events, , rejected, watermark, ack] = s[0]!;
        const api = streams[0]!;
        assert.equal(name, 'bids');
        assert.equal(api.events, 20_001);
        assert.equal(num(events), api.events, 'events');
        assert.equal(num(rejected), 0);
        assert.equal(watermark, api.watermark);
        assert.equal(ack, api.ack);
        const p = await cells(page, '#pipelines tbody tr');
        assert.deepEqual(p.map((r) => r[0]), pipelines.map((x) => x.name));
        for (const [i, r] of p.entries()) {
          const x = pipelines[i]!;
          assert.equal(x.events, 20_001);
          assert.deepEqual([r[1], r[2], num(r[3]), num(r[4]), num(r[5])], ['bids', 'tumbling 10s', x.events, x.lateEvents, x.windowsEmitted], `pipeline ${String(x.name)}`);
        }
      });

      // the chart: a line with a point per poll, one of them above zero
      await eventually('events/s chart drawn', async () => {
        const points = await page.getAttribute('#chart polyline', 'points');
        const ys = (points ?? '').trim().split(/\s+/).map((xy) => Number(xy.split(',')[1]));
        assert.ok(ys.length >= 2, `points: ${points}`);
        assert.ok(ys.every(Number.isFinite), `points: ${points}`);
        assert.ok(Math.min(...ys) < Math.max(...ys), `a flat line: ${points}`);
        assert.match(await page.textContent('#chart') ?? '', /events\/s.*peak [1-9]/);
      });

      await post(server, '/v1/flush', '', 'application/json');
      const want = await sqlRows(server, 'SELECT * FROM tumble ORDER BY window_start, auction');
      assert.ok(want.length > 100, `only ${want.length} result rows`);
      const byKey = new Map(want.map((r) => [`${shown(r.window_start)}|${shown(r.auction)}`, r]));
      const last = want.at(-1)!.window_start;
      const lastCount = want.filter((r) => r.window_start === last).length;

      // the flush's windows arrive over the subscription: newest first, at most 50, every one a row of the table
      const got = await eventually('the flushed windows in the page', async () => {
        const t = await windowsTable(page, 'tumble');
        assert.deepEqual(t.head, ['window_start', 'window_end', 'auction', 'n', 'total', 'top']);
        assert.ok(t.rows.filter((r) => r[0] === shown(last)).length === Math.min(50, lastCount), `the last window (${shown(last)}) is not all there`);
        return t;
      });
      assert.ok(got.rows.length <= 50, `${got.rows.length} rows kept`);
      for (const r of got.rows) {
        const w = byKey.get(`${r[0]}|${r[2]}`);
        assert.ok(w !== undefined, `page row ${JSON.stringify(r)} is not in the result table`);
        assert.deepEqual(r, ['window_start', 'window_end', 'auction', 'n', 'total', 'top'].map((c) => shown(w[c])));
      }
      const start = got.rows.map((r) => r[0]!);
      assert.deepEqual(start, [...start].sort().reverse(), 'newest window first');
      // numbers (int64 keys beyond 2^53 arrive as strings) right-aligned under right-aligned headers
      assert.deepEqual(await alignments(page, '[data-pipeline="tumble"] table'), [['left'], ['left'], ['right'], ['right'], ['right'], ['right']]);
      for (const t of ['#streams', '#pipelines']) {
        for (const [i, col] of (await alignments(page, t)).entries()) assert.equal(col.length, 1, `${t} column ${i}: ${col.join(', ')}`);
      }

      // a group key made of markup is shown as text
      const channels = await eventually('the markup key', async () => {
        const t = await windowsTable(page, 'by_channel');
        const rows = t.rows.filter((r) => r[2] === MARKUP);
        assert.equal(rows.length, 1);
        return rows;
      });
      assert.equal(channels[0]![3], '1');
      assert.equal(await page.evaluate('window.__injected'), undefined);
      assert.equal(await page.locator('#results img, #results b').count(), 0);

      // the counters after the flush: every window emitted, the page shows the same numbers
      const { pipelines } = await getJson(server, '/v1/pipelines') as { pipelines: Row[] };
      assert.equal(pipelines[0]!.windowsEmitted, want.length);
      await eventually('result rows after the flush', async () => {
        const p = await cells(page, '#pipelines tbody tr');
        assert.deepEqual(p.map((r) => num(r[5])), pipelines.map((x) => x.windowsEmitted));
      });

      assert.deepEqual(problems, []);

      // the server stops: the subscription says so, keeps the windows it has and tries again
      // (the polls may go on being answered over kept-alive connections of the closed server)
      await server.close();
      await eventually('subscription closed', async () => assert.equal(await page.getAttribute('[data-pipeline="tumble"]', 'data-state'), 'closed'));
      assert.match(await page.textContent('[data-pipeline="tumble"] h2') ?? '', /disconnected \(1001 server stopping\), retrying/);
      assert.equal((await windowsTable(page, 'tumble')).rows.length, got.rows.length);
      await page.close();
    } finally {
      await server.close();
    }
  });

  test('with server.auth: /?token=T works; without the token or with a wrong one the page says unauthorized', async () => {
    // characters that must be escaped in a URL
    const token = 'tok en/+&=#%?';
    const server = await testServer({ threads: 1, server: { auth: { tokens: [token] } } });
    try {
      const { page, problems } = await open(browser, `${server.url}/?token=${encodeURIComponent(token)}`);
      await eventually('status live', async () => assert.equal(await page.textContent('#status'), 'live'));
      await eventually('tumble subscribed', async () => assert.equal(await page.getAttribute('[data-pipeline="tumble"]', 'data-state'), 'open'));
      await ingest(server, 2_000, token);
      await post(server, '/v1/flush', '', 'application/json', token);
      await eventually('stream counters', async () => {
        const s = await cells(page, '#streams tbody tr');
        assert.equal(num(s[0]?.[1]), 2_001);
      });
      const want = await sqlRows(server, 'SELECT count(*) AS n FROM tumble', token);
      await eventually('windows over the subscription', async () => {
        const t = await windowsTable(page, 'tumble');
        assert.equal(t.rows.length, Math.min(50, Number(want[0]!.n)));
      });
      assert.deepEqual(problems, []);
      await page.close();

      for (const [url, why] of [[`${server.url}/`, /needs a bearer token/], [`${server.url}/?token=wrong`, /not valid/]] as const) {
        const { page: denied, problems: seen } = await open(browser, url);
        await eventually(`unauthorized message at ${url}`, async () => {
          assert.equal(await denied.textContent('#status'), 'unauthorized');
          const banner = await denied.textContent('[role=alert]') ?? '';
          assert.match(banner, /^unauthorized\b/i);
          assert.match(banner, why);
          assert.match(banner, /\?token=/);
          assert.ok(await denied.isVisible('[role=alert]'));
        });
        // it stops asking: a wrong token stays wrong until the page is opened again
        const asked = seen.length;
        await new Promise((resolve) => setTimeout(resolve, 1500));
        assert.deepEqual(seen.slice(asked), [], 'requests after the page said unauthorized');
        // no half-empty tables under the message
        assert.equal(await denied.isVisible('#streams'), false);
        assert.equal(await denied.isVisible('#pipelines'), false);
        // the only complaints: the 401 answers themselves (Chromium logs each failed load)
        const unexpected = seen.filter((p) => !/\b401\b/.test(p));
        assert.deepEqual(unexpected, []);
        await denied.close();
      }
    } finally {
      await server.close();
    }
  });
});
