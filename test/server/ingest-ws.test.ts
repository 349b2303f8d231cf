/**
 * `ws://HOST:PORT/v1/streams/{stream}/ingest` over real sockets (DESIGN.md A5): credits on open,
 * every format acknowledged in seq order with its rows (coalesced acks included), bad batches
 * nacked with their stable code while the connection keeps working, the 1008 / 1009 closes,
 * refused upgrades, and two interleaving connections. Every batch carries its own `bidder`
 * value (a marker), so the archive tells which batches landed, each exactly once and whole.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Packr } from 'msgpackr';
import WebSocket from 'ws';
import { makeSchema, type Batch, type Column } from '../../engine/schema.js';
import type { SluiceServer } from '../../server/app.js';
import { encodeArrow, encodeArrowDictionary } from '../../native-free-kernels/encode-arrow.js';
import { encodeNdjson } from '../../native-free-kernels/encode-json.js';
import { encodeMsgpackColumns, encodeMsgpackRows } from '../../native-free-kernels/encode-msgpack.js';
import { BIDS_SCHEMA, removeFreshDirs, T0 } from '../helpers/oracle.js';
import { call } from '../helpers/http.js';
import { archived, marked, summary, utf8, withServer } from '../helpers/marked.js';
import { TestSocket, within, wsUrl } from '../helpers/server.js';

after(removeFreshDirs);

const INGEST = '/v1/streams/bids/ingest';
const packr = new Packr({ useRecords: false });

// --- the client side of the protocol -----------------------------------------------------------

interface Frame {
  readonly data: Uint8Array | string;
  /** the rows an ack must report; null when the frame must be nacked */
  readonly rows: number | null;
  /** the nack's code when rows is null */
  readonly code?: string;
}

type Outcome = { ack: true } | { ack: false; code: string; message: string };

/**
 * Reads a connection's answers and checks the protocol: answers come in seq order, an ack k
 * (possibly coalesced) answers every unanswered batch up to k and its `rows` is their sum, a
 * nack answers exactly the next batch, and each message has exactly the documented keys.
 */
class Answers {
  answered = 0;
  readonly outcomes: Outcome[] = [];
  /** acks that answered more than one batch */
  coalesced = 0;

  constructor(private readonly rowsOf: (seq: number) => number | null) {}

  absorb(m: unknown, sent: number): void {
    assert.ok(typeof m === 'object' && m !== null, `answer ${JSON.stringify(m)}`);
    const msg = m as Record<string, unknown>;
    if ('ack' in msg) {
      assert.deepEqual(Object.keys(msg).sort(), 'rows' in msg ? ['ack', 'rows'] : ['ack'], JSON.stringify(msg));
      const k = msg.ack as number;
      assert.ok(Number.isInteger(k) && k > this.answered && k <= sent, `ack ${k} after ${this.answered} answered, ${sent} sent`);
      let rows = 0;
      for (let seq = this.answered + 1; seq <= k; seq++) {
        rows += this.rowsOf(seq) ?? NaN;
        this.outcomes.push({ ack: true });
      }
      if (k - this.answered > 1) this.coalesced++;
      if ('rows' in msg && !Number.isNaN(rows)) assert.equal(msg.rows, rows, `rows of ack ${k} (batches ${this.answered + 1}..${k})`);
      this.answered = k;
      return;
    }
    assert.deepEqual(Object.keys(msg).sort(), ['error', 'nack'], JSON.stringify(msg));
    assert.equal(msg.nack, this.answered + 1, `nack ${String(msg.nack)} out of order after ${this.answered} answered`);
    const error = msg.error as Record<string, unknown>;
    assert.deepEqual(Object.keys(error).sort(), ['code', 'message'], JSON.stringify(msg));
    assert.ok(typeof error.code === 'string' && typeof error.message === 'string' && error.message.length > 0, JSON.stringify(msg));
    this.outcomes.push({ ack: false, code: error.code, message: error.message });
    this.answered++;
  }
}

async function openIngest(server: SluiceServer): Promise<{ socket: TestSocket; credits: number }> {
  const socket = await TestSocket.open(wsUrl(server, INGEST));
  const hello = (await socket.next()) as Record<string, unknown>;
  assert.deepEqual(Object.keys(hello), ['credits'], JSON.stringify(hello));
  const credits = hello.credits as number;
  assert.ok(Number.isInteger(credits) && credits >= 1, JSON.stringify(hello));
  return { socket, credits };
}

function send(socket: TestSocket, data: Uint8Array | string): void {
  socket.send(typeof data === 'string' ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength));
}

/** Send every frame, never more than `credits` unanswered, and collect the outcomes. */
async function sendAll(socket: TestSocket, credits: number, frames: readonly Frame[]): Promise<Answers> {
  const answers = new Answers((seq) => frames[seq - 1]!.rows);
  let sent = 0;
  while (answers.answered < frames.length) {
    while (sent < frames.length && sent - answers.answered < credits) send(socket, frames[sent++]!.data);
    answers.absorb(await socket.next(), sent);
  }
  return answers;
}

/** Each frame's outcome as its expectation says: ack, or nack with the code. */
function assertOutcomes(frames: readonly Frame[], answers: Answers): void {
  assert.equal(answers.outcomes.length, frames.length);
  frames.forEach((f, i) => {
    const o = answers.outcomes[i]!;
    if (f.rows !== null) assert.ok(o.ack, `batch ${i + 1} should be acked, got ${JSON.stringify(o)}`);
    else assert.deepEqual(o.ack ? 'ack' : o.code, f.code, `batch ${i + 1}: ${o.ack ? '' : o.message}`);
  });
}

const ENCODERS = {
  arrow: encodeArrow,
  'arrow-dict': encodeArrowDictionary,
  'msgpack-rows': encodeMsgpackRows,
  'msgpack-cols': encodeMsgpackColumns,
  ndjson: (b: Batch): string => Buffer.from(encodeNdjson(b)).toString('utf8'),
} as const;
type Wire = keyof typeof ENCODERS;
const WIRES = Object.keys(ENCODERS) as Wire[];

// --- bad batches ---------------------------------------------------------------------------------

/** `b` re-encoded as Arrow under a changed schema: columns renamed, dropped, added or retyped. */
function arrowWith(b: Batch, edit: (fields: { name: string; col: Column }[]) => { name: string; col: Column }[]): Uint8Array {
  const fields = edit(BIDS_SCHEMA.fields.map((f, i) => ({ name: f.name, col: b.columns[i]! })));
  const schema = makeSchema(fields.map((f) => ({ name: f.name, type: f.col.type })));
  return encodeArrow({ schema, length: b.length, columns: fields.map((f) => f.col) });
}

/** Plain JS rows of a marked batch (id as decimal text, ts as ms). */
function jsRows(marker: number, n: number): Record<string, unknown>[] {
  return Array.from({ length: n }, (_, i) => ({
    id: String(9_000_000 + marker * 1000 + i), auction: i % 3, bidder: marker, price: 1.5 + i, channel: 'web', qty: i, flag: i % 2 === 0, ts: T0 + 10 * i,
  }));
}

function replaceBytes(bytes: Uint8Array, find: Uint8Array, by: Uint8Array): Uint8Array {
  const out = Uint8Array.from(bytes);
  const at = Buffer.from(out.buffer).indexOf(Buffer.from(find));
  assert.ok(at >= 0, 'pattern not found');
  out.set(by, at);
  return out;
}

// --- tests -----------------------------------------------------------------------------------------

describe('WebSocket ingest', () => {
  test('credits on open; every format acked with its rows, seqs from 1 in order; the rows land whole', async () => {
    await withServer({ server: { credits: 6 } }, async (server) => {
      const { socket, credits } = await openIngest(server);
      assert.equal(credits, 6);
      const want = new Map<string, string>();
      const frames: Frame[] = [];
      for (let k = 0; k < 40; k++) {
        // sizes from 1 to ~2000 rows, and one empty Arrow stream: a valid batch of 0 rows
        const n = k === 10 ? 0 : 1 + ((k * 389) % 2000);
        const b = marked(1000 + k, n);
        if (n > 0) want.set(String(1000 + k), summary(b));
        frames.push({ data: ENCODERS[WIRES[k % WIRES.length]!](b), rows: n });
      }
      const answers = await sendAll(socket, credits, frames);
      assertOutcomes(frames, answers);
      // with 6 batches in flight and several per worker task some acks come together; the
      // checks above (rows of a coalesced ack = the sum of its batches) rely on seeing them
      assert.ok(answers.coalesced > 0, 'no coalesced ack: the test did not exercise them');
      assert.equal(socket.messages.length, 0, `unexpected extra answers ${JSON.stringify(socket.messages)}`);

      assert.deepEqual(await archived(server), want);
      await socket.close();
    });
  });

  test('a client over its credits is closed with 1008 and SLUICE_CREDITS_EXCEEDED; the excess batch is not applied', async () => {
    await withServer({ server: { credits: 4 } }, async (server) => {
      const { socket, credits } = await openIngest(server);
      // credits + 3 batches at once: no ack can come back between them
      const frames = Array.from({ length: credits + 3 }, (_, k) => encodeArrow(marked(2000 + k, 50)));
      for (const f of frames) send(socket, f);
      const closed = await within(socket.closed, 'close');
      assert.equal(closed.code, 1008);
      assert.match(closed.reason, /^SLUICE_CREDITS_EXCEEDED: /);
      assert.ok(Buffer.byteLength(closed.reason) <= 123);
      const got = await archived(server);
      for (let k = credits; k < frames.length; k++) assert.ok(!got.has(String(2000 + k)), `batch ${k + 1} beyond the credits was applied`);
      // the batches within the credits were taken before the close: whole, if at all
      for (let k = 0; k < credits; k++) {
        const s = got.get(String(2000 + k));
        if (s !== undefined) assert.equal(s, summary(marked(2000 + k, 50)));
      }
    });
  });

  test('a client that keeps sending but never reads its answers is closed with 1008 and SLUICE_ACKS_NOT_READ, not left to lose acks', async () => {
    await withServer({ server: { credits: 1024 } }, async (server) => {
      const { socket, credits } = await openIngest(server);
      socket.ws.pause(); // the client stops reading: answers pile up in the kernel, then in uWS
      const scrape = async (): Promise<{ rejected: number; open: number }> => {
        const text = (await call(server, '/metrics')).text;
        const rejected = /^sluice_ingest_batches_rejected_total\{[^}]*code="SLUICE_BATCH_MALFORMED"[^}]*\} (\d+)$/m.exec(text);
        const open = /^sluice_ws_connections\{route="ingest"\} (\d+)$/m.exec(text);
        return { rejected: rejected === null ? 0 : Number(rejected[1]), open: open === null ? 0 : Number(open[1]) };
      };
      // within the credits at every moment: send `credits` bad batches, wait until the server
      // has answered them all (its counter), repeat; each answer is a ~150-byte nack. The paused
      // client cannot see the close, so the server's connection gauge tells when it came.
      let sent = 0;
      let closedEarly = false;
      while (!closedEarly && sent < 400_000) {
        for (let k = 0; k < credits; k++) send(socket, '{"bidder": ');
        sent += credits;
        const since = Date.now();
        for (;;) {
          assert.ok(Date.now() - since < 10_000, `the server answered no more batches after ${sent - credits}`);
          const m = await scrape();
          if (m.open === 0) closedEarly = true;
          if (closedEarly || m.rejected >= sent) break;
          await new Promise((r) => setTimeout(r, 1));
        }
      }
      assert.ok(closedEarly, `still open after ${sent} unread nacks`);
      socket.ws.resume();
      const closed = await within(socket.closed, 'close');
      assert.equal(closed.code, 1008);
      assert.match(closed.reason, /^SLUICE_ACKS_NOT_READ: /);
      // the answers sent before the close arrive in order, nothing skipped
      const answers = new Answers(() => null);
      for (const m of socket.messages) answers.absorb(m, sent);
      assert.ok(answers.answered > 1000, `${answers.answered} answers`);
      assert.ok(answers.outcomes.every((o) => !o.ack && o.code === 'SLUICE_BATCH_MALFORMED'));
      // the server serves others as before
      const other = await openIngest(server);
      const again = await sendAll(other.socket, other.credits, [{ data: encodeArrow(marked(7100, 5)), rows: 5 }]);
      assert.deepEqual(again.outcomes, [{ ack: true }]);
      await other.socket.close();
    });
  });

  test('a message over server.maxPayload is closed with 1009; one of exactly maxPayload is a batch', async () => {
    const maxPayload = 64 * 1024;
    await withServer({ server: { maxPayload } }, async (server) => {
      const { socket, credits } = await openIngest(server);
      // NDJSON padded with blank lines to exactly maxPayload bytes
      const b = marked(3000, 200);
      const text = Buffer.from(encodeNdjson(b)).toString('utf8');
      assert.ok(text.length < maxPayload);
      const exact = text + '\n'.repeat(maxPayload - Buffer.byteLength(text));
      assert.equal(Buffer.byteLength(exact), maxPayload);
      const answers = await sendAll(socket, credits, [{ data: exact, rows: 200 }]);
      assert.deepEqual(answers.outcomes, [{ ack: true }]);

      // one byte more, then a good batch right behind it: closed, and the good one not applied
      send(socket, new Uint8Array(maxPayload + 1).fill(0x90));
      send(socket, encodeArrow(marked(3001, 10)));
      const closed = await within(socket.closed, 'close');
      assert.equal(closed.code, 1009);
      assert.match(closed.reason, /^SLUICE_PAYLOAD_TOO_LARGE: message of 65537 bytes exceeds server\.maxPayload \(65536\)/);
      assert.equal(socket.messages.length, 0, `answered after the close: ${JSON.stringify(socket.messages)}`);

      // twice the limit, as text
      const second = await openIngest(server);
      send(second.socket, 'x'.repeat(2 * maxPayload));
      assert.equal((await within(second.socket.closed, 'close')).code, 1009);

      const got = await archived(server);
      assert.deepEqual(got, new Map([['3000', summary(b)]]));
    });
  });

  test('bad batches are nacked with their code, apply nothing, and the connection keeps working', async () => {
    await withServer({ server: { credits: 8 } }, async (server) => {
      const { socket, credits } = await openIngest(server);
      // good batches take markers from 4001, bad ones carry markers from 4900
      const want = new Map<string, string>();
      const good = (wire: Wire, n: number): Frame => {
        const b = marked(4001 + want.size, n);
        want.set(String(4001 + want.size), summary(b));
        return { data: ENCODERS[wire](b), rows: n };
      };
      const bad = (code: string, data: Uint8Array | string): Frame => ({ data, rows: null, code });
      const arrowOk = encodeArrow(marked(4900, 300));
      const badRows = (m: number): Record<string, unknown>[] => jsRows(m, 5);
      const ndjson = (rows: Record<string, unknown>[]): string => rows.map((r) => JSON.stringify(r)).join('\n');
      const lastRow = <T>(rows: T[], edit: (r: T) => void): T[] => {
        edit(rows[rows.length - 1]!);
        return rows;
      };
      const badUtf8 = replaceBytes(packr.pack(lastRow(badRows(4903), (r: Record<string, unknown>) => (r.channel = 'QQQQ'))), utf8.encode('QQQQ'), Uint8Array.of(0xc3, 0x28, 0xff, 0xfe));
      const frames: Frame[] = [
        good('arrow', 100),
        bad('SLUICE_BATCH_UNKNOWN_FORMAT', utf8.encode('BAD! not a batch')),
        bad('SLUICE_BATCH_UNKNOWN_FORMAT', new Uint8Array(0)),
        good('msgpack-rows', 20),
        bad('SLUICE_BATCH_MALFORMED', arrowOk.subarray(0, arrowOk.length - 100)),
        bad('SLUICE_BATCH_UNKNOWN_COLUMN', arrowWith(marked(4901, 10), (f) => [...f, { name: 'extra', col: f[5]!.col }])),
        bad('SLUICE_BATCH_TYPE_MISMATCH', arrowWith(marked(4902, 10), (f) => f.map((x) => (x.name === 'price' ? { name: 'price', col: f[4]!.col } : x)))),
        good('ndjson', 33),
        bad('SLUICE_BATCH_MISSING_COLUMN', arrowWith(marked(4904, 10), (f) => f.filter((x) => x.name !== 'qty'))),
        bad('SLUICE_BATCH_MALFORMED', encodeMsgpackRows(marked(4905, 10)).subarray(0, 200)),
        bad('SLUICE_BATCH_MISSING_COLUMN', packr.pack(Object.fromEntries(BIDS_SCHEMA.fields.filter((f) => f.name !== 'price').map((f) => [f.name, badRows(4906).map((r) => r[f.name])])))),
        bad('SLUICE_BATCH_BAD_TIMESTAMP', packr.pack(lastRow(badRows(4907), (r) => (r.ts = 'May 1 2024')))),
        good('arrow-dict', 250),
        bad('SLUICE_BATCH_MALFORMED', badUtf8),
        bad('SLUICE_BATCH_MALFORMED', `${ndjson(badRows(4908))}\n{"bidder": 4908, "ts": `),
        bad('SLUICE_BATCH_BAD_TIMESTAMP', ndjson(lastRow(badRows(4909), (r) => (r.ts = null)))),
        bad('SLUICE_BATCH_UNKNOWN_COLUMN', ndjson(lastRow(badRows(4910), (r) => (r.extra = 1)))),
        bad('SLUICE_BATCH_BAD_TIMESTAMP', encodeArrow(((b) => {
          const ts = b.columns[BIDS_SCHEMA.index.get('ts')!]!;
          if (ts.type === 'timestamp') ts.values[b.length - 1] = 9e15;
          return b;
        })(marked(4911, 10, 1)))),
        bad('SLUICE_BATCH_UNKNOWN_FORMAT', packr.pack('rows')),
        bad('SLUICE_BATCH_MALFORMED', JSON.stringify(badRows(4912))),
        bad('SLUICE_BATCH_TYPE_MISMATCH', ndjson(lastRow(badRows(4913), (r) => (r.price = '1.5')))),
        good('msgpack-cols', 77),
        good('ndjson', 1),
      ];
      const answers = await sendAll(socket, credits, frames);
      assertOutcomes(frames, answers);
      // the nack names what is wrong
      const nackOf = (i: number): string => (answers.outcomes[i] as { message: string }).message;
      assert.match(nackOf(8), /lacks column 'qty'/);
      assert.match(nackOf(11), /May 1 2024/);

      // the rows of the good batches, each once and whole; no marker of a bad one
      assert.deepEqual(await archived(server), want);
      await socket.close();
    });
  });

  test('an unknown stream is refused at the upgrade with 404 and the error JSON', async () => {
    await withServer({}, async (server) => {
      const res = await new Promise<{ status: number; type: string; body: string }>((resolve, reject) => {
        const ws = new WebSocket(wsUrl(server, '/v1/streams/asks/ingest'));
        ws.on('unexpected-response', (_req, r) => {
          let body = '';
          r.on('data', (d: Buffer) => (body += d.toString('utf8')));
          r.on('end', () => resolve({ status: r.statusCode ?? 0, type: String(r.headers['content-type']), body }));
        });
        ws.on('open', () => reject(new Error('the upgrade was accepted')));
        ws.on('error', () => undefined);
      });
      assert.equal(res.status, 404);
      assert.equal(res.type, 'application/json');
      const body = JSON.parse(res.body) as { error: Record<string, unknown> };
      assert.deepEqual(Object.keys(body), ['error']);
      assert.deepEqual(Object.keys(body.error), ['code', 'message']);
      assert.equal(body.error.code, 'SLUICE_UNKNOWN_STREAM');
      await assert.rejects(TestSocket.open(wsUrl(server, '/v1/streams/bids%2F..%2Fx/ingest')), /upgrade refused: 404/);
    });
  });

  test('two connections interleaving: seqs per connection from 1, every batch lands once', async () => {
    await withServer({ server: { credits: 3 } }, async (server) => {
      const a = await openIngest(server);
      const b = await openIngest(server);
      const want = new Map<string, string>();
      const framesFor = (base: number): Frame[] => Array.from({ length: 30 }, (_, k) => {
        const x = marked(base + k, 1 + ((k * 97) % 500));
        want.set(String(base + k), summary(x));
        return { data: ENCODERS[WIRES[(k + base) % WIRES.length]!](x), rows: x.length };
      });
      const fa = framesFor(5000);
      const fb = framesFor(6000);
      // both send at once, each paced by its own credits: the batches interleave at the server
      const [ra, rb] = await Promise.all([sendAll(a.socket, a.credits, fa), sendAll(b.socket, b.credits, fb)]);
      assertOutcomes(fa, ra);
      assertOutcomes(fb, rb);
      assert.deepEqual(await archived(server), want);
      await Promise.all([a.socket.close(), b.socket.close()]);
    });
  });

  test('a text message that is not UTF-8 fails only its connection (RFC 6455); answered batches stay', async () => {
    await withServer({}, async (server) => {
      const { socket, credits } = await openIngest(server);
      const b = marked(7000, 40);
      const answers = await sendAll(socket, credits, [{ data: encodeArrow(b), rows: 40 }]);
      assert.deepEqual(answers.outcomes, [{ ack: true }]);
      socket.ws.send(Buffer.concat([Buffer.from(`{"bidder": 7001, "ts": ${T0}, "channel": "`), Buffer.from([0xff, 0xfe]), Buffer.from('"}')]), { binary: false });
      const closed = await within(socket.closed, 'close');
      assert.notEqual(closed.code, 1000);
      // another connection is served as before
      const other = await openIngest(server);
      const again = await sendAll(other.socket, other.credits, [{ data: encodeArrow(marked(7002, 5)), rows: 5 }]);
      assert.deepEqual(again.outcomes, [{ ack: true }]);
      assert.deepEqual(await archived(server), new Map([['7000', summary(b)], ['7002', summary(marked(7002, 5))]]));
      await other.socket.close();
    });
  });
});
