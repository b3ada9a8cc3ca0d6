import { ConfigError, createMetricsRegistry, type Logger, type Registry } from '../core/index.ts';
import type { CompiledTopology } from '../topology/index.ts';
import { DEFAULT_REQUESTS_QUEUE } from '../topology/index.ts';
import type { Handler } from './handler.ts';
import { type ResultTarget, resolveWorkerRoutes } from './routes.ts';
import { Worker } from './worker.ts';

export interface WorkerOptions<TData = unknown, TResult = unknown> {
  handler: Handler<TData, TResult>;
  /** Broker URLs, amqp:// or amqps://; several are tried in turn (a cluster). */
  urls: readonly string[];
  /** The compiled topology (topology's loadCompiledTopology()); every name comes from it. */
  topology: CompiledTopology;
  logger: Logger;
  /** The queue to consume; default processing.requests. */
  queue?: string;
  /** Where results go; default the binding of processing.results. `false`: the jobs produce no
   * result message (fire-and-forget work), and a message is acked once its handler returned. */
  results?: ResultTarget | false;
  /** Messages in flight at once in this process (prefetch); default 4. */
  concurrency?: number;
  /** A handler running longer fails with TimeoutError (retried); default 30000. */
  timeoutMs?: number;
  /** How long stop() lets in-flight handlers finish before requeueing them; default 10000. */
  shutdownGraceMs?: number;
  /** How long a publish may wait for the broker's confirm; default 30000. */
  publishTimeoutMs?: number;
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
  handler: Handler;
  urls: readonly string[];
  logger: Logger;
  concurrency: number;
  timeoutMs: number;
  shutdownGraceMs: number;
  publishTimeoutMs: number;
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
  const routes = resolveWorkerRoutes(options.topology, options.queue ?? DEFAULT_REQUESTS_QUEUE, options.results);
  const settings: WorkerSettings = {
    // The handler's data type is the caller's promise about the message body; the runtime only
    // guarantees `data` is present (decodeRequest), so the cast is where that promise is taken.
    handler: options.handler as Handler,
    urls: [...options.urls],
    logger: options.logger,
    concurrency: int('concurrency', options.concurrency, 4, 1, 10_000),
    timeoutMs: int('timeoutMs', options.timeoutMs, 30_000, 1, 86_400_000),
    shutdownGraceMs: int('shutdownGraceMs', options.shutdownGraceMs, 10_000, 0, 86_400_000),
    publishTimeoutMs: int('publishTimeoutMs', options.publishTimeoutMs, 30_000, 100, 86_400_000),
    connectionName: options.connectionName,
    metrics: options.metrics ?? createMetricsRegistry(),
  };
  return new Worker(Object.freeze(settings), routes);
}

function int(name: string, value: number | undefined, def: number, min: number, max: number): number {
  if (value === undefined) return def;
  if (!Number.isInteger(value) || value < min || value > max) throw new ConfigError(name, `expected an integer from ${min} to ${max} (got ${value})`);
  return value;
}
