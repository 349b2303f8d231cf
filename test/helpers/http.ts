/**
 * HTTP pieces of the server tests: Node's global fetch with `Connection: close` (a kept-alive
 * socket would hold the test process open for undici's keep-alive timeout after the server
 * closed), the whole answer read at once, and the one assertion every error answer must pass.
 */
import assert from 'node:assert/strict';
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
  assert.deepEqual(Object.keys(err).sort(), ['code', 'message'], where);
  assert.equal(err['code'], code, where);
  assert.equal(CODES.get(code), status, `${code} is in engine/errors.ts with status ${status}`);
  assert.equal(typeof err['message'], 'string', where);
  assert.ok((err['message'] as string).length > 0, where);
  return err['message'] as string;
}
