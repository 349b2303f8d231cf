/**
 * The server: one uWebSockets.js app on one port, a thin layer over the embeddable engine
 * (DESIGN.md A4, A5, A8).
 *
 *   GET  /                                   dashboard (HTML)
 *   GET  /healthz  /readyz  /metrics
 *   GET  /v1/streams  /v1/pipelines
 *   POST /v1/streams/{stream}/ingest         and the WebSocket of the same path
 *   WS   /v1/pipelines/{name}/subscribe
 *   GET  /v1/pipelines/{name}/results
 *   POST /v1/sql  /v1/flush
 *
 * `startServer(config)` opens the engine, listens, and returns the bound port; `close()` is the
 * graceful stop: refuse new connections and batches, let the engine drain, answer what it
 * finished, close the sockets, checkpoint and close the engine.
 */

import { pino, type Logger } from 'pino';
import uWS, { type TemplatedApp, type us_listen_socket, type WebSocket } from 'uWebSockets.js';
import type { SluiceConfig } from '../engine/config.js';
import { sluiceError } from '../engine/errors.js';
import { Sluice, resolveConfig, type LogFn } from '../engine/runtime.js';
import { Auth } from './auth.js';
import type { ServerContext } from './context.js';
import { dashboard } from './dashboard.js';
import { Reply } from './http.js';
import { httpIngest, wsIngest, type IngestSocket } from './ingest.js';
import { Metrics } from './metrics.js';
import { flush, healthz, metrics, pipelines, readyz, results, sql, streams } from './rest.js';
import { Subscriptions } from './subscribe.js';

export interface StartOptions {
  /** default: a pino logger at `info` on stderr */
  readonly log?: Logger;
}

export interface SluiceServer {
  readonly host: string;
  readonly port: number;
  /** `http://HOST:PORT` */
  readonly url: string;
  readonly engine: Sluice;
  readonly config: SluiceConfig;
  readonly metrics: Metrics;
  /** graceful stop; safe to call twice */
  close(): Promise<void>;
}

/** Routes that exist, for 405 answers to the wrong method. */
const KNOWN = [
  { re: /^\/$/, allow: 'GET' },
  { re: /^\/(healthz|readyz)$/, allow: 'GET, HEAD' },
  { re: /^\/metrics$/, allow: 'GET' },
  { re: /^\/v1\/(streams|pipelines)$/, allow: 'GET' },
  { re: /^\/v1\/streams\/[^/]+\/ingest$/, allow: 'POST, GET (WebSocket upgrade)' },
  { re: /^\/v1\/pipelines\/[^/]+\/subscribe$/, allow: 'GET (WebSocket upgrade)' },
  { re: /^\/v1\/pipelines\/[^/]+\/results$/, allow: 'GET' },
  { re: /^\/v1\/(sql|flush)$/, allow: 'POST' },
];

/**
 * The server could not listen (the port is taken, or the host is not an address of this host):
 * an expected failure, which `sluice serve` prints as one line, `sluice: message`, and exit 1.
 * No SLUICE_* code fits, and the catalogue is for answers to clients, which this never is.
 */
export class ListenError extends Error {
  override readonly name = 'ListenError';
}

function engineLog(log: Logger): LogFn {
  return (level, msg, fields) => log[level](fields ?? {}, msg);
}

export async function startServer(config: SluiceConfig | string | Record<string, unknown>, opts: StartOptions = {}): Promise<SluiceServer> {
  const log = opts.log ?? pino({ level: 'info' }, pino.destination(2));
  const resolved = resolveConfig(config);
  // Checked here, not in the config schema: a kafka section is valid configuration (DESIGN.md
  // A7; the examples and config tests have one), but this server cannot run it yet, and running
  // standalone instead would silently ignore it. Refused before anything opens.
  if (resolved.kafka !== undefined) {
    throw sluiceError('CONFIG_INVALID', 'kafka: Kafka mode is not implemented yet in this version; remove the kafka section (and SLUICE_KAFKA_* variables) to run standalone');
  }
  const m = new Metrics();
  const engine = await Sluice.open(resolved, {
    log: engineLog(log),
    observe: {
      batchLatency: (ms) => m.batchLatency.observe(ms / 1000),
      commit: (ms) => m.flushDuration.observe(ms / 1000),
    },
  });
  m.attach(engine);
  const cfg = engine.config;
  const ctx: ServerContext = { config: cfg, engine, auth: new Auth(cfg.server.auth?.tokens), metrics: m, log, stopping: false, bodyBytes: 0 };
  engine.on('fatal', (err: Error) => log.error({ err: err.message }, 'the engine failed; /healthz now answers 503'));

  const ingestSockets = new Set<WebSocket<IngestSocket>>();
  const subs = new Subscriptions(ctx);
  const app: TemplatedApp = uWS.App()
    .get('/', dashboard())
    .get('/healthz', healthz(ctx))
    .get('/readyz', readyz(ctx))
    .get('/metrics', metrics(ctx))
    .get('/v1/streams', streams(ctx))
    .get('/v1/pipelines', pipelines(ctx))
    .get('/v1/pipelines/:name/results', results(ctx))
    .post('/v1/streams/:stream/ingest', httpIngest(ctx))
    .post('/v1/sql', sql(ctx))
    .post('/v1/flush', flush(ctx))
    .ws<IngestSocket>('/v1/streams/:stream/ingest', wsIngest(ctx, ingestSockets))
    .ws('/v1/pipelines/:name/subscribe', subs.behavior())
    .head('/healthz', healthz(ctx))
    .head('/readyz', readyz(ctx))
    .any('/*', (res, req) => {
      // with req: a HEAD gets the 401 / 404 / 405 status and headers without the body
      const reply = new Reply(res, req);
      const url = req.getUrl();
      const method = req.getMethod().toUpperCase();
      // with auth on, /v1 answers nothing, not even which paths exist, without a token
      if (url.startsWith('/v1/') || url === '/v1') {
        const denied = ctx.auth.checkRequest(req);
        if (denied !== null) {
          reply.error(denied);
          return;
        }
      }
      const known = KNOWN.find((k) => k.re.test(url));
      if (known !== undefined) {
        const allow = known.allow.replace(/ \(.*\)/, '');
        reply.json(405, { error: sluiceError('METHOD_NOT_ALLOWED', `${method} ${url}: this route takes ${known.allow}`).toJSON() }, { Allow: allow });
      } else {
        reply.error(sluiceError('NOT_FOUND', `no route ${method} ${url}`));
      }
    });

  let listenSocket: us_listen_socket | null = null;
  try {
    listenSocket = await new Promise<us_listen_socket>((resolve, reject) => {
      app.listen(cfg.server.host, cfg.server.port, (token) => {
        if (token === false) reject(new ListenError(`cannot listen on ${cfg.server.host}:${cfg.server.port} (in use, or not an address of this host)`));
        else resolve(token);
      });
    });
  } catch (err) {
    await engine.close();
    throw err;
  }
  const port = uWS.us_socket_local_port(listenSocket as unknown as uWS.us_socket);
  const host = cfg.server.host;
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;

  let closing: Promise<void> | null = null;
  const close = (): Promise<void> => {
    closing ??= (async () => {
      ctx.stopping = true;
      if (listenSocket !== null) uWS.us_listen_socket_close(listenSocket);
      listenSocket = null;
      // the engine finishes every batch it took; their acks go out before the sockets close
      try {
        await engine.checkpoint();
      } catch (err) {
        log.warn({ err: err instanceof Error ? err.message : String(err) }, 'could not drain before closing');
      }
      await new Promise((resolve) => setImmediate(resolve));
      for (const ws of [...ingestSockets]) ws.end(1001, 'server stopping');
      subs.closeAll(1001, 'server stopping');
      await engine.close();
      // and the kept-alive HTTP connections, which would otherwise go on answering from a
      // closed engine until their idle timeout (app.close exists in uWS 20.30; its typings lag)
      (app as TemplatedApp & { close(): void }).close();
    })();
    return closing;
  };
  return { host, port, url, engine, config: cfg, metrics: m, close };
}
