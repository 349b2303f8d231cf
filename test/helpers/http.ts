/**
 * HTTP pieces of the server tests: Node's global fetch with `Connection: close` (a kept-alive
 * socket would hold the test process open for undici's keep-alive timeout after the server
 * closed), the whole answer read at once, the one assertion every error answer must pass, and
 * raw HTTP/1.1 over one kept-alive connection for what fetch hides.
 */
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import type { SluiceServer } from '../../server/app.js';
import { allErrorDefs } from '../../engine/errors.js';

export interface Answer {
  readonly status: number;
  readonly headers: Headers;
  readonly body: Buffer;
  /** the body as UTF-8 */
  readonly text: string;
}

/** `path` on the server (or a full URL), answered in full. */
export async function call(server: SluiceServer, path: string, init: RequestInit = {}): Promise<Answer> {
  const headers = new Headers(init.headers);
  headers.set('connection', 'close');
  const res = await fetch(path.startsWith('http') ? path : `${server.url}${path}`, { ...init, headers });
  const body = Buffer.from(await res.arrayBuffer());
  return { status: res.status, headers: res.headers, body, text: body.toString('utf8') };
}

/** The body parsed as JSON, after checking the Content-Type says so. */
export function json(a: Answer): unknown {
  assert.match(a.headers.get('content-type') ?? '', /^application\/json\b/, `Content-Type of ${a.text.slice(0, 200)}`);
  return JSON.parse(a.text) as unknown;
}

const CODES = new Map(allErrorDefs().map((d) => [d.code, d.status]));

/**
 * An error answer of DESIGN.md A4: this status, a JSON body that is exactly
 * `{"error": {"code", "message"}}` with a catalogued code whose status is this one, and a
 * non-empty message. Returns the message.
 */
export function assertError(a: Answer, status: number, code: string, label = ''): string {
  const where = `${label}${label === '' ? '' : ': '}${a.status} ${a.text.slice(0, 300)}`;
  assert.equal(a.status, status, where);
  const body = json(a) as Record<string, unknown>;
  assert.deepEqual(Object.keys(body), ['error'], where);
  const err = body['error'] as Record<string, unknown>;
  assert.deepEqual(Object.keys(err), ['code', 'message'], where);
  assert.equal(err['code'], code, where);
  assert.equal(CODES.get(code), status, `${code} is in engine/errors.ts with status ${status}`);
  assert.equal(typeof err['message'], 'string', where);
  assert.ok((err['message'] as string).length > 0, where);
  return err['message'] as string;
}

// --- raw HTTP/1.1 over one kept-alive connection ----------------------------------------------

/** The head of a request: `METHOD path HTTP/1.1`, `Host: x`, then `headers` in order. */
export function rawRequest(method: string, path: string, headers: Record<string, string> = {}): string {
  return `${method} ${path} HTTP/1.1\r\nHost: x\r\n${Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join('')}\r\n`;
}

/** The Content-Length of an answer's head; NaN when it has none. */
export function contentLength(head: string): number {
  return Number(/\r\ncontent-length: (\d+)/i.exec(head)?.[1] ?? NaN);
}

export interface RawAnswer {
  readonly status: number;
  /** the status line and headers (latin1), without the blank line */
  readonly head: string;
  /** the body as UTF-8 */
  readonly body: string;
}

/**
 * One TCP connection to the server, requests written by hand and answers read off the wire,
 * for what fetch hides: the framing of HEAD answers, and a kept-alive connection made before
 * the server began to close.
 */
export class RawConnection {
  /** settles when the connection closes (from either side) */
  readonly closed: Promise<void>;
  /** bytes received since the last request was written */
  private received = Buffer.alloc(0);

  private constructor(private readonly socket: Socket) {
    socket.on('data', (d: Buffer) => (this.received = Buffer.concat([this.received, d])));
    socket.on('error', () => undefined); // a reset shows as `closed`
    this.closed = new Promise((resolve) => socket.once('close', () => resolve()));
  }

  static async open(port: number): Promise<RawConnection> {
    const socket = connect(port, '127.0.0.1');
    const c = new RawConnection(socket);
    await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
    return c;
  }

  /**
   * Write `request` and wait (10 s at most) for the answer's head and `bodyLength(head)` bytes
   * of body after it, by default its Content-Length. With `quietMs`, then wait that long and
   * fail if anything more arrived: it would belong to no request.
   */
  async exchange(request: string, opts: { bodyLength?: (head: string) => number; quietMs?: number } = {}): Promise<RawAnswer> {
    const { bodyLength = contentLength, quietMs } = opts;
    const what = request.split(' HTTP/1.1\r\n', 1)[0]!;
    this.received = Buffer.alloc(0);
    this.socket.write(request);
    for (const end = Date.now() + 10_000; ;) {
      const split = this.received.indexOf('\r\n\r\n');
      if (split >= 0) {
        const head = this.received.subarray(0, split).toString('latin1');
        const n = bodyLength(head);
        if (this.received.length >= split + 4 + n) {
          if (quietMs !== undefined) {
            await new Promise((resolve) => setTimeout(resolve, quietMs));
            assert.equal(this.received.length, split + 4 + n, `${what}: ${n} body bytes expected, got ${JSON.stringify(this.received.subarray(split + 4).toString('latin1'))}`);
          }
          return { status: Number(head.slice(9, 12)), head, body: this.received.subarray(split + 4, split + 4 + n).toString('utf8') };
        }
      }
      if (Date.now() > end) assert.fail(`no answer to ${what}: ${this.received.toString('latin1')}`);
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  }

  destroy(): void {
    this.socket.destroy();
  }
}
