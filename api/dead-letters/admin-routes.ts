import express, { type NextFunction, type Request, type RequestHandler, type Response, type Router } from 'express';
import { z } from 'zod';
import type { Logger } from '../../core/index.ts';
import type { DeadLetterRecord, ResultStore } from '../store/result-store.ts';
import type { DeadLetter } from './dead-letter.ts';
import type { DeadLetterQueues, DeadLetterSelector } from './dead-letter-queue.ts';
import { DeadLetterOperationError } from './errors.ts';
import { digestOf, type ExportSigner, idOf } from './export-token.ts';
import { maskMessage } from './fingerprint.ts';

export interface DeadLetterRoutesOptions {
  dlq: DeadLetterQueues;
  store: ResultStore;
  logger: Logger;
  /** Signs purge tokens (a key derived from the admin token, shared by replicas). */
  signer: ExportSigner;
  /** Who may call (a Bearer token, a console session); runs before every route. */
  authorize: RequestHandler;
  /** Replay rate when the caller names none (messages per second), so a click cannot flood a queue. */
  defaultRate?: number;
}

/**
 * `/api/v1/admin/dead-letters`: the dead-letter operations over HTTP. Browsing (the list, the
 * groups) is served from the store; a queue is read only to show one message in full, to replay
 * or to purge. A purge has two phases so that it never removes what the caller has not received:
 * POST /export answers the messages and a signed token, POST /purge takes the token.
 */
export function deadLetterAdminRouter(options: DeadLetterRoutesOptions): Router {
  const { dlq, store, signer } = options;
  const router = express.Router();
  const log = options.logger.child({ component: 'admin' });
  router.use(options.authorize);

  router.get('/', async (req, res) => {
    const q = listQuery.safeParse(req.query);
    if (!q.success) return void badRequest(res, q.error.issues[0]?.message);
    const letters = await store.listDead({ ...q.data, includeReplayed: q.data.replayed === '1' });
    res.json({ count: letters.length, deadLetters: letters.map(recordSummary) });
  });

  router.get('/stats', async (req, res) => {
    const queue = typeof req.query.queue === 'string' ? req.query.queue : undefined;
    const groups = (await store.deadGroups({ queue })).map((g) => ({ ...g, pattern: maskMessage(g.message ?? '') }));
    res.json({ total: groups.reduce((n, g) => n + g.count, 0), groups });
  });

  router.get('/:requestId', async (req, res) => {
    const id = req.params.requestId;
    const [dl] = await dlq.browse({ ids: [id] }, 1);
    const record = await store.get(id);
    if (!dl) {
      const where = dlq
        .queues()
        .map((s) => s.deadQueue)
        .join(', ');
      res.status(404).json({ error: { code: 'NOT_FOUND', message: `no dead letter for ${id} in ${where}` }, store: record ?? null });
      return;
    }
    res.json({ ...detail(dl), store: record ?? null });
  });

  router.post('/replay', express.json({ limit: '4mb' }), async (req, res) => {
    const body = actionBody.safeParse(req.body ?? {});
    if (!body.success) return void badRequest(res, body.error.issues[0]?.message);
    const selector = toSelector(body.data);
    if (!selector) return void badRequest(res, 'expected one of ids, group or all: true');
    const result = await dlq.replay(selector, {
      dryRun: body.data.dryRun,
      ratePerSecond: body.data.rate ?? options.defaultRate,
      onReplayed: async (dl) => {
        if (dl.requestId) await store.markQueued(dl.requestId);
      },
    });
    log.info({ matched: result.matched, replayed: result.replayed, failed: result.failed.length, dryRun: body.data.dryRun }, 'replay done');
    if (result.failed.length === 0) return void res.json({ ...result, dryRun: body.data.dryRun });
    const queues = [...new Set(result.failed.map((f) => f.queue))].map((q) => `"${q}"`).join(', ');
    res.status(409).json({
      ...result,
      dryRun: body.data.dryRun,
      error: { code: 'ORIGIN_QUEUE_MISSING', message: `${result.failed.length} dead letter(s) stay dead: origin queue ${queues} does not exist` },
    });
  });

  router.post('/export', express.json({ limit: '4mb' }), async (req, res) => {
    const body = actionBody.safeParse(req.body ?? {});
    if (!body.success) return void badRequest(res, body.error.issues[0]?.message);
    const selector = toSelector(body.data);
    if (!selector) return void badRequest(res, 'expected one of ids, group or all: true');
    const letters = (await dlq.browse(selector)).filter((dl) => idOf(dl) !== undefined);
    const token = signer.sign(letters.map((dl) => [idOf(dl) as string, digestOf(dl)] as const));
    res.json({ count: letters.length, exportedAt: new Date().toISOString(), token, records: letters.map(exportRecord) });
  });

  router.post('/purge', express.json({ limit: '16mb' }), async (req, res) => {
    const body = purgeBody.safeParse(req.body ?? {});
    if (!body.success) {
      return void badRequest(
        res,
        'a purge removes only what an export handed out: POST /export first, then POST /purge with {"token": <its token>, "yes": true}',
      );
    }
    const entries = signer.verify(body.data.token);
    if (!entries) return void badRequest(res, 'the token is not one this API issued with POST /export');
    const result = await dlq.purge(
      { ids: entries.map(([id]) => id) },
      {
        only: entries,
        onPurged: async (letters) => {
          await store.markPurged(letters.flatMap((dl) => (dl.requestId ? [dl.requestId] : [])));
        },
      },
    );
    log.info({ purged: result.purged, exported: entries.length }, 'purge done');
    res.json({ ...result, exported: entries.length });
  });

  router.use((err: unknown, _req: Request, res: Response, next: NextFunction) => {
    if (res.headersSent) return void next(err);
    if (err instanceof DeadLetterOperationError) {
      log.warn({ code: err.code, status: err.status, message: err.message }, 'admin operation refused');
      return void res.status(err.status).json({ error: { code: err.code, message: err.message } });
    }
    log.error({ err }, 'admin operation failed');
    res.status(500).json({ error: { code: 'ADMIN_FAILED', message: (err as Error).message } });
  });
  return router;
}

const listQuery = z.object({
  queue: z.string().optional(),
  group: z.string().optional(),
  requestId: z.string().min(1).optional(),
  replayed: z.enum(['0', '1']).optional(),
  limit: z.coerce.number().int().min(1).max(50_000).default(1000),
});

const actionBody = z.strictObject({
  ids: z.array(z.string()).optional(),
  group: z.string().optional(),
  all: z.boolean().optional(),
  queue: z.string().optional(),
  rate: z.number().positive().max(10_000).optional(),
  dryRun: z.boolean().default(false),
});

const purgeBody = z.strictObject({ token: z.string().min(1), yes: z.literal(true) });

function toSelector(b: z.infer<typeof actionBody>): DeadLetterSelector | undefined {
  if (!(b.ids?.length || b.group || b.all)) return undefined;
  return { ids: b.ids, group: b.group, all: b.all, queue: b.queue };
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

/** A store record in the same shape as `summary` (plus the request's status), whichever source answers. */
export function recordSummary(r: DeadLetterRecord) {
  return {
    requestId: r.requestId,
    originQueue: r.originQueue,
    reason: r.reason,
    errorCode: r.code,
    errorMessage: r.message,
    attempts: r.attempts,
    firstFailure: r.firstFailure,
    deadAt: r.deadAt,
    group: r.group,
    status: r.status,
  };
}

export function detail(dl: DeadLetter) {
  return { ...summary(dl), errorStack: dl.errorStack, history: dl.history, replays: dl.replays, headers: dl.headers, body: bodyOf(dl.body) };
}

export function exportRecord(dl: DeadLetter) {
  return { ...detail(dl), digest: digestOf(dl), bodyBase64: dl.body.toString('base64') };
}

function bodyOf(body: Buffer): unknown {
  const text = body.toString('utf8');
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
}
