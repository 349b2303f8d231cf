/**
 * Responses and request bodies over uWebSockets.js, following its rules (DESIGN.md B5):
 *
 * - A response that is not finished inside the route handler needs `onAborted`, or the process
 *   aborts when the client goes away: every handler wraps its response in a Reply first thing,
 *   which attaches it and remembers the abort.
 * - Writes after the handler returned (after an await) must be corked: Reply corks every write.
 * - A body chunk is only valid inside `onData`: readBody copies each chunk as it arrives.
 * - `req` is only valid during the handler call: read headers and parameters before any await.
 * - A HEAD answer has headers only. `res.end(body)` would write the body after them, and on a
 *   kept-alive connection the client reads those bytes as the start of its next response. A
 *   Reply made with the request answers a HEAD with the Content-Length a GET would get (RFC 9110
 *   §9.3.2), written as a header, and `endWithoutBody()` with no argument. Not
 *   `endWithoutBody(length)`: in uWS 20.30 that writes the header but counts the response as
 *   unfinished until `length` body bytes follow, so the connection is dropped at the next
 *   request (and any argument, even `undefined`, is taken as such a length).
 */

import type { HttpRequest, HttpResponse } from 'uWebSockets.js';
import { asSluiceError, sluiceError, type SluiceError } from '../engine/errors.js';

const STATUS_TEXT: Readonly<Record<number, string>> = {
  200: 'OK', 204: 'No Content', 400: 'Bad Request', 401: 'Unauthorized', 404: 'Not Found', 405: 'Method Not Allowed',
  408: 'Request Timeout', 413: 'Payload Too Large', 415: 'Unsupported Media Type', 429: 'Too Many Requests',
  500: 'Internal Server Error', 503: 'Service Unavailable',
};

function statusLine(status: number): string {
  return `${status} ${STATUS_TEXT[status] ?? 'Unknown'}`;
}

export type Headers = Readonly<Record<string, string>>;

/** One HTTP response: safe to finish from any later tick, and only once. */
export class Reply {
  aborted = false;
  finished = false;
  /** a HEAD request: status and headers, no body */
  readonly head: boolean;
  private readonly abortHandlers: (() => void)[] = [];

  /** `req`, when given, tells a HEAD request (uWS gives the method in lower case) */
  constructor(readonly res: HttpResponse, req?: HttpRequest) {
    this.head = req !== undefined && req.getMethod() === 'head';
    res.onAborted(() => {
      this.aborted = true;
      for (const h of this.abortHandlers) h();
    });
  }

  /** true when nothing can be written any more (the client left, or we answered) */
  get closed(): boolean {
    return this.aborted || this.finished;
  }

  onAbort(handler: () => void): void {
    this.abortHandlers.push(handler);
  }

  /**
   * `closeConnection`: answer and close, e.g. when the body was not read. Every 503 and 429
   * says `Retry-After: 1`.
   */
  send(status: number, contentType: string, body: string | Uint8Array, headers: Headers = {}, closeConnection = false): void {
    if (this.closed) return;
    this.finished = true;
    this.res.cork(() => {
      this.res.writeStatus(statusLine(status)).writeHeader('Content-Type', contentType);
      if (status === 503 || status === 429) this.res.writeHeader('Retry-After', '1');
      for (const [k, v] of Object.entries(headers)) this.res.writeHeader(k, v);
      if (this.head) {
        this.res.writeHeader('Content-Length', String(typeof body === 'string' ? Buffer.byteLength(body) : body.byteLength));
        // endWithoutBody cannot close without also writing a second Content-Length (see above):
        // ask the client to. (Answers that close are for request bodies left unread; a HEAD has none.)
        if (closeConnection) this.res.writeHeader('Connection', 'close');
        this.res.endWithoutBody();
      } else {
        this.res.end(body, closeConnection);
      }
    });
  }

  json(status: number, body: unknown, headers: Headers = {}, closeConnection = false): void {
    this.send(status, 'application/json', JSON.stringify(body), headers, closeConnection);
  }

  /** `{"error": {"code", "message"}}` with the catalogued status (Retry-After: see send). */
  error(err: unknown, closeConnection = false): SluiceError {
    const e = asSluiceError(err);
    this.json(e.status, { error: e.toJSON() }, e.status === 401 ? { 'WWW-Authenticate': 'Bearer realm="sluice"' } : {}, closeConnection);
    return e;
  }
}

/** The request's facts a handler needs after it returns (req dies with the handler call). */
export interface RequestInfo {
  readonly query: string;
  readonly contentType: string;
  readonly contentLength: number | null;
  readonly accept: string;
}

export function requestInfo(req: HttpRequest): RequestInfo {
  const len = req.getHeader('content-length');
  return {
    query: req.getQuery() ?? '',
    contentType: req.getHeader('content-type'),
    contentLength: len === '' || !/^\d+$/.test(len) ? null : Number(len),
    accept: req.getHeader('accept'),
  };
}

/** `application/json; charset=utf-8` → `application/json` */
export function mediaType(contentType: string): string {
  const semi = contentType.indexOf(';');
  return (semi < 0 ? contentType : contentType.slice(0, semi)).trim().toLowerCase();
}

/**
 * Read the whole body, copying each chunk (uWS neuters it after onData returns). Rejects with
 * SLUICE_PAYLOAD_TOO_LARGE past `limit` bytes — before reading when Content-Length says so —
 * and never settles when the client aborts (the Reply knows; nothing is left to answer).
 * `limitName` names the limit in the message.
 */
export function readBody(reply: Reply, info: RequestInfo, limit: number, limitName = 'server.maxPayload'): Promise<Uint8Array> {
  return new Promise((resolve, reject) => {
    if (info.contentLength !== null && info.contentLength > limit) {
      reject(tooLarge(info.contentLength, limit, limitName));
      return;
    }
    let buf = new Uint8Array(info.contentLength ?? 64 * 1024);
    let n = 0;
    let failed = false;
    reply.res.onData((chunk, isLast) => {
      if (failed) return;
      const bytes = new Uint8Array(chunk);
      if (n + bytes.length > limit) {
        failed = true;
        reject(tooLarge(n + bytes.length, limit, limitName));
        return;
      }
      if (n + bytes.length > buf.length) {
        const grown = new Uint8Array(Math.min(limit, Math.max(buf.length * 2, n + bytes.length)));
        grown.set(buf.subarray(0, n));
        buf = grown;
      }
      buf.set(bytes, n);
      n += bytes.length;
      if (isLast) resolve(n === buf.length ? buf : buf.subarray(0, n));
    });
  });
}

function tooLarge(bytes: number, limit: number, limitName: string): SluiceError {
  return sluiceError('PAYLOAD_TOO_LARGE', `request body of ${bytes} bytes exceeds ${limitName} (${limit} bytes)`);
}

/** Parse `a=1&b=2` into decoded pairs, keeping repeated keys in order. */
export function parseQuery(query: string): [string, string][] {
  if (query === '') return [];
  const out: [string, string][] = [];
  for (const [k, v] of new URLSearchParams(query)) out.push([k, v]);
  return out;
}
