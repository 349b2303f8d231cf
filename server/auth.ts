/**
 * Bearer tokens for the /v1 routes (DESIGN.md A2 `server.auth.tokens`, A5 `?token=`).
 *
 * The comparison must not tell an attacker how much of a guess was right. Both sides are hashed
 * to 32 bytes first (timingSafeEqual needs equal lengths, and comparing lengths directly would
 * leak the token's length), every configured token is compared — no early exit on a match — and
 * only then is the answer returned.
 */

import { createHash, timingSafeEqual } from 'node:crypto';
import type { HttpRequest } from 'uWebSockets.js';
import { sluiceError, type SluiceError } from '../engine/errors.js';

function digest(s: string): Buffer {
  return createHash('sha256').update(s, 'utf8').digest();
}

export class Auth {
  private readonly digests: readonly Buffer[];

  /** `tokens` undefined: no auth configured, every request passes. */
  constructor(tokens: readonly string[] | undefined) {
    this.digests = (tokens ?? []).map(digest);
  }

  get enabled(): boolean {
    return this.digests.length > 0;
  }

  /**
   * null when the request may proceed, else the SLUICE_UNAUTHORIZED error to answer with.
   * `authorization` is the header value; `queryToken` the `token` query parameter ('' if none).
   */
  check(authorization: string, queryToken: string): SluiceError | null {
    if (!this.enabled) return null;
    let token: string | null = null;
    const m = /^Bearer[ \t]+(\S.*)$/i.exec(authorization.trim());
    if (m !== null) token = m[1]!.trim();
    else if (authorization === '' && queryToken !== '') token = queryToken;
    if (token === null) {
      return sluiceError('UNAUTHORIZED', authorization === ''
        ? 'this route needs a bearer token: send `Authorization: Bearer <token>` or ?token=<token>'
        : 'the Authorization header must be `Bearer <token>`');
    }
    const given = digest(token);
    let ok = false;
    for (const d of this.digests) ok = timingSafeEqual(given, d) || ok;
    return ok ? null : sluiceError('UNAUTHORIZED', 'the bearer token is not valid');
  }

  /** check() of a request's Authorization header and `token` parameter (during the handler call). */
  checkRequest(req: HttpRequest): SluiceError | null {
    return this.check(req.getHeader('authorization'), req.getQuery('token') ?? '');
  }
}
