import { timingSafeEqual } from 'node:crypto';
import express, { type NextFunction, type Request, type Response, type Router } from 'express';
import { z } from 'zod';
import type { Logger } from '../../core/index.ts';
import type { ResultStore } from '../store/result-store.ts';
import type { DeadLetter } from './dead-letter.ts';
import type { DeadLetterQueues, DeadLetterSelector } from './dead-letter-queue.ts';
import { groupDeadLetters } from './stats.ts';

/**
 * `/api/v1/admin/dead-letters`: the dead-letter operations over HTTP, behind ADMIN_TOKEN
 * (Bearer). The caller mounts the router only when a token is configured, so the routes do not
 * exist otherwise.
 */
export function deadLetterAdminRouter(options: { token: string; dlq: DeadLetterQueues; store: ResultStore; logger: Logger }): Router {
  const router = express.Router();
  const log = options.logger.child({ component: 'admin' });
  router.use(requireToken(options.token));

  router.get('/', async (req, res) => {
    const q = listQuery.safeParse(req.query);
    if (!q.success) return void badRequest(res, q.error.issues[0]?.message);
    const letters = await options.dlq.list({ all: !q.data.group, group: q.data.group, queue: q.data.queue }, q.data.limit);
    res.json({ count: letters.length, deadLetters: letters.map(summary) });
  });

  router.get('/stats', async (req, res) => {
    const queue = typeof req.query.queue === 'string' ? req.query.queue : undefined;
    const letters = await options.dlq.list({ all: true, queue });
    res.json({ total: letters.length, groups: groupDeadLetters(letters) });
  });

  router.get('/:requestId', async (req, res) => {
    const [dl] = await options.dlq.list({ ids: [req.params.requestId] }, 1);
    if (!dl) return void res.status(404).json({ error: { code: 'NOT_FOUND', message: `no dead letter for ${req.params.requestId}` } });
    res.json(detail(dl));
  });

  router.post('/replay', express.json(), async (req, res) => {
    const body = actionBody.safeParse(req.body ?? {});
    if (!body.success) return void badRequest(res, body.error.issues[0]?.message);
    const selector = toSelector(body.data);
    if (!selector) return void badRequest(res, 'expected one of ids, group or all: true');
    const result = await options.dlq.replay(selector, {
      dryRun: body.data.dryRun,
      ratePerSecond: body.data.rate,
      onReplayed: async (dl) => {
        if (dl.requestId) await options.store.markQueued(dl.requestId);
      },
    });
    log.info({ ...result, dryRun: body.data.dryRun }, 'replay done');
    res.json({ ...result, dryRun: body.data.dryRun });
  });

  router.post('/purge', express.json(), async (req, res) => {
    const body = actionBody.safeParse(req.body ?? {});
    if (!body.success) return void badRequest(res, body.error.issues[0]?.message);
    const selector = toSelector(body.data);
    if (!selector) return void badRequest(res, 'expected one of ids, group or all: true');
    if (!body.data.yes) return void badRequest(res, 'purge removes messages for good: send "yes": true to confirm');
    const exported: unknown[] = [];
    const result = await options.dlq.purge(selector, {
      exportTo: async (batch) => {
        exported.push(...batch.map(exportRecord));
      },
    });
    res.json({ ...result, exported });
  });

  router.use((err: unknown, _req: Request, res: Response, _next: NextFunction) => {
    log.error({ err }, 'admin operation failed');
    res.status(500).json({ error: { code: 'ADMIN_FAILED', message: (err as Error).message } });
  });
  return router;
}

const listQuery = z.object({
  queue: z.string().optional(),
  group: z.string().optional(),
  limit: z.coerce.number().int().min(1).max(50_000).default(1000),
});

const actionBody = z.strictObject({
  ids: z.array(z.string()).optional(),
  group: z.string().optional(),
  all: z.boolean().optional(),
  queue: z.string().optional(),
  rate: z.number().positive().optional(),
  dryRun: z.boolean().default(false),
  yes: z.boolean().optional(),
});

function toSelector(b: z.infer<typeof actionBody>): DeadLetterSelector | undefined {
  if (!(b.ids?.length || b.group || b.all)) return undefined;
  return { ids: b.ids, group: b.group, all: b.all, queue: b.queue };
}

function requireToken(token: string) {
  const expected = Buffer.from(token);
  return (req: Request, res: Response, next: NextFunction) => {
    const m = /^Bearer (.+)$/.exec(req.get('authorization') ?? '');
    if (!m?.[1]) {
      res
        .set('www-authenticate', 'Bearer')
        .status(401)
        .json({ error: { code: 'UNAUTHORIZED', message: 'an Authorization: Bearer <ADMIN_TOKEN> header is required' } });
      return;
    }
    const given = Buffer.from(m[1]);
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
      res.status(403).json({ error: { code: 'FORBIDDEN', message: 'wrong admin token' } });
      return;
    }
    next();
  };
}

function badRequest(res: Response, message: string | undefined): void {
  res.status(400).json({ error: { code: 'BAD_REQUEST', message: message ?? 'invalid request' } });
}

export function summary(dl: DeadLetter) {
  return {
    requestId: dl.requestId,
    originQueue: dl.originQueue,
    reason: dl.reason,
    errorCode: dl.errorCode,
    errorMessage: dl.errorMessage,
    attempts: dl.attempts,
    firstFailure: dl.firstFailure,
    lastFailure: dl.lastFailure,
    deadAt: dl.deadAt,
    group: dl.fingerprint.id,
  };
}

export function detail(dl: DeadLetter) {
  return { ...summary(dl), errorStack: dl.errorStack, history: dl.history, replays: dl.replays, headers: dl.headers, body: bodyOf(dl.body) };
}

export function exportRecord(dl: DeadLetter) {
  return { ...detail(dl), bodyBase64: dl.body.toString('base64') };
}

function bodyOf(body: Buffer): unknown {
  const text = body.toString('utf8');
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
}
