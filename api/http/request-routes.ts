import type { IncomingMessage, ServerResponse } from 'node:http';
import express, { type Express, type NextFunction, type Request, type Response } from 'express';
import { type Logger, type StandardSchemaV1, traceIdOf, validateWith } from '../../core/index.ts';
import type { CompiledJob } from '../../topology/index.ts';
import { HttpError } from '../errors.ts';
import type { ResultStore } from '../store/result-store.ts';
import type { RequestAcceptor } from './request-acceptor.ts';

export const API_PREFIX = '/api/v1';
/** Where the tutorial's work is posted. */
export const ACCEPT_PATH = `${API_PREFIX}/processData`;
/** Where any public job is posted: POST /api/v1/jobs/:job. */
export const JOBS_PATH = `${API_PREFIX}/jobs/:job`;

/** Idempotency keys: visible ASCII, like the IETF draft's examples (UUIDs, ULIDs, hashes). */
const IDEMPOTENCY_KEY = /^[\x21-\x7e]{1,255}$/;
const TRACE_HEADERS = ['traceparent', 'tracestate'] as const;
const MAX_ID_LENGTH = 200;

export function statusUrlOf(requestId: string): string {
  return `${API_PREFIX}/requests/${encodeURIComponent(requestId)}`;
}

export interface RequestRouteDeps {
  acceptor: RequestAcceptor;
  /** The job behind POST /api/v1/processData; undefined: the route is absent. */
  defaultJob?: CompiledJob | undefined;
  /** Jobs the topology marks public, by name. */
  publicJobs: Readonly<Record<string, CompiledJob>>;
  /** A job's schema, when the API was given its definition. */
  schemaOf?: ((job: CompiledJob) => StandardSchemaV1 | undefined) | undefined;
  store: ResultStore;
  bodyLimitBytes: number;
  /** Counts each 202. */
  accepted?: { inc(): void } | undefined;
  /** One line per accepted request, with the fields the worker's lines about it carry too. */
  logger?: Logger | undefined;
}

/** Answers one POST of work for `job` whose JSON body was read: 202, or throws for the error answer. */
export type AcceptBody = (job: CompiledJob, body: unknown, req: IncomingMessage, res: ServerResponse) => Promise<void>;

/**
 * What POST /api/v1/processData and POST /api/v1/jobs/:job do with a parsed body, on node's own
 * request and response (the express routes and the fast path, fast-accept.ts, share it).
 */
export function acceptBodies(deps: RequestRouteDeps): AcceptBody {
  const log = deps.logger?.child({ component: 'http' });
  return async (job, body, req, res) => {
    if (typeof body !== 'object' || body === null || Array.isArray(body) || !('data' in body)) {
      throw new HttpError(400, 'MISSING_DATA', 'the body must be a JSON object with a "data" field');
    }
    let data: unknown = body.data;
    const schema = deps.schemaOf?.(job);
    if (schema) {
      const valid = await validateWith(schema, data);
      if (!valid.ok) throw new HttpError(400, 'INVALID_DATA', `job "${job.name}": ${valid.message}`);
      data = valid.value;
    }
    const { requestId, replayed, unknown } = await deps.acceptor.accept(job, data, { idempotencyKey: idempotencyKeyOf(req), headers: traceHeadersOf(req) });
    const statusUrl = statusUrlOf(requestId);
    deps.accepted?.inc();
    const fields = { requestId, messageId: requestId, job: job.name, queue: job.queue, replayed, traceId: traceIdOf(headerOf(req, 'traceparent')) };
    if (unknown) log?.warn(fields, 'request outcome unknown (no broker confirm in time)');
    else log?.info(fields, replayed ? 'request replayed (Idempotency-Key)' : 'request accepted');
    res.setHeader('Location', statusUrl);
    if (replayed) res.setHeader('Idempotent-Replayed', 'true');
    // Unknown: the broker did not confirm in time and may still take the message. The client polls
    // the status URL (queued, done, dead; 404 = never received) and may retry with the same
    // Idempotency-Key, which reuses this requestId.
    sendJson(res, 202, { requestId, status: unknown ? 'unknown' : 'queued', statusUrl });
  };
}

/** A JSON answer as express's res.json writes it, on node's response (headers set before stay). */
export function sendJson(res: ServerResponse, status: number, value: unknown): void {
  const text = JSON.stringify(value);
  res.statusCode = status;
  res.setHeader('Content-Type', 'application/json; charset=utf-8');
  res.setHeader('Content-Length', Buffer.byteLength(text));
  res.end(text);
}

/**
 * Adds POST /api/v1/processData (the tutorial's job), POST /api/v1/jobs/:job (any public job) and
 * GET /api/v1/requests/:id (a request's status) to `app`, at full paths. On the application's own
 * router, not a Router mounted on it: each router a request passes through costs a dispatch of its
 * own (closures, a path parse, a match per layer), a quarter of what the API allocated per request
 * under load (heap sampling, bench/README.md).
 */
export function addRequestRoutes(app: Express, deps: RequestRouteDeps, accept: AcceptBody = acceptBodies(deps)): void {
  const json = express.json({ limit: deps.bodyLimitBytes, strict: true });

  const defaultJob = deps.defaultJob;
  if (defaultJob) app.post(ACCEPT_PATH, requireJson, json, (req: Request, res: Response) => accept(defaultJob, req.body, req, res));
  app.post(JOBS_PATH, requireJson, json, (req: Request<{ job: string }>, res: Response) => {
    const job = publicJobNamed(deps.publicJobs, req.params.job);
    if (!job)
      throw new HttpError(
        404,
        'UNKNOWN_JOB',
        `no public job "${req.params.job.slice(0, 200)}" (public jobs: ${Object.keys(deps.publicJobs).join(', ') || 'none'})`,
      );
    return accept(job, req.body, req, res);
  });

  app.get(`${API_PREFIX}/requests/:id`, async (req: Request<{ id: string }>, res: Response) => {
    const id = req.params.id;
    const record = id.length <= MAX_ID_LENGTH ? await deps.store.get(id) : undefined;
    if (!record) throw new HttpError(404, 'NOT_FOUND', 'no request with this id');
    res.set('Cache-Control', 'no-store').json(record);
  });
}

/** The public job of that name (its own property only: a name like `constructor` is no job). */
export function publicJobNamed(publicJobs: Readonly<Record<string, CompiledJob>>, name: string): CompiledJob | undefined {
  return Object.hasOwn(publicJobs, name) ? publicJobs[name] : undefined;
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

/** A request header's value (node lowercases the names; a repeated one comes joined). */
function headerOf(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v.join(', ') : v;
}

function idempotencyKeyOf(req: IncomingMessage): string | undefined {
  const key = headerOf(req, 'idempotency-key');
  if (key === undefined) return undefined;
  if (!IDEMPOTENCY_KEY.test(key)) throw new HttpError(400, 'INVALID_IDEMPOTENCY_KEY', 'Idempotency-Key must be 1 to 255 visible ASCII characters');
  return key;
}

function traceHeadersOf(req: IncomingMessage): Record<string, string> | undefined {
  let out: Record<string, string> | undefined;
  for (const name of TRACE_HEADERS) {
    const v = headerOf(req, name);
    if (v && v.length <= 512) {
      out ??= {};
      out[name] = v;
    }
  }
  return out;
}
