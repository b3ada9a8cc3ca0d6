import express, { type NextFunction, type Request, type Response, Router } from 'express';
import { type Logger, traceIdOf } from '../../core/index.ts';
import { HttpError } from '../errors.ts';
import type { ResultStore } from '../store/result-store.ts';
import type { RequestAcceptor } from './request-acceptor.ts';

export const API_PREFIX = '/api/v1';
/** Where work is posted. */
export const ACCEPT_PATH = `${API_PREFIX}/processData`;

/** Idempotency keys: visible ASCII, like the IETF draft's examples (UUIDs, ULIDs, hashes). */
const IDEMPOTENCY_KEY = /^[\x21-\x7e]{1,255}$/;
const TRACE_HEADERS = ['traceparent', 'tracestate'] as const;
const MAX_ID_LENGTH = 200;

export function statusUrlOf(requestId: string): string {
  return `${API_PREFIX}/requests/${encodeURIComponent(requestId)}`;
}

/** POST /api/v1/processData (accept work) and GET /api/v1/requests/:id (its status), at full paths: mount at the root. */
export function createRequestRoutes(deps: {
  acceptor: RequestAcceptor;
  store: ResultStore;
  bodyLimitBytes: number;
  /** Counts each 202. */
  accepted?: { inc(): void } | undefined;
  /** One line per accepted request, with the fields the worker's lines about it carry too. */
  logger?: Logger | undefined;
  /** The queue requests are routed to, for those lines. */
  requestsQueue?: string | undefined;
}): Router {
  const router = Router();
  const log = deps.logger?.child({ component: 'http', queue: deps.requestsQueue });

  router.post(ACCEPT_PATH, requireJson, express.json({ limit: deps.bodyLimitBytes, strict: true }), async (req: Request, res: Response) => {
    const body: unknown = req.body;
    if (typeof body !== 'object' || body === null || Array.isArray(body) || !('data' in body)) {
      throw new HttpError(400, 'MISSING_DATA', 'the body must be a JSON object with a "data" field');
    }
    const { requestId, replayed } = await deps.acceptor.accept(body.data, { idempotencyKey: idempotencyKeyOf(req), headers: traceHeadersOf(req) });
    const statusUrl = statusUrlOf(requestId);
    deps.accepted?.inc();
    log?.info(
      { requestId, messageId: requestId, replayed, traceId: traceIdOf(req.get('traceparent')) },
      replayed ? 'request replayed (Idempotency-Key)' : 'request accepted',
    );
    res.status(202).location(statusUrl);
    if (replayed) res.set('Idempotent-Replayed', 'true');
    res.json({ requestId, status: 'queued', statusUrl });
  });

  router.get(`${API_PREFIX}/requests/:id`, async (req: Request<{ id: string }>, res: Response) => {
    const id = req.params.id;
    const record = id.length <= MAX_ID_LENGTH ? await deps.store.get(id) : undefined;
    if (!record) throw new HttpError(404, 'NOT_FOUND', 'no request with this id');
    res.set('Cache-Control', 'no-store').json(record);
  });

  return router;
}

/**
 * 415 for a body that is not JSON. A request without a body, or with an empty one, passes (it
 * gets 400 for its missing data); express.json alone would skip other types silently.
 */
function requireJson(req: Request, _res: Response, next: NextFunction): void {
  const empty = req.get('content-length') === '0';
  if (!empty && req.is('application/json') === false) {
    next(new HttpError(415, 'UNSUPPORTED_MEDIA_TYPE', 'expected Content-Type: application/json'));
    return;
  }
  next();
}

function idempotencyKeyOf(req: Request): string | undefined {
  const key = req.get('Idempotency-Key');
  if (key === undefined) return undefined;
  if (!IDEMPOTENCY_KEY.test(key)) throw new HttpError(400, 'INVALID_IDEMPOTENCY_KEY', 'Idempotency-Key must be 1 to 255 visible ASCII characters');
  return key;
}

function traceHeadersOf(req: Request): Record<string, string> | undefined {
  let out: Record<string, string> | undefined;
  for (const name of TRACE_HEADERS) {
    const v = req.get(name);
    if (v && v.length <= 512) {
      out ??= {};
      out[name] = v;
    }
  }
  return out;
}
