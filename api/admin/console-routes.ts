import { fileURLToPath } from 'node:url';
import express, { type NextFunction, type Request, type Response, type Router } from 'express';
import type { Logger, ManagementClient } from '../../core/index.ts';
import type { CompiledTopology } from '../../topology/index.ts';
import { DeadLetterOperationError, type DeadLetterQueues, detail, maskMessage } from '../dead-letters/index.ts';
import type { ResultStore } from '../store/result-store.ts';
import { type AdminAuth, cookieOf, SESSION_COOKIE, sameOrigin } from './admin-auth.ts';
import { queueOverview } from './queue-overview.ts';
import { groupPage, homePage, messagePage, searchPage, signInPage } from './render.ts';

export interface ConsoleOptions {
  auth: AdminAuth;
  dlq: DeadLetterQueues;
  store: ResultStore;
  mgmt: ManagementClient;
  compiled: CompiledTopology;
  logger: Logger;
}

/** The page's own rules: nothing from elsewhere runs, nothing frames it, nothing is cached. */
function secureHeaders(_req: Request, res: Response, next: NextFunction): void {
  res.set({
    'content-security-policy':
      "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
    'x-content-type-options': 'nosniff',
    // same-origin, not no-referrer: under no-referrer Chromium sends `Origin: null` with the page's own form posts.
    'referrer-policy': 'same-origin',
    'cache-control': 'no-store',
  });
  next();
}

/**
 * `/admin`: the failure console. Server-rendered pages (queues, dead letters grouped by cause, a
 * group, one message, a search), with a small script for the live queue table and the actions.
 */
export function consoleRouter(o: ConsoleOptions): Router {
  const router = express.Router();
  const log = o.logger.child({ component: 'console' });
  router.use(secureHeaders);
  router.use('/assets', express.static(assetsDir(), { index: false, fallthrough: false }));

  const sessionOf = (req: Request) => o.auth.sessionOf(cookieOf(req, SESSION_COOKIE));
  const cookie = (req: Request, value: string, maxAgeMs: number) =>
    `${SESSION_COOKIE}=${value}; Path=/; HttpOnly; SameSite=Strict; Max-Age=${Math.floor(maxAgeMs / 1000)}${req.secure ? '; Secure' : ''}`;

  router.post('/sign-in', express.urlencoded({ extended: false, limit: '4kb' }), (req, res) => {
    const token = typeof req.body?.token === 'string' ? req.body.token : '';
    if (!sameOrigin(req) || !o.auth.tokenMatches(token)) {
      log.warn({ ip: req.ip }, 'console sign-in refused');
      return void res.status(401).type('html').send(signInPage('Wrong token.'));
    }
    res.set('set-cookie', cookie(req, o.auth.newSession(), 12 * 3600 * 1000)).redirect(303, '/admin');
  });

  router.post('/sign-out', express.urlencoded({ extended: false, limit: '4kb' }), (req, res) => {
    const id = sessionOf(req);
    if (id && req.body?.csrf === o.auth.csrfOf(id) && sameOrigin(req)) o.auth.signOut(cookieOf(req, SESSION_COOKIE));
    res.set('set-cookie', cookie(req, '', 0)).redirect(303, '/admin');
  });

  // Everything below needs a session; without one, the sign-in form and nothing else.
  router.use((req, res, next) => {
    const id = sessionOf(req);
    if (!id) {
      if (req.path === '/' || req.path === '') return void res.status(200).type('html').send(signInPage());
      return void res.redirect(303, '/admin');
    }
    res.locals.csrf = o.auth.csrfOf(id);
    next();
  });

  router.get('/', async (_req, res) => {
    const [queues, groups] = await Promise.all([
      queueOverview(o.mgmt, o.compiled).catch((err: unknown) => `the management API did not answer: ${(err as Error).message}`),
      o.store.deadGroups(),
    ]);
    const withPattern = groups.map((g) => ({ ...g, pattern: maskMessage(g.message ?? '') }));
    res.type('html').send(homePage({ csrf: res.locals.csrf as string, queues, groups: withPattern }));
  });

  router.get('/groups/:group', async (req, res) => {
    const rows = await o.store.listDead({ group: req.params.group, includeReplayed: true, limit: 5000 });
    res.type('html').send(groupPage({ csrf: res.locals.csrf as string, group: req.params.group, rows }));
  });

  router.get('/search', async (req, res) => {
    const requestId = typeof req.query.requestId === 'string' ? req.query.requestId.trim() : '';
    if (!requestId) return void res.redirect(303, '/admin');
    const [rows, record] = await Promise.all([o.store.listDead({ requestId, includeReplayed: true, limit: 200 }), o.store.get(requestId)]);
    res.type('html').send(searchPage({ csrf: res.locals.csrf as string, requestId, rows, record }));
  });

  router.get('/messages/:id', async (req, res) => {
    const id = req.params.id;
    const record = await o.store.get(id);
    let error: string | undefined;
    const [dl] = await o.dlq.browse({ ids: [id] }, 1).catch((err: unknown) => {
      if (!(err instanceof DeadLetterOperationError)) throw err;
      error = err.message;
      return [];
    });
    res
      .status(dl ? 200 : 404)
      .type('html')
      .send(messagePage({ csrf: res.locals.csrf as string, id, view: dl ? detail(dl) : undefined, record, error }));
  });

  router.use((err: unknown, _req: Request, res: Response, next: NextFunction) => {
    if (res.headersSent) return void next(err);
    log.error({ err }, 'console page failed');
    res
      .status(500)
      .type('text')
      .send(`The console could not render this page: ${(err as Error).message}`);
  });
  return router;
}

/** The script and stylesheet, beside this file (`npm run build` copies them into dist/). */
function assetsDir(): string {
  return fileURLToPath(new URL('./assets/', import.meta.url));
}

/** `/api/v1/admin/queues`: the live queue table's data. */
export function queuesRouter(o: { authorize: express.RequestHandler; mgmt: ManagementClient; compiled: CompiledTopology }): Router {
  const router = express.Router();
  router.use(o.authorize);
  router.get('/', async (_req, res) => {
    try {
      res.set('cache-control', 'no-store').json({ at: new Date().toISOString(), queues: await queueOverview(o.mgmt, o.compiled) });
    } catch (err) {
      res.status(503).json({ error: { code: 'MANAGEMENT_UNAVAILABLE', message: `the management API did not answer: ${(err as Error).message}` } });
    }
  });
  return router;
}
