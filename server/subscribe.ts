/**
 * `ws://HOST:PORT/v1/pipelines/{name}/subscribe[?format=arrow]` (DESIGN.md A5): every window
 * result of the pipeline, pushed once, after its commit — JSON `{"pipeline", "rows": [...]}`
 * text messages, or Arrow IPC binary messages.
 *
 * The engine's 'windows' event is listened to only while someone subscribes (it costs the state
 * worker a copy of every emitted result). Each result is encoded once per format, whatever the
 * number of subscribers.
 *
 * Sending: the results the engine emits in one event-loop turn — a commit, a flush closing every
 * window — are one burst. They are queued per subscriber (references to the shared encodings)
 * and sent when the turn ends, each subscriber's messages inside one `ws.cork()`, so that they
 * share writes (uWS gathers corked sends up to its 16 KiB cork buffer) instead of one write
 * (one syscall) per message.
 *
 * Slow readers: a subscriber that still has more than server.subscribe.maxBuffered bytes unsent
 * when a burst is sent is closed with 1013 instead, so memory never grows with a slow reader.
 * Otherwise the burst goes out whole, however much exceeds maxBuffered — within uWS's own
 * per-socket limit, maxBackpressure (2 × maxBuffered + 64 MiB, at most 2^31 − 1): uWS refuses
 * a message once more than that is unsent, and a subscriber whose burst overflows it is closed
 * with 1013 too, rather than left to miss a window. A burst whose messages but the last add up
 * to at most maxBackpressure − maxBuffered (maxBuffered + 64 MiB, below the cap) always fits.
 * Per subscriber, memory is at most maxBuffered plus one burst.
 */

import type { HttpRequest, HttpResponse, us_socket_context_t, WebSocket, WebSocketBehavior } from 'uWebSockets.js';
import { sluiceError, type SluiceError } from '../engine/errors.js';
import type { WindowsEvent } from '../engine/runtime.js';
import { unknownPipeline, type ServerContext } from './context.js';
import { closeReason } from './ingest.js';
import { Reply } from './http.js';
import { resultShape, windowArrow, windowRows, type ResultShape } from './window-results.js';

export interface SubscribeSocket {
  readonly kind: 'subscribe';
  readonly pipeline: string;
  readonly format: 'json' | 'arrow';
  closed: boolean;
  /** the messages of the current burst, sent when the burst ends (text JSON or binary Arrow) */
  pending: (string | Uint8Array)[];
}

export class Subscriptions {
  private readonly byPipeline = new Map<string, Set<WebSocket<SubscribeSocket>>>();
  private readonly shapes = new Map<string, ResultShape>();
  private count = 0;
  /** subscribers with messages of the current burst; the burst ends with the event-loop turn */
  private readonly due = new Set<WebSocket<SubscribeSocket>>();
  private burstOpen = false;
  private readonly onWindows = (e: WindowsEvent): void => this.publish(e);

  constructor(private readonly ctx: ServerContext) {}

  behavior(): WebSocketBehavior<SubscribeSocket> {
    const { maxBuffered } = this.ctx.config.server.subscribe;
    return {
      // subscribers send nothing that matters
      maxPayloadLength: 4096,
      // we enforce maxBuffered ourselves (close 1013); uWS must never drop a message silently
      maxBackpressure: Math.min(2 ** 31 - 1, maxBuffered * 2 + (64 << 20)),
      idleTimeout: this.ctx.config.server.idleTimeout / 1000,
      sendPingsAutomatically: true,
      upgrade: (res, req, context) => this.upgrade(res, req, context),
      open: (ws) => this.add(ws),
      close: (ws) => this.remove(ws),
    };
  }

  /** close every subscriber (server stopping), after what is queued for it */
  closeAll(code: number, reason: string): void {
    this.endBurst();
    for (const set of this.byPipeline.values()) for (const ws of [...set]) ws.end(code, reason);
  }

  private upgrade(res: HttpResponse, req: HttpRequest, context: us_socket_context_t): void {
    const pipeline = req.getParameter(0);
    const format = req.getQuery('format') ?? '';
    const reply = (err: SluiceError): void => void new Reply(res, req).error(err, true);
    const denied = this.ctx.auth.checkRequest(req);
    if (denied !== null) return reply(denied);
    const unknown = unknownPipeline(this.ctx, pipeline);
    if (unknown !== null) return reply(unknown);
    if (format !== '' && format !== 'json' && format !== 'arrow') {
      return reply(sluiceError('BAD_REQUEST', `format must be json or arrow, got '${format}'`));
    }
    if (this.ctx.stopping) return reply(sluiceError('SHUTTING_DOWN', 'the server is stopping'));
    const data: SubscribeSocket = { kind: 'subscribe', pipeline, format: format === 'arrow' ? 'arrow' : 'json', closed: false, pending: [] };
    res.upgrade(data, req.getHeader('sec-websocket-key'), req.getHeader('sec-websocket-protocol'), req.getHeader('sec-websocket-extensions'), context);
  }

  private add(ws: WebSocket<SubscribeSocket>): void {
    const { pipeline } = ws.getUserData();
    let set = this.byPipeline.get(pipeline);
    if (set === undefined) this.byPipeline.set(pipeline, (set = new Set()));
    set.add(ws);
    if (this.count++ === 0) this.ctx.engine.on('windows', this.onWindows);
    this.ctx.metrics.connections.inc({ route: 'subscribe' });
  }

  private remove(ws: WebSocket<SubscribeSocket>): void {
    const data = ws.getUserData();
    data.closed = true;
    data.pending = [];
    this.due.delete(ws);
    const set = this.byPipeline.get(data.pipeline);
    if (set === undefined || !set.delete(ws)) return;
    if (--this.count === 0) this.ctx.engine.off('windows', this.onWindows);
    this.ctx.metrics.connections.dec({ route: 'subscribe' });
  }

  private shape(pipeline: string): ResultShape {
    let s = this.shapes.get(pipeline);
    if (s === undefined) this.shapes.set(pipeline, (s = resultShape(this.ctx.config, pipeline)));
    return s;
  }

  /** queue a result for every subscriber of its pipeline: encoded once per format, sent at the end of the burst */
  private publish(e: WindowsEvent): void {
    const set = this.byPipeline.get(e.pipeline);
    if (set === undefined || set.size === 0 || e.result.rows === 0) return;
    if (!this.burstOpen) {
      this.burstOpen = true;
      setImmediate(() => this.endBurst());
    }
    let json: string | null = null;
    let arrow: Uint8Array | null = null;
    for (const ws of set) {
      const data = ws.getUserData();
      if (data.closed) continue;
      if (data.format === 'arrow') data.pending.push((arrow ??= windowArrow(this.shape(e.pipeline), e.result)));
      else data.pending.push((json ??= JSON.stringify({ pipeline: e.pipeline, rows: windowRows(this.shape(e.pipeline), e.result) })));
      this.due.add(ws);
    }
  }

  /** send each subscriber its burst, corked; or close it if it has not read the last one */
  private endBurst(): void {
    this.burstOpen = false;
    if (this.due.size === 0) return;
    const { maxBuffered } = this.ctx.config.server.subscribe;
    const due = [...this.due];
    this.due.clear();
    for (const ws of due) {
      const data = ws.getUserData();
      const messages = data.pending;
      data.pending = [];
      if (data.closed || messages.length === 0) continue;
      // checked against what is left from before this burst: nothing of it was sent yet
      if (ws.getBufferedAmount() > maxBuffered) {
        this.tooSlow(ws, maxBuffered);
        continue;
      }
      let dropped = false;
      ws.cork(() => {
        for (const m of messages) {
          // 2 = uWS dropped it (over maxBackpressure): the subscriber would miss a window, so it must go
          if (ws.send(m, typeof m !== 'string') === 2) {
            dropped = true;
            return;
          }
        }
      });
      if (dropped) this.tooSlow(ws, maxBuffered);
    }
  }

  private tooSlow(ws: WebSocket<SubscribeSocket>, maxBuffered: number): void {
    const { pipeline } = ws.getUserData();
    this.ctx.metrics.subscribersDropped.inc({ pipeline });
    this.ctx.log.warn({ pipeline, buffered: ws.getBufferedAmount() }, 'closing a subscriber that fell behind');
    ws.end(1013, closeReason(sluiceError('SUBSCRIBER_TOO_SLOW', `more than ${maxBuffered} bytes of results unread`)));
  }
}
