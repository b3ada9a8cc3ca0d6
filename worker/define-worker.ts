import { ConfigError, createMetricsRegistry, type Logger, type Registry } from '../core/index.ts';
import type { CompiledTopology } from '../topology/index.ts';
import { DEFAULT_REQUESTS_QUEUE, jobFor } from '../topology/index.ts';
import { decoderFor } from './decode.ts';
import type { JobDefinition } from './define-job.ts';
import type { Handler } from './handler.ts';
import { HANDLER_PREFETCH_FACTOR } from './handler-slots.ts';
import { DEFAULT_RESULT_BATCH } from './result-batcher.ts';
import { type ResultTarget, resolveJobRoutes, resolveWorkerRoutes } from './routes.ts';
import { Worker, type WorkerJob } from './worker.ts';

export interface WorkerOptions<TData = unknown, TResult = unknown> {
  /**
   * The jobs this process runs (defineJob), each on its own queue with its own prefetch; one
   * connection and one publisher serve them all. Or, for a single queue, `handler` (+ `queue`).
   */
  jobs?: readonly JobDefinition[];
  handler?: Handler<TData, TResult>;
  /** Broker URLs, amqp:// or amqps://; several are tried in turn (a cluster). */
  urls: readonly string[];
  /** The compiled topology (topology's loadCompiledTopology()); every name comes from it. */
  topology: CompiledTopology;
  logger: Logger;
  /** With `handler`: the queue to consume; default processing.requests. */
  queue?: string;
  /** With `handler`: where results go; default the binding of processing.results. `false`: the jobs produce no
   * result message (fire-and-forget work), and a message is acked once its handler returned. */
  results?: ResultTarget | false;
  /** Handlers running at once per job in this process (prefetch: four times that), unless the job sets its own; default 4. */
  concurrency?: number;
  /**
   * Messages a job holds at once in this process (the AMQP prefetch), unless the job sets its
   * own; at least the job's concurrency; default four times it (HANDLER_PREFETCH_FACTOR).
   */
  prefetch?: number;
  /** A handler running longer fails with TimeoutError (retried), unless the job sets its own; default 30000. */
  timeoutMs?: number;
  /** How long stop() lets in-flight handlers finish before requeueing them; default 10000. */
  shutdownGraceMs?: number;
  /** How long a publish may wait for the broker's confirm; default 30000. */
  publishTimeoutMs?: number;
  /**
   * Results that finish while the previous results message awaits its confirm leave together in
   * the next one, of up to this many (content type application/vnd.warren.results+json; the API
   * stores both forms); default 100, 1 sends each result as a message of its own.
   */
  resultBatch?: number;
  /** The name shown in the broker's connection list; default "warren-worker <host> pid <pid>". */
  connectionName?: string;
  /**
   * The Prometheus registry the worker records its metrics in (several workers may share one);
   * default a new registry with the process metrics. Serve it with serveMetrics().
   */
  metrics?: Registry;
}

/** Options after validation: nothing downstream re-checks them. */
export interface WorkerSettings {
  jobs: readonly WorkerJob[];
  urls: readonly string[];
  logger: Logger;
  shutdownGraceMs: number;
  publishTimeoutMs: number;
  resultBatch: number;
  connectionName: string | undefined;
  metrics: Registry;
}

/**
 * Defines a worker: validates the options once and resolves every route from the topology.
 * Throws ConfigError naming the option. Call start() on the result to consume.
 */
export function defineWorker<TData = unknown, TResult = unknown>(options: WorkerOptions<TData, TResult>): Worker {
  if (options.urls.length === 0) throw new ConfigError('urls', 'expected at least one amqp:// or amqps:// URL');
  for (const u of options.urls) {
    if (!/^amqps?:\/\//.test(u)) throw new ConfigError('urls', 'expected amqp:// or amqps:// URLs');
  }
  const concurrency = int('concurrency', options.concurrency, 4, 1, 10_000);
  const timeoutMs = int('timeoutMs', options.timeoutMs, 30_000, 1, 86_400_000);
  const prefetch = options.prefetch === undefined ? undefined : int('prefetch', options.prefetch, 0, 1, 65_535);
  const jobs = options.jobs ? jobsOf(options.jobs, options.topology, concurrency, timeoutMs, prefetch) : [singleJob(options, concurrency, timeoutMs, prefetch)];
  const settings: WorkerSettings = {
    jobs,
    urls: [...options.urls],
    logger: options.logger,
    shutdownGraceMs: int('shutdownGraceMs', options.shutdownGraceMs, 10_000, 0, 86_400_000),
    publishTimeoutMs: int('publishTimeoutMs', options.publishTimeoutMs, 30_000, 100, 86_400_000),
    resultBatch: int('resultBatch', options.resultBatch, DEFAULT_RESULT_BATCH, 1, 10_000),
    connectionName: options.connectionName,
    metrics: options.metrics ?? createMetricsRegistry(),
  };
  return new Worker(Object.freeze(settings));
}

function jobsOf(defs: readonly JobDefinition[], topology: CompiledTopology, concurrency: number, timeoutMs: number, prefetch: number | undefined): WorkerJob[] {
  if (defs.length === 0) throw new ConfigError('jobs', 'expected at least one job (defineJob)');
  const seen = new Set<string>();
  return defs.map((def) => {
    const job = jobFor(topology, def.queue);
    if (seen.has(job.queue)) throw new ConfigError('jobs', `queue "${job.queue}" has two handlers; one process runs one handler per job`);
    seen.add(job.queue);
    const jobConcurrency = def.concurrency ?? concurrency;
    return {
      name: job.name,
      routes: resolveJobRoutes(topology, job),
      // The handler's data type is the job's promise about its messages: the schema (when given)
      // checks it, the cast is where it is taken.
      handler: def.handler as Handler,
      decode: decoderFor(def.envelope, def.schema),
      concurrency: jobConcurrency,
      prefetch: prefetchFor(job.name, jobConcurrency, def.prefetch ?? prefetch),
      timeoutMs: def.timeoutMs ?? timeoutMs,
    };
  });
}

function singleJob<TData, TResult>(options: WorkerOptions<TData, TResult>, concurrency: number, timeoutMs: number, prefetch: number | undefined): WorkerJob {
  if (typeof options.handler !== 'function') throw new ConfigError('handler', 'expected a handler function, or jobs (defineJob)');
  const queue = options.queue ?? DEFAULT_REQUESTS_QUEUE;
  return {
    name: queue,
    routes: resolveWorkerRoutes(options.topology, queue, options.results),
    handler: options.handler as Handler,
    decode: decoderFor('warren', undefined),
    concurrency,
    prefetch: prefetchFor(queue, concurrency, prefetch),
    timeoutMs,
  };
}

/** The prefetch given, at least the concurrency, else HANDLER_PREFETCH_FACTOR times the concurrency. */
function prefetchFor(job: string, concurrency: number, prefetch: number | undefined): number {
  if (prefetch === undefined) return concurrency * HANDLER_PREFETCH_FACTOR;
  if (prefetch < concurrency) throw new ConfigError('prefetch', `expected at least the concurrency of job "${job}", ${concurrency} (got ${prefetch})`);
  return prefetch;
}

function int(name: string, value: number | undefined, def: number, min: number, max: number): number {
  if (value === undefined) return def;
  if (!Number.isInteger(value) || value < min || value > max) throw new ConfigError(name, `expected an integer from ${min} to ${max} (got ${value})`);
  return value;
}
