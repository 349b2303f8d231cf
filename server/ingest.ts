/**
 * Ingest routes (DESIGN.md A4, A5): `POST /v1/streams/{stream}/ingest` and the WebSocket of the
 * same path.
 *
 * WebSocket protocol, per connection:
 *
 *   open            → {"credits": N}
 *   batch k (seq k) → {"ack": k, "rows": n}          in seq order, once the engine accepted it
 *                   → {"nack": k, "error": {...}}    a rejected batch; nothing of it applied
 *   acks of batches that complete together are coalesced: {"ack": k, "rows": total} answers
 *   every batch up to k that is not answered yet, `rows` summing them.
 *
 *   a batch while N are unanswered    → close 1008 (SLUICE_CREDITS_EXCEEDED)
 *   a message over server.maxPayload  → close 1009 (SLUICE_PAYLOAD_TOO_LARGE)
 *
 * Backpressure: a batch is copied straight from uWS's buffer into the engine's slab arena
 * (tryIngest). When the arena is full it is copied once onto the heap and waits in line
 * (engine.ingest keeps call order); its ack, and so the client's next credit, comes only when
 * the engine took it. A connection therefore holds at most `credits` batches of memory, and
 * clients that outrun the engine simply stop getting credits. An HTTP body waits in the same
 * line once read; HTTP bodies together hold at most workers.queue bytes, and a request past
 * that is answered 503 SLUICE_OVERLOADED (Retry-After) before its body is read. (WebSocket
 * batches waiting on the heap are bounded per connection only: credits × maxPayload.)
 */

import type { HttpRequest, HttpResponse, us_socket_context_t, WebSocket, WebSocketBehavior } from 'uWebSockets.js';
import { asSluiceError, sluiceError, type SluiceError } from '../engine/errors.js';
import type { IngestFormat, IngestResult } from '../engine/runtime.js';
import { unknownStream, type ServerContext } from './context.js';
import { mediaType, readBody, Reply, requestInfo } from './http.js';

/** Content-Type → batch format of the HTTP ingest route (A4), with common aliases. */
const CONTENT_TYPES: Readonly<Record<string, IngestFormat>> = {
  'application/vnd.apache.arrow.stream': 'arrow',
  'application/msgpack': 'msgpack',
  'application/x-msgpack': 'msgpack',
  'application/vnd.msgpack': 'msgpack',
  'application/x-ndjson': 'ndjson',
  'application/ndjson': 'ndjson',
  'application/jsonl': 'ndjson',
  'application/json': 'json',
};

/** The largest close reason a WebSocket close frame carries (125 bytes minus the code). */
const MAX_REASON = 123;

export function closeReason(err: SluiceError): string {
  const text = `${err.code}: ${err.message}`;
  const bytes = Buffer.from(text, 'utf8');
  if (bytes.length <= MAX_REASON) return text;
  // cut on a character boundary
  let cut = MAX_REASON - 3;
  while (cut > 0 && (bytes[cut]! & 0xc0) === 0x80) cut--;
  return `${bytes.subarray(0, cut).toString('utf8')}...`;
}

// --- HTTP ------------------------------------------------------------------------------------

export function httpIngest(ctx: ServerContext): (res: HttpResponse, req: HttpRequest) => void {
  return (res, req) => {
    const reply = new Reply(res);
    const info = requestInfo(req);
    const stream = req.getParameter(0);
    const denied = ctx.auth.checkRequest(req);
    if (denied !== null) {
      reply.error(denied, true);
      return;
    }
    const unknown = unknownStream(ctx, stream);
    if (unknown !== null) {
      reply.error(unknown, true);
      return;
    }
    const type = mediaType(info.contentType);
    const format = Object.hasOwn(CONTENT_TYPES, type) ? CONTENT_TYPES[type]! : null;
    if (format === null) {
      rejected(ctx, reply, stream, sluiceError('UNSUPPORTED_MEDIA_TYPE',
        `Content-Type ${info.contentType === '' ? '(none)' : `'${info.contentType}'`} is not a batch format: use one of ${Object.keys(CONTENT_TYPES).join(', ')}`), true);
      return;
    }
    const { maxPayload } = ctx.config.server;
    // 413 before any 503: a declared length over the limit fails on every retry, so telling the
    // producer to retry (as the overload check below would whenever the length exceeds
    // workers.queue) would make it send the same body forever
    if (info.contentLength !== null && info.contentLength > maxPayload) {
      rejected(ctx, reply, stream, sluiceError('PAYLOAD_TOO_LARGE', `request body of ${info.contentLength} bytes exceeds server.maxPayload (${maxPayload} bytes)`), true);
      return;
    }
    if (ctx.stopping) {
      rejected(ctx, reply, stream, sluiceError('SHUTTING_DOWN', 'the server is stopping and accepts no more batches'), true);
      return;
    }
    const expected = info.contentLength ?? maxPayload;
    // HTTP bodies — being read, or read and waiting for the engine — take at most workers.queue
    // bytes; past that a request is answered before its body is read, so a producer that
    // outruns us costs no memory. One body is always let in: with maxPayload > workers.queue
    // (both are configurable) a body larger than the queue, or any chunked one (counted at
    // maxPayload), would otherwise be refused on every retry.
    if (ctx.bodyBytes > 0 && ctx.bodyBytes + expected > ctx.config.workers.queue) {
      rejected(ctx, reply, stream, sluiceError('OVERLOADED', `request bodies waiting for the engine fill workers.queue (${ctx.config.workers.queue} bytes): retry after a moment`), true);
      return;
    }
    ctx.bodyBytes += expected;
    let counted = true;
    const uncount = (): void => {
      if (counted) ctx.bodyBytes -= expected;
      counted = false;
    };
    let read = false;
    // once read, the body belongs to the engine's line: it stays counted until the engine
    // answers, even when the client gives up
    reply.onAbort(() => {
      if (!read) uncount();
    });
    readBody(reply, info, maxPayload).then(
      (body) => {
        read = true;
        if (reply.closed) {
          uncount();
          return;
        }
        // A full arena does not refuse a body already read: it waits in the engine's line, in
        // arrival order with the WebSocket batches. Refusing it instead starved HTTP producers
        // while WebSocket clients kept the line busy (a batch waiting in line makes tryIngest
        // answer null to everyone else): test/server/backpressure.test.ts.
        ctx.engine.ingest(stream, body, format).then(
          (r) => {
            uncount();
            ctx.metrics.ingestEvents.inc({ stream, transport: 'http' }, r.rows);
            ctx.metrics.ingestBytes.inc({ stream, transport: 'http' }, body.length);
            reply.json(200, { rows: r.rows });
          },
          (err: unknown) => {
            uncount();
            rejected(ctx, reply, stream, err);
          },
        );
      },
      (err: unknown) => {
        uncount();
        // the body was not read to its end: close the connection after answering
        rejected(ctx, reply, stream, err, true);
      },
    );
  };
}

function rejected(ctx: ServerContext, reply: Reply, stream: string, err: unknown, closeConnection = false): void {
  const e = asSluiceError(err);
  ctx.metrics.batchesRejected.inc({ stream, code: e.code });
  reply.error(e, closeConnection);
}

// --- WebSocket -------------------------------------------------------------------------------

interface Pending {
  readonly seq: number;
  readonly bytes: number;
  /** 0 waiting for the engine, 1 accepted, 2 rejected */
  state: 0 | 1 | 2;
  rows: number;
  error: SluiceError | null;
}

export interface IngestSocket {
  readonly kind: 'ingest';
  readonly stream: string;
  /** seq of the connection's last batch */
  seq: number;
  /** batches received and not answered yet (the credit check) */
  unanswered: number;
  /** answers not sent yet, in seq order, from `head` */
  readonly pending: Pending[];
  head: number;
  /** batches copied to the heap and waiting in engine.ingest() for arena space */
  waiting: number;
  flushScheduled: boolean;
  closed: boolean;
}

/** bytes of acks / nacks waiting unsent before the connection is closed with 1008 */
const ACK_BACKLOG_LIMIT = 1 << 20;

export function wsIngest(ctx: ServerContext, sockets: Set<WebSocket<IngestSocket>>): WebSocketBehavior<IngestSocket> {
  const { maxPayload, credits, idleTimeout } = ctx.config.server;
  return {
    // uWS closes a message over its own limit abruptly (1006, no reason). Give it room above
    // maxPayload so that we see such messages and close with 1009 ourselves (docs/protocols.md);
    // past twice maxPayload (at least +1 MiB) uWS's own cut applies.
    maxPayloadLength: Math.min(2 ** 31 - 1, Math.max(maxPayload * 2, maxPayload + (1 << 20))),
    // acks are small: a client that lets this much pile up unread is broken. flushAnswers closes
    // it with 1008 before uWS would drop an answer; never drop one silently.
    maxBackpressure: ACK_BACKLOG_LIMIT * 2,
    idleTimeout: idleTimeout / 1000,
    sendPingsAutomatically: true,
    upgrade: (res, req, context) => upgradeIngest(ctx, res, req, context),
    open: (ws) => {
      sockets.add(ws);
      ctx.metrics.connections.inc({ route: 'ingest' });
      ws.send(JSON.stringify({ credits }), false);
    },
    message: (ws, message, isBinary) => {
      const c = ws.getUserData();
      if (message.byteLength > maxPayload) {
        const err = sluiceError('PAYLOAD_TOO_LARGE', `message of ${message.byteLength} bytes exceeds server.maxPayload (${maxPayload})`);
        ctx.metrics.batchesRejected.inc({ stream: c.stream, code: err.code });
        ws.end(1009, closeReason(err));
        return;
      }
      if (c.unanswered >= credits) {
        ws.end(1008, closeReason(sluiceError('CREDITS_EXCEEDED', `more than ${credits} unacknowledged batches`)));
        return;
      }
      const entry: Pending = { seq: ++c.seq, bytes: message.byteLength, state: 0, rows: 0, error: null };
      c.unanswered++;
      c.pending.push(entry);
      const format: IngestFormat = isBinary ? 'binary' : 'ndjson';
      let p: Promise<IngestResult> | null = null;
      try {
        if (ctx.stopping) throw sluiceError('SHUTTING_DOWN', 'the server is stopping and accepts no more batches');
        const bytes = new Uint8Array(message);
        // copied into the arena before tryIngest returns; once one batch of this connection
        // waits, the later ones wait behind it (call order = seq order)
        if (c.waiting === 0) p = ctx.engine.tryIngest(c.stream, bytes, format);
        if (p === null) {
          // one copy on the heap; the credits bound it to credits × maxPayload per connection
          c.waiting++;
          p = ctx.engine.ingest(c.stream, bytes.slice(), format);
          p.then(() => c.waiting--, () => c.waiting--);
        }
      } catch (err) {
        settle(ctx, ws, entry, null, err);
        return;
      }
      p.then((r) => settle(ctx, ws, entry, r, null), (err: unknown) => settle(ctx, ws, entry, null, err));
    },
    close: (ws) => {
      ws.getUserData().closed = true;
      sockets.delete(ws);
      ctx.metrics.connections.dec({ route: 'ingest' });
    },
  };
}

function upgradeIngest(ctx: ServerContext, res: HttpResponse, req: HttpRequest, context: us_socket_context_t): void {
  const stream = req.getParameter(0);
  const denied = ctx.auth.checkRequest(req);
  const reply = (err: SluiceError): void => void new Reply(res, req).error(err, true);
  if (denied !== null) return reply(denied);
  const unknown = unknownStream(ctx, stream);
  if (unknown !== null) return reply(unknown);
  if (ctx.stopping) return reply(sluiceError('SHUTTING_DOWN', 'the server is stopping'));
  const data: IngestSocket = {
    kind: 'ingest', stream, seq: 0, unanswered: 0, pending: [], head: 0, waiting: 0, flushScheduled: false, closed: false,
  };
  res.upgrade(data, req.getHeader('sec-websocket-key'), req.getHeader('sec-websocket-protocol'), req.getHeader('sec-websocket-extensions'), context);
}

function settle(ctx: ServerContext, ws: WebSocket<IngestSocket>, entry: Pending, r: IngestResult | null, err: unknown): void {
  const c = ws.getUserData();
  if (r !== null) {
    entry.state = 1;
    entry.rows = r.rows;
    ctx.metrics.ingestEvents.inc({ stream: c.stream, transport: 'ws' }, r.rows);
    ctx.metrics.ingestBytes.inc({ stream: c.stream, transport: 'ws' }, entry.bytes);
  } else {
    entry.state = 2;
    entry.error = asSluiceError(err);
    ctx.metrics.batchesRejected.inc({ stream: c.stream, code: entry.error.code });
  }
  if (c.flushScheduled) return;
  c.flushScheduled = true;
  // after the other outcomes the engine resolved in the same turn: they coalesce into one ack
  queueMicrotask(() => flushAnswers(ws));
}

/** Send the answers that are ready, in seq order: consecutive acks as one, nacks one by one. */
function flushAnswers(ws: WebSocket<IngestSocket>): void {
  const c = ws.getUserData();
  c.flushScheduled = false;
  const out: string[] = [];
  let ackSeq = 0;
  let ackRows = 0;
  let i = c.head;
  for (; i < c.pending.length; i++) {
    const e = c.pending[i]!;
    if (e.state === 0) break;
    if (e.state === 1) {
      ackSeq = e.seq;
      ackRows += e.rows;
      continue;
    }
    if (ackSeq !== 0) out.push(JSON.stringify({ ack: ackSeq, rows: ackRows }));
    ackSeq = 0;
    ackRows = 0;
    out.push(JSON.stringify({ nack: e.seq, error: e.error!.toJSON() }));
  }
  if (ackSeq !== 0) out.push(JSON.stringify({ ack: ackSeq, rows: ackRows }));
  c.unanswered -= i - c.head;
  c.head = i;
  if (c.head > 1024 && c.head * 2 > c.pending.length) {
    c.pending.splice(0, c.head);
    c.head = 0;
  }
  if (c.closed || out.length === 0) return;
  if (ws.getBufferedAmount() > ACK_BACKLOG_LIMIT) {
    c.closed = true;
    ws.end(1008, closeReason(sluiceError('ACKS_NOT_READ', `more than ${ACK_BACKLOG_LIMIT} bytes of acks unread`)));
    return;
  }
  ws.cork(() => {
    for (const m of out) ws.send(m, false);
  });
}
