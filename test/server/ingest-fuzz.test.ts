/**
 * Seeded fuzzing of the ingest routes over real sockets (DESIGN.md A4, A5, A6): 10,000
 * WebSocket frames on four connections and 1,000 HTTP requests mixing valid batches with random
 * bytes, truncated and bit-flipped batches, Arrow of the wrong schema, Arrow and MessagePack
 * declaring huge lengths (2^31 and more), invalid UTF-8, empty messages and oversized ones.
 *
 * Each frame's expected outcome is the decoders' verdict on exactly the bytes sent
 * (decodeBatch, what the workers run): the server must ack it with those rows or nack it with
 * that code — exactly once, in order — so a mutated batch that is still valid counts as valid.
 * At the end the server is healthy, its memory bounded, every connection it closed was closed
 * for a documented reason, and the archive holds every acknowledged row exactly once (a
 * multiset of id, bidder, qty, channel and event time) and nothing else. Pristine batches carry
 * their own bidder value and must all be acknowledged.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { SluiceError, allErrorDefs } from '../../engine/errors.js';
import { int64ToString, sliceBatch, type Batch, type Column } from '../../engine/schema.js';
import type { SluiceServer } from '../../server/app.js';
import { decodeBatch, detectBinaryFormat, type BatchFormat } from '../../native-free-kernels/decode.js';
import { encodeArrow, encodeArrowDictionary } from '../../native-free-kernels/encode-arrow.js';
import { encodeJson, encodeNdjson } from '../../native-free-kernels/encode-json.js';
import { encodeMsgpackColumns, encodeMsgpackRows } from '../../native-free-kernels/encode-msgpack.js';
import { BIDS_SCHEMA, makeEvents, removeFreshDirs } from '../helpers/oracle.js';
import { mulberry32, type Rng } from '../helpers/random.js';
import { testServer, TestSocket, within, wsUrl } from '../helpers/server.js';

after(removeFreshDirs);

const SEED = 20_261_121;
const WS_FRAMES = 10_000;
const CONNECTIONS = 4;
const HTTP_REQUESTS = 1_000;
const MAX_PAYLOAD = 64 * 1024;
const CREDITS = 32;
const INGEST = '/v1/streams/bids/ingest';
const TS = BIDS_SCHEMA.index.get('ts')!;
const COL = (name: string): number => BIDS_SCHEMA.index.get(name)!;
const utf8 = new TextEncoder();

// --- what a frame must do ---------------------------------------------------------------------

type Expect = { ok: true; rows: number; keys: string[] } | { ok: false; code: string };

interface Frame {
  readonly kind: string;
  readonly bytes: Uint8Array;
  /** a WebSocket text message (NDJSON) */
  readonly text: boolean;
  /** HTTP only: the Content-Type sent */
  readonly type?: string;
  readonly expect: Expect;
  /** over maxPayload: WebSocket close 1009, HTTP 413 */
  readonly oversize: boolean;
}

/** id | bidder | qty | channel | event time of each row: the archive query's columns. */
function keysOf(b: Batch): string[] {
  const text = (c: Column, i: number): string => {
    if (c.valid !== null && c.valid[i] === 0) return 'null';
    switch (c.type) {
      case 'int64': return int64ToString(c.words[2 * i]!, c.words[2 * i + 1]!);
      case 'string': return c.dict[c.codes[i]!]!;
      case 'int32':
      case 'timestamp': return String(c.values[i]!);
      default: return String(c.values[i]);
    }
  };
  const cols = ['id', 'bidder', 'qty', 'channel', 'ts'].map((n) => b.columns[COL(n)]!);
  const out: string[] = [];
  for (let i = 0; i < b.length; i++) out.push(cols.map((c) => text(c, i)).join('|'));
  return out;
}

/** The decoders' verdict on exactly these bytes, as the server's workers decode them. */
function verdict(bytes: Uint8Array, format: BatchFormat | 'binary'): Expect {
  try {
    const fmt = format === 'binary' ? detectBinaryFormat(bytes) : format;
    const b = decodeBatch(bytes, fmt, BIDS_SCHEMA, { eventTime: TS });
    return { ok: true, rows: b.length, keys: keysOf(b) };
  } catch (err) {
    if (err instanceof SluiceError) return { ok: false, code: err.code };
    throw err;
  }
}

// --- frame generation ---------------------------------------------------------------------------

const WIRES = ['arrow', 'arrow-dict', 'msgpack-rows', 'msgpack-cols', 'ndjson'] as const;
type Wire = (typeof WIRES)[number];
const BINARY_WIRES = WIRES.filter((w) => w !== 'ndjson');
const ENCODE: Record<Wire | 'json', (b: Batch) => Uint8Array> = {
  arrow: encodeArrow, 'arrow-dict': encodeArrowDictionary, 'msgpack-rows': encodeMsgpackRows, 'msgpack-cols': encodeMsgpackColumns, ndjson: encodeNdjson, json: encodeJson,
};
const CONTENT_TYPE: Record<Wire | 'json', string> = {
  arrow: 'application/vnd.apache.arrow.stream', 'arrow-dict': 'application/vnd.apache.arrow.stream; charset=binary',
  'msgpack-rows': 'application/msgpack', 'msgpack-cols': 'application/x-msgpack', ndjson: 'application/x-ndjson; charset=utf-8', json: 'application/json',
};
const FORMAT_OF: Record<Wire | 'json', BatchFormat> = {
  arrow: 'arrow', 'arrow-dict': 'arrow', 'msgpack-rows': 'msgpack', 'msgpack-cols': 'msgpack', ndjson: 'ndjson', json: 'json',
};
const PLACEHOLDER = 'QQQQ';

/** Seeded events handed out in slices, each with its own bidder value (a marker). */
class Source {
  private readonly events = makeEvents({ seed: SEED, n: 200_000, step: 3, disorder: 200 });
  private at = 0;
  private marker = 1_000_000;

  take(n: number, placeholder = false): Batch {
    if (this.at + n > this.events.length) this.at = 0;
    const slice = sliceBatch(this.events, this.at, this.at + n);
    this.at += n;
    const words = new Int32Array(2 * n);
    const m = this.marker++;
    for (let i = 0; i < n; i++) words[2 * i] = m;
    // a channel that holds the placeholder in row 0, where an invalid byte sequence goes
    const channel: Column = { type: 'string', codes: Int32Array.from({ length: n }, (_, i) => (i === 0 ? 0 : i % 2)), dict: [PLACEHOLDER, 'web'], valid: null };
    return { ...slice, columns: slice.columns.map((c, i) => (i === COL('bidder') ? { type: 'int64', words, valid: null } : placeholder && i === COL('channel') ? channel : c)) };
  }
}

const pick = <T>(rng: Rng, xs: readonly T[]): T => xs[Math.floor(rng() * xs.length)]!;
const int = (rng: Rng, lo: number, hi: number): number => lo + Math.floor(rng() * (hi - lo + 1));

function randomBytes(rng: Rng, n: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = Math.floor(rng() * 256);
  return b;
}

function splice(bytes: Uint8Array, at: number, remove: number, insert: ArrayLike<number>): Uint8Array {
  const out = new Uint8Array(bytes.length - remove + insert.length);
  out.set(bytes.subarray(0, at));
  out.set(insert, at);
  out.set(bytes.subarray(at + remove), at + insert.length);
  return out;
}

function indexOf(bytes: Uint8Array, pattern: Uint8Array): number {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).indexOf(Buffer.from(pattern));
}

/** Flip 1–4 bits; in text only the low 7 bits of ASCII bytes, so the text stays UTF-8. */
function flipBits(rng: Rng, bytes: Uint8Array, text: boolean): Uint8Array {
  const out = bytes.slice();
  const flips = int(rng, 1, 4);
  for (let k = 0; k < flips; k++) {
    const i = Math.floor(rng() * out.length);
    if (text && out[i]! >= 0x80) continue;
    out[i]! ^= 1 << Math.floor(rng() * (text ? 7 : 8));
  }
  return out;
}

/** Arrow with a lying length: a metadata size, the row count, a buffer length or the body length. */
function hugeArrow(rng: Rng, bytes: Uint8Array, rows: number): Uint8Array {
  const out = bytes.slice();
  const view = new DataView(out.buffer);
  const schemaMeta = view.getInt32(4, true);
  const rb = 8 + schemaMeta; // the record batch message follows the schema (no body)
  const rbMeta = view.getInt32(rb + 4, true);
  if (rng() < 0.25) {
    view.setInt32(pick(rng, [4, rb + 4]), pick(rng, [0x7fffffff, -0x80000000, 0x40000000]), true);
    return out;
  }
  const bodyLength = out.length - 8 - (rb + 8 + rbMeta);
  const wanted = new Set([BigInt(rows), BigInt(rows * 8), BigInt(bodyLength)]);
  const candidates: number[] = [];
  for (let o = rb + 8; o + 8 <= rb + 8 + rbMeta; o++) if (wanted.has(view.getBigInt64(o, true))) candidates.push(o);
  const at = candidates.length > 0 ? pick(rng, candidates) : rb + 8 + Math.floor(rng() * (rbMeta - 8));
  view.setBigInt64(at, pick(rng, [2n ** 31n, 2n ** 31n - 1n, 2n ** 32n + BigInt(rows), 2n ** 62n, -1n]), true);
  return out;
}

/** MessagePack declaring 2^31 (or more) array elements, map entries or string bytes. */
function hugeMsgpack(rng: Rng, rowsForm: Uint8Array, colsForm: Uint8Array): Uint8Array {
  const big = pick(rng, [[0x80, 0, 0, 0], [0x7f, 0xff, 0xff, 0xff], [0xff, 0xff, 0xff, 0xff]]);
  switch (int(rng, 0, 3)) {
    case 0: // the rows array (a fixarray of ≤ 15 rows) as array 32
      return splice(rowsForm, 0, 1, [0xdd, ...big]);
    case 1: // the first row map (msgpackr writes map 16) as map 32
      assert.equal(rowsForm[1], 0xde);
      return splice(rowsForm, 1, 3, [0xdf, ...big]);
    case 2: { // the first column's array (a fixarray after the key "id") as array 32
      const at = indexOf(colsForm, Uint8Array.of(0xa2, 0x69, 0x64)) + 3;
      assert.equal(colsForm[at]! & 0xf0, 0x90);
      return splice(colsForm, at, 1, [0xdd, ...big]);
    }
    default: { // the placeholder string as str 32 / bin 32 of a huge length
      const at = indexOf(rowsForm, utf8.encode(PLACEHOLDER)) - 1;
      assert.equal(rowsForm[at], 0xa0 | PLACEHOLDER.length);
      return splice(rowsForm, at, 1, [pick(rng, [0xdb, 0xc6]), ...big]);
    }
  }
}

/** The placeholder string's bytes replaced by an invalid UTF-8 sequence of the same length. */
function badUtf8(rng: Rng, bytes: Uint8Array): Uint8Array {
  const at = indexOf(bytes, utf8.encode(PLACEHOLDER));
  assert.ok(at >= 0);
  const out = bytes.slice();
  out.set(pick(rng, [[0xff, 0xfe, 0xfd, 0xfc], [0xc3, 0x28, 0x41, 0x41], [0xe2, 0x82, 0x41, 0x41], [0xed, 0xa0, 0x80, 0x41], [0xf8, 0x88, 0x80, 0x80]]), at);
  return out;
}

function arrowWithSchema(rng: Rng, b: Batch): Uint8Array {
  let fields = BIDS_SCHEMA.fields.map((f, i) => ({ name: f.name, col: b.columns[i]! }));
  switch (int(rng, 0, 4)) {
    case 0: fields.push({ name: 'extra', col: fields[COL('qty')]!.col }); break;
    case 1: fields = fields.filter((f) => f.name !== pick(rng, ['id', 'price', 'ts', 'channel'])); break;
    case 2: fields = fields.map((f) => (f.name === 'price' ? { name: 'price', col: fields[COL('channel')]!.col } : f)); break;
    case 3: fields = fields.map((f) => (f.name === 'qty' ? { name: 'QTY', col: f.col } : f)); break;
    default: fields.push({ name: 'qty', col: fields[COL('qty')]!.col }); break;
  }
  // not makeSchema: it refuses the duplicate name that case 4 is about (the encoder only reads `fields`)
  const schema = { fields: fields.map((f) => ({ name: f.name, type: f.col.type })), index: new Map<string, number>() };
  return encodeArrow({ schema, length: b.length, columns: fields.map((f) => f.col) });
}

const JSON_KEYS = ['id', 'auction', 'bidder', 'price', 'channel', 'qty', 'flag', 'ts', 'extra', ''];
const JSON_VALUES = ['1', '-1', '1.5', '"x"', 'null', 'true', '[]', '{}', '"2024-05-01T12:00:00Z"', '1700000000000', '"9007199254740993"', '1e400', '"\\u0000"', '"\\ud800"'];

/** NDJSON-looking ASCII: objects with schema keys and values of any type, and plain junk. */
function junkNdjson(rng: Rng): Uint8Array {
  const lines: string[] = [];
  for (let l = int(rng, 0, 4); l > 0; l--) {
    if (rng() < 0.2) {
      lines.push(Array.from({ length: int(rng, 0, 20) }, () => String.fromCharCode(int(rng, 0x20, 0x7e))).join(''));
      continue;
    }
    const pairs = Array.from({ length: int(rng, 0, 4) }, () => `"${pick(rng, JSON_KEYS)}": ${pick(rng, JSON_VALUES)}`);
    if (rng() < 0.7) pairs.push(`"ts": ${int(rng, 0, 2_000_000_000_000)}`);
    lines.push(`{${pairs.join(', ')}}`);
  }
  return utf8.encode(lines.join(pick(rng, ['\n', '\r\n', '\n\n'])));
}

/** One random frame: `http` also makes JSON arrays, mislabelled and unknown content types. */
function makeFrame(rng: Rng, src: Source, http: boolean): Frame {
  const wire = (): Wire => pick(rng, WIRES);
  const r = rng();
  const frame = (kind: string, bytes: Uint8Array, format: Wire | 'json' | 'binary', expect?: Expect): Frame => {
    const text = !http && format === 'ndjson';
    const type = http ? (format === 'binary' ? pick(rng, Object.values(CONTENT_TYPE)) : CONTENT_TYPE[format]) : undefined;
    const decodeAs: BatchFormat | 'binary' = http ? FORMAT_OF[(Object.keys(CONTENT_TYPE) as (Wire | 'json')[]).find((w) => CONTENT_TYPE[w] === type)!] : text ? 'ndjson' : 'binary';
    const oversize = bytes.length > MAX_PAYLOAD;
    return { kind, bytes, text, type, oversize, expect: oversize ? { ok: false, code: 'SLUICE_PAYLOAD_TOO_LARGE' } : expect ?? verdict(bytes, decodeAs) };
  };
  const rows = (): number => int(rng, 1, 15);
  if (r < 0.35) {
    const w = http ? pick(rng, [...WIRES, 'json'] as const) : wire();
    const b = src.take(rows());
    const f = frame(`valid: ${w}`, ENCODE[w](b), w);
    // the decoders agree with the source: a pristine batch is valid and carries its rows
    assert.deepEqual(f.expect, { ok: true, rows: b.length, keys: keysOf(b) }, f.kind);
    return f;
  }
  if (r < 0.55) {
    const w = http ? pick(rng, [...WIRES, 'json'] as const) : wire();
    const text = !http && w === 'ndjson';
    return frame(`bit-flipped: ${w}`, flipBits(rng, ENCODE[w](src.take(rows())), text), w);
  }
  if (r < 0.62) {
    const w = pick(rng, BINARY_WIRES);
    const bytes = ENCODE[w](src.take(rows()));
    return frame(`truncated: ${w}`, bytes.subarray(0, int(rng, 1, bytes.length - 1)), w);
  }
  if (r < 0.69) {
    const bytes = randomBytes(rng, int(rng, 0, 300));
    if (bytes.length >= 4 && rng() < 0.6) bytes.set(pick(rng, [[0xff, 0xff, 0xff, 0xff], [0x93], [0x88], [0xdc, 0, 3], [0xdd, 0, 0, 0], [0xde, 0, 1], [0xdf, 0, 0, 0]]));
    return frame('random bytes:', bytes, http ? 'binary' : pick(rng, BINARY_WIRES));
  }
  if (r < 0.74) return frame('another schema: arrow', arrowWithSchema(rng, src.take(rows())), 'arrow');
  if (r < 0.82) {
    if (rng() < 0.5) {
      const b = src.take(rows());
      return frame('huge length: arrow', hugeArrow(rng, encodeArrow(b), b.length), 'arrow');
    }
    const b = src.take(rows(), true);
    return frame('huge length: msgpack', hugeMsgpack(rng, encodeMsgpackRows(b), encodeMsgpackColumns(b)), 'msgpack-rows');
  }
  if (r < 0.87) {
    // text frames must be UTF-8 (RFC 6455: uWS fails the connection): NDJSON only over HTTP
    const w = http ? pick(rng, [...WIRES, 'json'] as const) : pick(rng, BINARY_WIRES);
    return frame(`invalid UTF-8: ${w}`, badUtf8(rng, ENCODE[w](src.take(rows(), true))), w);
  }
  if (r < 0.9) {
    const w = http ? pick(rng, ['ndjson', 'json', 'arrow', 'msgpack-rows'] as const) : pick(rng, ['ndjson', 'arrow'] as const);
    return frame(`empty: ${w}`, new Uint8Array(0), w);
  }
  if (r < 0.96) return frame('junk NDJSON:', junkNdjson(rng), http && rng() < 0.3 ? 'json' : 'ndjson');
  if (http && r < 0.985) {
    // a valid batch under the wrong Content-Type, or under one that is not a batch format
    const w = wire();
    const bytes = ENCODE[w](src.take(rows()));
    if (rng() < 0.5) return { kind: 'unknown content type:', bytes, text: false, type: pick(rng, ['text/csv', 'application/octet-stream', 'application/arrow']), oversize: false, expect: { ok: false, code: 'SLUICE_UNSUPPORTED_MEDIA_TYPE' } };
    return frame(`another content type: ${w}`, bytes, 'binary');
  }
  if (r < 0.997) {
    const w = wire();
    return frame(`valid: ${w}`, ENCODE[w](src.take(rows())), w);
  }
  // over maxPayload (as text on WebSocket: it must still be UTF-8)
  const size = int(rng, MAX_PAYLOAD + 1, 2 * MAX_PAYLOAD);
  return frame('over maxPayload:', http ? randomBytes(rng, size) : utf8.encode('x'.repeat(size)), http ? 'binary' : 'ndjson');
}

// --- driving a WebSocket connection -----------------------------------------------------------------

type Outcome = { ack: true } | { ack: false; code: string } | { closed: number };

interface Tally {
  /** per frame index */
  readonly outcomes: (Outcome | undefined)[];
  readonly problems: string[];
  answers: number;
  reconnects: number;
}

async function openIngest(server: SluiceServer): Promise<TestSocket> {
  const socket = await TestSocket.open(wsUrl(server, INGEST));
  assert.deepEqual(await socket.next(), { credits: CREDITS });
  return socket;
}

/**
 * Send `frames` (indexes `first`.. of the tally) over one connection, at most CREDITS
 * unanswered, checking every answer against the protocol as it arrives. Before an oversized
 * frame it waits for every answer, so the 1009 close leaves nothing unanswered; then it opens
 * a new connection and goes on.
 */
async function drive(server: SluiceServer, frames: readonly Frame[], first: number, tally: Tally): Promise<void> {
  let socket = await openIngest(server);
  let sentIdx: number[] = []; // frame index of seq k at k - 1
  let answered = 0;
  const absorb = async (): Promise<void> => {
    const m = await within(Promise.race([socket.next(20_000), socket.closed.then((c) => ({ unexpectedClose: c }))]), 'answer', 20_000);
    const msg = m as Record<string, unknown>;
    if ('unexpectedClose' in msg) throw new Error(`the server closed the connection: ${JSON.stringify(msg.unexpectedClose)} after frame ${sentIdx[answered]} (${frames[sentIdx[answered]! - first]?.kind})`);
    tally.answers++;
    if (typeof msg.ack === 'number') {
      const k = msg.ack;
      if (!(k > answered && k <= sentIdx.length)) throw new Error(`ack ${k} after ${answered} answered, ${sentIdx.length} sent`);
      let rows = 0;
      for (let seq = answered + 1; seq <= k; seq++) {
        const i = sentIdx[seq - 1]!;
        if (tally.outcomes[i] !== undefined) tally.problems.push(`frame ${i} answered twice`);
        tally.outcomes[i] = { ack: true };
        const e = frames[i - first]!.expect;
        rows += e.ok ? e.rows : NaN;
      }
      if (!Number.isNaN(rows) && msg.rows !== rows) tally.problems.push(`ack ${k}: rows ${String(msg.rows)}, the batches hold ${rows}`);
      answered = k;
      return;
    }
    if (typeof msg.nack !== 'number' || msg.nack !== answered + 1) throw new Error(`answer ${JSON.stringify(msg)} after ${answered} answered`);
    const i = sentIdx[answered]!;
    if (tally.outcomes[i] !== undefined) tally.problems.push(`frame ${i} answered twice`);
    tally.outcomes[i] = { ack: false, code: (msg.error as { code: string }).code };
    answered++;
  };
  const send = (f: Frame): void => socket.ws.send(Buffer.from(f.bytes.buffer, f.bytes.byteOffset, f.bytes.byteLength), { binary: !f.text });

  for (let j = 0; j < frames.length; j++) {
    const f = frames[j]!;
    if (f.oversize) {
      while (answered < sentIdx.length) await absorb();
      send(f);
      const closed = await within(socket.closed, 'close after an oversized message', 20_000);
      if (closed.code !== 1009 || !closed.reason.startsWith('SLUICE_PAYLOAD_TOO_LARGE: ')) tally.problems.push(`oversized frame ${first + j}: close ${closed.code} ${closed.reason}`);
      tally.outcomes[first + j] = { closed: closed.code };
      if (socket.messages.length > 0) tally.problems.push(`answers after the close: ${JSON.stringify(socket.messages)}`);
      socket = await openIngest(server);
      sentIdx = [];
      answered = 0;
      tally.reconnects++;
      continue;
    }
    while (sentIdx.length - answered >= CREDITS) await absorb();
    sentIdx.push(first + j);
    send(f);
  }
  while (answered < sentIdx.length) await absorb();
  // nothing more may come (a duplicate answer would arrive by now)
  await new Promise((resolve) => setTimeout(resolve, 100));
  if (socket.messages.length > 0) tally.problems.push(`unexpected answers: ${JSON.stringify(socket.messages.slice(0, 3))}`);
  const closed = await within(socket.close(), 'close', 20_000);
  if (closed.code !== 1000) tally.problems.push(`close ${closed.code} ${closed.reason}`);
}

// --- HTTP -------------------------------------------------------------------------------------------

async function postFrame(server: SluiceServer, f: Frame): Promise<Outcome & { rows?: number }> {
  for (;;) {
    const res = await fetch(`${server.url}${INGEST}`, { method: 'POST', headers: { 'content-type': f.type! }, body: f.bytes });
    const body = (await res.json()) as { rows?: number; error?: { code: string; message: string } };
    if (res.status === 503) {
      await new Promise((resolve) => setTimeout(resolve, 20));
      continue;
    }
    if (res.status === 200) return { ack: true, rows: body.rows! };
    const code = body.error?.code ?? `(no code, status ${res.status})`;
    const status = allErrorDefs().find((d) => d.code === code)?.status;
    if (status !== res.status || Object.keys(body).join() !== 'error' || Object.keys(body.error!).join() !== 'code,message') {
      return { ack: false, code: `${code} with status ${res.status}: ${JSON.stringify(body)}` };
    }
    return { ack: false, code };
  }
}

// --- the test -----------------------------------------------------------------------------------------

describe('ingest fuzzing', () => {
  test(`${WS_FRAMES} WebSocket frames and ${HTTP_REQUESTS} HTTP requests: each answered exactly once as the decoders say, acknowledged rows exactly once`, async (ctx) => {
    const server = await testServer({ archive: true, threads: 1, server: { maxPayload: MAX_PAYLOAD, credits: CREDITS } });
    try {
      const started = Date.now();
      const src = new Source();
      const wsFrames: Frame[] = [];
      for (let c = 0; c < CONNECTIONS; c++) {
        const rng = mulberry32(SEED + c);
        for (let k = 0; k < WS_FRAMES / CONNECTIONS; k++) wsFrames.push(makeFrame(rng, src, false));
      }
      const httpRng = mulberry32(SEED + 100);
      const httpFrames = Array.from({ length: HTTP_REQUESTS }, () => makeFrame(httpRng, src, true));
      const generated = Date.now() - started;

      const rss0 = process.memoryUsage().rss;
      let rssMax = rss0;
      const sampler = setInterval(() => (rssMax = Math.max(rssMax, process.memoryUsage().rss)), 20);
      const tally: Tally = { outcomes: new Array<Outcome | undefined>(wsFrames.length), problems: [], answers: 0, reconnects: 0 };
      const httpOutcomes = new Array<(Outcome & { rows?: number }) | undefined>(httpFrames.length);
      const per = WS_FRAMES / CONNECTIONS;
      let nextHttp = 0;
      const httpClient = async (): Promise<void> => {
        while (nextHttp < httpFrames.length) {
          const i = nextHttp++;
          httpOutcomes[i] = await postFrame(server, httpFrames[i]!);
        }
      };
      await Promise.all([
        ...Array.from({ length: CONNECTIONS }, (_, c) => drive(server, wsFrames.slice(c * per, (c + 1) * per), c * per, tally)),
        httpClient(), httpClient(),
      ]);
      clearInterval(sampler);
      const sent = Date.now() - started;

      // every frame answered as the decoders say (an oversized one by the 1009 close / 413)
      const mismatches: string[] = [...tally.problems];
      const check = (where: string, f: Frame, o: (Outcome & { rows?: number }) | undefined): void => {
        const want = f.oversize && !f.type ? 'closed 1009' : f.expect.ok ? `ack ${f.expect.rows}` : `nack ${f.expect.code}`;
        const got = o === undefined ? 'no answer' : 'closed' in o ? `closed ${o.closed}` : o.ack ? `ack ${f.type ? o.rows : f.expect.ok ? f.expect.rows : '?'}` : `nack ${o.code}`;
        if (want !== got) mismatches.push(`${where} (${f.kind}): expected ${want}, got ${got}`);
      };
      wsFrames.forEach((f, i) => check(`ws frame ${i}`, f, tally.outcomes[i]));
      httpFrames.forEach((f, i) => check(`http request ${i}`, f, httpOutcomes[i]));
      assert.deepEqual(mismatches.slice(0, 10), [], `${mismatches.length} mismatches`);

      // the archive: every acknowledged row exactly once, nothing else
      await server.engine.checkpoint();
      const { rows } = await server.engine.query(
        `SELECT coalesce(id::VARCHAR, 'null') || '|' || coalesce(bidder::VARCHAR, 'null') || '|' || coalesce(qty::VARCHAR, 'null') || '|' ||
                coalesce(channel, 'null') || '|' || epoch_ms(ts)::VARCHAR FROM bids`);
      const count = new Map<string, number>();
      const add = (k: string, d: number): void => {
        const n = (count.get(k) ?? 0) + d;
        if (n === 0) count.delete(k);
        else count.set(k, n);
      };
      for (const r of rows) add(String(r[0]), 1);
      let ackedRows = 0;
      for (const f of [...wsFrames, ...httpFrames]) {
        if (!f.expect.ok || f.oversize) continue;
        ackedRows += f.expect.rows;
        for (const k of f.expect.keys) add(k, -1);
      }
      const diff = [...count].slice(0, 5).map(([k, n]) => `${n > 0 ? 'extra' : 'missing'} ×${Math.abs(n)}: ${k}`);
      assert.deepEqual(diff, [], `archive has ${rows.length} rows, the acknowledged frames ${ackedRows}`);

      const health = await fetch(`${server.url}/healthz`);
      assert.equal(health.status, 200);
      const kinds = new Map<string, number>();
      for (const f of [...wsFrames, ...httpFrames]) kinds.set(f.kind.split(':')[0]!, (kinds.get(f.kind.split(':')[0]!) ?? 0) + 1);
      const acked = [...wsFrames, ...httpFrames].filter((f) => f.expect.ok && !f.oversize).length;
      ctx.diagnostic(`${wsFrames.length} WS frames (${tally.answers} answer messages, ${tally.reconnects} closes with 1009) and ${httpFrames.length} HTTP requests; ` +
        `${acked} acknowledged with ${ackedRows} rows; generated in ${generated} ms, sent and answered in ${sent - generated} ms; RSS +${Math.round((rssMax - rss0) / 2 ** 20)} MiB`);
      ctx.diagnostic(`frames: ${[...kinds].map(([k, n]) => `${k} ${n}`).join(', ')}`);
      assert.ok(tally.reconnects > 0, 'no oversized WebSocket frame was sent');
      assert.ok(rssMax - rss0 < 300 * 2 ** 20, `RSS grew by ${Math.round((rssMax - rss0) / 2 ** 20)} MiB`);
    } finally {
      await server.close();
    }
  });
});
