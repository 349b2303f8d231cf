/**
 * Server tests' shared pieces: a real server on 127.0.0.1 port 0 over a fresh data directory,
 * a quiet logger, a `ws` client that collects the server's JSON answers in order, and waiting
 * with a deadline (node:test has no default timeout).
 */
import assert from 'node:assert/strict';
import { pino } from 'pino';
import WebSocket from 'ws';
import { startServer, type SluiceServer } from '../../server/app.js';
import { bidsConfig, freshDir, type ConfigOptions } from './oracle.js';

export type TestServerOptions = Partial<ConfigOptions>;

/** The pipeline most server tests use: 10 s tumbling windows per auction over `bids`. */
export const TUMBLE = {
  tumble: { window: { tumbling: '10s' }, groupBy: ['auction'], select: { n: 'count()', total: 'sum(price)', top: 'max(price)' } },
};

/** A server on a free port over a new data directory; `bidsConfig` with `o` on top. */
export async function testServer(o: TestServerOptions = {}): Promise<SluiceServer> {
  const config = bidsConfig({ dir: o.dir ?? freshDir(), threads: o.threads ?? 1, pipelines: o.pipelines ?? TUMBLE, ...o });
  const server = config.server as Record<string, unknown>;
  server.host = '127.0.0.1';
  server.port = 0;
  return startServer(config, { log: pino({ level: process.env.SLUICE_TEST_LOG ?? 'silent' }) });
}

/** `p`, or a failure naming `what` after `ms` (node:test has no default timeout). */
export function within<T>(p: Promise<T>, what: string, ms = 10_000): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`no ${what} within ${ms} ms`)), ms)));
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}

/** Wait until `cond` holds, checking every 20 ms; fail after `ms`. */
export async function until(cond: () => boolean | Promise<boolean>, what: string, ms = 10_000): Promise<void> {
  for (const end = Date.now() + ms; !(await cond());) {
    if (Date.now() > end) assert.fail(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

export function wsUrl(server: SluiceServer, path: string): string {
  return `ws://127.0.0.1:${server.port}${path}`;
}

export interface Closed {
  code: number;
  reason: string;
}

/**
 * A WebSocket client that queues every text message parsed as JSON and every binary message as
 * a Buffer; `next()` waits for the next one, `closed` settles with the close code and reason.
 */
export class TestSocket {
  readonly ws: WebSocket;
  readonly messages: unknown[] = [];
  readonly closed: Promise<Closed>;
  private waiters: ((m: unknown) => void)[] = [];

  private constructor(ws: WebSocket) {
    this.ws = ws;
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      const m: unknown = isBinary ? Buffer.from(data) : JSON.parse(data.toString('utf8'));
      const w = this.waiters.shift();
      if (w !== undefined) w(m);
      else this.messages.push(m);
    });
    this.closed = new Promise((resolve) => ws.on('close', (code, reason) => resolve({ code, reason: reason.toString('utf8') })));
    ws.on('error', () => undefined);
  }

  static open(url: string, headers: Record<string, string> = {}): Promise<TestSocket> {
    const ws = new WebSocket(url, { headers, maxPayload: 1 << 30 });
    const s = new TestSocket(ws);
    return new Promise((resolve, reject) => {
      ws.once('open', () => resolve(s));
      ws.once('unexpected-response', (_req, res) => reject(new Error(`upgrade refused: ${res.statusCode}`)));
      ws.once('error', reject);
    });
  }

  /** The next message; rejects after `ms`. */
  next(ms = 10_000): Promise<unknown> {
    const m = this.messages.shift();
    if (m !== undefined) return Promise.resolve(m);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== done);
        reject(new Error(`no message within ${ms} ms`));
      }, ms);
      const done = (v: unknown): void => {
        clearTimeout(timer);
        resolve(v);
      };
      this.waiters.push(done);
    });
  }

  send(data: Buffer | Uint8Array | string): void {
    this.ws.send(data, { binary: typeof data !== 'string' });
  }

  close(): Promise<Closed> {
    if (this.ws.readyState === WebSocket.OPEN || this.ws.readyState === WebSocket.CONNECTING) this.ws.close(1000);
    return this.closed;
  }
}
