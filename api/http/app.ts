import type { IncomingMessage, ServerResponse } from 'node:http';
import express, { type Express, type NextFunction, type Request, type Response, type Router } from 'express';
import type { StandardSchemaV1 } from '../../core/index.ts';
import { type Logger, metricNamesOf, writeMetrics } from '../../core/index.ts';
import type { CompiledJob } from '../../topology/index.ts';
import { answerFor } from '../errors.ts';
import type { ApiMetrics } from '../metrics.ts';
import type { ReadinessProbe, ReadinessReport } from '../readiness.ts';
import type { ResultStore } from '../store/result-store.ts';
import { fastAccept } from './fast-accept.ts';
import { RequestAcceptor, type RequestPublisher } from './request-acceptor.ts';
import {
  ACCEPT_PATH,
  type AcceptBody,
  API_PREFIX,
  acceptBodies,
  addRequestRoutes,
  JOBS_PATH,
  publicJobNamed,
  type RequestRouteDeps,
  sendJson,
} from './request-routes.ts';

export interface AppDeps {
  /** Publishes a request with confirm (the producer). */
  publisher: RequestPublisher;
  /** The accept step (default: one made from publisher and store). */
  acceptor?: RequestAcceptor;
  /** The job behind POST /api/v1/processData (the tutorial's); undefined: no such route. */
  defaultJob?: CompiledJob | undefined;
  /** Jobs accepted at POST /api/v1/jobs/:job, by name. */
  publicJobs?: Readonly<Record<string, CompiledJob>>;
  /** A job's schema, checked before publishing (400 naming the field). */
  schemaOf?: (job: CompiledJob) => StandardSchemaV1 | undefined;
  store: ResultStore;
  logger: Logger;
  config: { bodyLimitBytes: number; publishTimeoutMs: number };
  /** /readyz; without one, only the store is checked. */
  readiness?: ReadinessProbe;
  /** More routers (e.g. the dead-letter admin routes), mounted before the JSON 404 and error handlers. */
  routes?: ReadonlyArray<{ path: string; router: Router }>;
  /** Counts accepted and refused requests and serves GET /metrics. */
  metrics?: ApiMetrics;
}

/**
 * The HTTP surface as an express application, from its collaborators; no I/O of its own.
 * createHttpHandler puts the fast path for POSTs of work in front of it.
 */
export function createApp(deps: AppDeps, parts: AppParts = appParts(deps)): Express {
  const { answerError } = parts;
  const readiness = deps.readiness ?? storeOnlyProbe(deps.store);
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);

  const metrics = deps.metrics;
  // The request routes come first: POST processData is nearly all of the traffic, and each layer
  // it passes on the way costs a path match.
  addRequestRoutes(app, parts.routeDeps, parts.accept);
  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });
  app.get('/readyz', async (_req, res) => {
    const report = await readiness.report();
    res.status(report.ready ? 200 : 503).json({ status: report.ready ? 'ready' : 'not ready', checks: report.checks });
  });
  if (metrics) {
    app.get('/metrics', async (req, res) => {
      await writeMetrics(metrics.registry, res, metricNamesOf(req.originalUrl));
    });
  }
  for (const { path, router } of deps.routes ?? []) app.use(path, router);

  app.use((req: Request, res: Response) => {
    res.status(404).json({ error: { code: 'NOT_FOUND', message: `no route for ${req.method} ${req.path}` } });
  });
  // Express 5 routes async handler rejections here; four parameters mark an error handler.
  app.use((err: unknown, req: Request, res: Response, next: NextFunction) => {
    if (res.headersSent) {
      next(err);
      return;
    }
    answerError(err, req, res, { path: req.route?.path ?? req.path, acceptRoute: req.method === 'POST' && isAcceptRoute(req) });
  });
  return app;
}

/**
 * The HTTP surface as node's request listener: POST /api/v1/processData and POST
 * /api/v1/jobs/<public job> in their common form on the fast path (fast-accept.ts), everything
 * else through createApp's express application, with the same code behind both.
 */
export function createHttpHandler(deps: AppDeps): (req: IncomingMessage, res: ServerResponse) => void {
  const parts = appParts(deps);
  const app = createApp(deps, parts);
  const defaultJob = deps.defaultJob;
  const publicJobs = deps.publicJobs ?? {};
  const jobsPrefix = `${API_PREFIX}/jobs/`;
  const fast = fastAccept({
    // Exact paths only: a query string, a trailing slash or an escaped name go to express.
    jobAt: (url) => {
      if (url === ACCEPT_PATH) return defaultJob;
      if (!url.startsWith(jobsPrefix)) return undefined;
      const name = url.slice(jobsPrefix.length);
      return JOB_NAME.test(name) ? publicJobNamed(publicJobs, name) : undefined;
    },
    limitBytes: deps.config.bodyLimitBytes,
    accept: parts.accept,
    fail: (err, req, res) => parts.answerError(err, req, res, { path: req.url === ACCEPT_PATH ? ACCEPT_PATH : JOBS_PATH, acceptRoute: true }),
  });
  return (req, res) => {
    if (!fast(req, res)) app(req, res);
  };
}

/** A job name as it may stand in a URL unescaped. */
const JOB_NAME = /^[\w.-]+$/;

type AnswerError = (err: unknown, req: IncomingMessage, res: ServerResponse, where: { path: string; acceptRoute: boolean }) => void;

/** What the express application and the fast path share: the accept step and the error answers. */
interface AppParts {
  accept: AcceptBody;
  answerError: AnswerError;
  routeDeps: RequestRouteDeps;
}

function appParts(deps: AppDeps): AppParts {
  const acceptor =
    deps.acceptor ??
    new RequestAcceptor({
      publisher: deps.publisher,
      store: deps.store,
      logger: deps.logger,
      publishTimeoutMs: deps.config.publishTimeoutMs,
      defaultJob: deps.defaultJob?.name,
    });
  const routeDeps: RequestRouteDeps = {
    acceptor,
    defaultJob: deps.defaultJob,
    publicJobs: deps.publicJobs ?? {},
    schemaOf: deps.schemaOf,
    store: deps.store,
    bodyLimitBytes: deps.config.bodyLimitBytes,
    accepted: deps.metrics?.accepted,
    logger: deps.logger,
  };
  return { accept: acceptBodies(routeDeps), answerError: errorAnswers(deps), routeDeps };
}

/** The JSON error answer, counted and logged (one line per code per second for refusals). */
function errorAnswers(deps: AppDeps): AnswerError {
  const log = deps.logger.child({ component: 'http' });
  const metrics = deps.metrics;
  const refusals = new Map<string, { at: number; suppressed: number }>();
  return (err, req, res, where) => {
    const answer = answerFor(err);
    if (metrics && where.acceptRoute) metrics.rejectedWith(answer.code);
    if (answer.status >= 500) {
      const fields = { method: req.method, path: where.path, status: answer.status, code: answer.code };
      if (answer.status === 500) log.error({ ...fields, err }, 'request failed');
      else {
        // Under overload every request is refused the same way: one line per code per second,
        // with the count of those left out, instead of thousands of identical lines.
        const seen = refusals.get(answer.code) ?? { at: 0, suppressed: 0 };
        const now = Date.now();
        if (now - seen.at >= 1000) {
          log.warn({ ...fields, reason: (err as { reason?: string }).reason, suppressed: seen.suppressed }, 'request refused');
          refusals.set(answer.code, { at: now, suppressed: 0 });
        } else {
          seen.suppressed++;
          refusals.set(answer.code, seen);
        }
      }
    }
    if (answer.retryAfter !== undefined) res.setHeader('Retry-After', String(answer.retryAfter));
    sendJson(res, answer.status, { error: { code: answer.code, message: answer.message } });
  };
}

/** The routes that accept work, whose refusals are counted by code. */
function isAcceptRoute(req: Request): boolean {
  const path = req.route?.path ?? req.originalUrl.split('?')[0];
  return path === ACCEPT_PATH || path === JOBS_PATH;
}

function storeOnlyProbe(store: ResultStore): ReadinessProbe {
  return {
    async report(): Promise<ReadinessReport> {
      const storeCheck = await store.ping().then(
        () => ({ ok: true }),
        (err: unknown) => ({ ok: false, detail: `store unreachable: ${(err as Error).message}` }),
      );
      return {
        ready: storeCheck.ok,
        checks: { broker: { ok: true, detail: 'not monitored' }, store: storeCheck, topology: { ok: true, detail: 'not monitored' } },
      };
    },
  };
}
