import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { NextFunction, Request, RequestHandler, Response } from 'express';

export const SESSION_COOKIE = 'warren_admin';
const SESSION_MS = 12 * 60 * 60 * 1000;

/**
 * Who may use the admin routes and the failure console. A script sends the token as
 * `Authorization: Bearer`; a browser signs in once with it and then carries an HttpOnly,
 * SameSite=Strict session cookie. Sessions are signed, not stored, so API replicas sharing the
 * token accept each other's; a signed-out session is remembered by the process that signed it
 * out until it would have expired. State-changing calls with a session also need the page's
 * CSRF token (header `x-csrf-token`) and, when the browser sends one, a same-host Origin.
 */
export class AdminAuth {
  private readonly expected: Buffer;
  private readonly key: Buffer;
  private readonly revoked = new Map<string, number>();

  constructor(token: string) {
    this.expected = Buffer.from(token);
    this.key = createHash('sha256').update(`warren admin session\n${token}`).digest();
  }

  /** True for the admin token, compared in constant time. */
  tokenMatches(given: string): boolean {
    const g = Buffer.from(given);
    return g.length === this.expected.length && timingSafeEqual(g, this.expected);
  }

  /** A new session cookie value. */
  newSession(now = Date.now()): string {
    const body = `${now + SESSION_MS}.${randomBytes(12).toString('base64url')}`;
    return `${body}.${this.mac(body)}`;
  }

  /** The session's id when the cookie value is one we signed, unexpired and not signed out. */
  sessionOf(value: string | undefined, now = Date.now()): string | undefined {
    if (!value) return undefined;
    const parts = value.split('.');
    if (parts.length !== 3) return undefined;
    const [expires, nonce, mac] = parts as [string, string, string];
    const want = Buffer.from(this.mac(`${expires}.${nonce}`));
    const got = Buffer.from(mac);
    if (want.length !== got.length || !timingSafeEqual(want, got)) return undefined;
    if (!(Number(expires) > now) || this.revoked.has(nonce)) return undefined;
    return nonce;
  }

  signOut(value: string | undefined, now = Date.now()): void {
    const id = this.sessionOf(value, now);
    if (!id) return;
    this.revoked.set(id, Number(value?.split('.')[0]));
    for (const [k, until] of this.revoked) if (until < now) this.revoked.delete(k);
  }

  /** The CSRF token of a session: the page embeds it, state-changing calls send it back. */
  csrfOf(sessionId: string): string {
    return this.mac(`csrf.${sessionId}`);
  }

  /** Express middleware: a Bearer token, or a session (plus CSRF on unsafe methods). */
  middleware(): RequestHandler {
    return (req: Request, res: Response, next: NextFunction) => {
      const bearer = /^Bearer (.+)$/.exec(req.get('authorization') ?? '')?.[1];
      if (bearer !== undefined) {
        if (this.tokenMatches(bearer)) return void next();
        return void res.status(403).json({ error: { code: 'FORBIDDEN', message: 'wrong admin token' } });
      }
      const session = this.sessionOf(cookieOf(req, SESSION_COOKIE));
      if (!session) {
        res.set('www-authenticate', 'Bearer');
        return void res
          .status(401)
          .json({ error: { code: 'UNAUTHORIZED', message: 'an Authorization: Bearer <ADMIN_TOKEN> header or a console session is required' } });
      }
      if (!['GET', 'HEAD', 'OPTIONS'].includes(req.method)) {
        const csrf = req.get('x-csrf-token') ?? '';
        const want = this.csrfOf(session);
        if (csrf.length !== want.length || !timingSafeEqual(Buffer.from(csrf), Buffer.from(want)) || !sameOrigin(req)) {
          return void res.status(403).json({ error: { code: 'CSRF', message: 'missing or wrong CSRF token, or a cross-site request' } });
        }
      }
      next();
    };
  }

  private mac(s: string): string {
    return createHmac('sha256', this.key).update(s).digest('base64url');
  }
}

/** One cookie's value from the Cookie header (no cookie-parser for one name). */
export function cookieOf(req: Request, name: string): string | undefined {
  for (const part of (req.get('cookie') ?? '').split(';')) {
    const i = part.indexOf('=');
    if (i > 0 && part.slice(0, i).trim() === name) return decodeURIComponent(part.slice(i + 1).trim());
  }
  return undefined;
}

/** When the browser names the page's origin, it must be this host (a form posted from elsewhere is refused). */
export function sameOrigin(req: Request): boolean {
  const origin = req.get('origin');
  if (!origin || origin === 'null') return origin !== 'null';
  try {
    return new URL(origin).host === req.get('host');
  } catch {
    return false;
  }
}
