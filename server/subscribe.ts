/**
 * `ws://HOST:PORT/v1/pipelines/{name}/subscribe[?format=arrow]` (DESIGN.md A5): every window
 * result of the pipeline, pushed once, after its commit — JSON `{"pipeline", "rows": [...]}`
 * text messages, or Arrow IPC binary messages.
 *
 * The engine's 'windows' event is listened to only while someone subscribes (it costs the state
 * worker a copy of every emitted result). Each result is encoded once per format, whatever the
 * number of subscribers.
 *
 * Slow readers: a subscriber that still has more than server.subscribe.maxBuffered bytes unsent
 * when new results arrive is closed with 1013, so memory never grows with a slow reader. The
 * check is made once per burst — the results the engine emits in one event-loop turn (a commit,
 * a flush closing every window) — against what was left unread from before it: a burst larger
 * than maxBuffered goes out whole to a subscriber that keeps up, and a subscriber that does not
 * read is dropped at the next burst. Per subscriber, memory is at most maxBuffered plus one burst.
 */

import type { HttpRequest, HttpResponse, us_socket_context_t, WebSocket, WebSocketBehavior } from 'uWebSockets.js';
import { sluiceError, type SluiceError } from '../engine/errors.js';
import type { WindowsEvent } from '../engine/runtime.js';
import type { ServerContext } from './context.js';
import { closeReason } from './ingest.js';
import { statusLine } from './http.js';
import { resultShape, windowArrow, windowRows, type ResultShape } from './window-results.js';

export interface SubscribeSocket {
  readonly kind: 'subscribe';
  readonly pipeline: string;
  readonly format: 'json' | 'arrow';
  closed: boolean;
  /** the burst in which its backlog was last checked */
  checkedBurst: number;
}

export class Subscriptions {
  private readonly byPipeline = new Map<string, Set<WebSocket<SubscribeSocket>>>();
  private readonly shapes = new Map<string, ResultShape>();
  private count = 0;
  /** bursts: results published in one event-loop turn share a number */
  private burst = 1;
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

  /** close every subscriber (server stopping) */
  closeAll(code: number, reason: string): void {
    for (const set of this.byPipeline.values()) for (const ws of [...set]) ws.end(code, reason);
  }

  private upgrade(res: HttpResponse, req: HttpRequest, context: us_socket_context_t): void {
    const pipeline = req.getParameter(0);
    const format = req.getQuery('format') ?? '';
    const reply = (err: SluiceError): void => {
      res.writeStatus(statusLine(err.status)).writeHeader('Content-Type', 'application/json');
      if (err.status === 401) res.writeHeader('WWW-Authenticate', 'Bearer realm="sluice"');
      res.end(JSON.stringify({ error: err.toJSON() }), true);
    };
    const denied = this.ctx.auth.check(req.getHeader('authorization'), req.getQuery('token') ?? '');
    if (denied !== null) return reply(denied);
    if (!Object.hasOwn(this.ctx.config.pipelines, pipeline)) {
      return reply(sluiceError('UNKNOWN_PIPELINE', `no pipeline named '${pipeline}' (pipelines: ${Object.keys(this.ctx.config.pipelines).join(', ') || 'none'})`));
    }
    if (format !== '' && format !== 'json' && format !== 'arrow') {
      return reply(sluiceError('BAD_REQUEST', `format must be json or arrow, got '${format}'`));
    }
    if (this.ctx.stopping) return reply(sluiceError('SHUTTING_DOWN', 'the server is stopping'));
    const data: SubscribeSocket = { kind: 'subscribe', pipeline, format: format === 'arrow' ? 'arrow' : 'json', closed: false, checkedBurst: 0 };
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

  private publish(e: WindowsEvent): void {
    const set = this.byPipeline.get(e.pipeline);
    if (set === undefined || set.size === 0 || e.result.rows === 0) return;
    const { maxBuffered } = this.ctx.config.server.subscribe;
    if (!this.burstOpen) {
      this.burstOpen = true;
      setImmediate(() => {
        this.burst++;
        this.burstOpen = false;
      });
    }
    let json: string | null = null;
    let arrow: Uint8Array | null = null;
    for (const ws of [...set]) {
      const data = ws.getUserData();
      if (data.closed) continue;
      if (data.checkedBurst !== this.burst) {
        data.checkedBurst = this.burst;
        if (ws.getBufferedAmount() > maxBuffered) {
          this.tooSlow(ws, maxBuffered);
          continue;
        }
      }
      let sent: number;
      if (data.format === 'arrow') {
        arrow ??= windowArrow(this.shape(e.pipeline), e.result);
        sent = ws.send(arrow, true);
      } else {
        json ??= JSON.stringify({ pipeline: e.pipeline, rows: windowRows(this.shape(e.pipeline), e.result) });
        sent = ws.send(json, false);
      }
      // 2 = uWS dropped it (over maxBackpressure): the subscriber would miss a window, so it must go
      if (sent === 2) this.tooSlow(ws, maxBuffered);
    }
  }

  private tooSlow(ws: WebSocket<SubscribeSocket>, maxBuffered: number): void {
    const { pipeline } = ws.getUserData();
    this.ctx.metrics.subscribersDropped.inc({ pipeline });
    this.ctx.log.warn({ pipeline, buffered: ws.getBufferedAmount() }, 'closing a subscriber that fell behind');
    ws.end(1013, closeReason(sluiceError('SUBSCRIBER_TOO_SLOW', `more than ${maxBuffered} bytes of results unread`)));
  }
}
