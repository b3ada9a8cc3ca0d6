import { ConfigError } from '../core/index.ts';
import { type CompiledJob, type CompiledTopology, DEFAULT_RESULTS_QUEUE } from '../topology/index.ts';
import type { TopologyNeeds } from './check-topology.ts';
import type { Route } from './envelopes.ts';
import { type RetryPolicy, retryPolicyOf } from './retry-policy.ts';

/**
 * Every name the worker uses, taken from the compiled topology (never spelled in code): the queue
 * it consumes, where results go, the retry tiers and the dead-letter exchange.
 */
export interface WorkerRoutes {
  queue: string;
  /** Where results go; undefined for a worker whose jobs produce no result message. */
  result: Route | undefined;
  /** The queue results land in, when known (checked at startup). */
  resultsQueue: string | undefined;
  retry: RetryPolicy;
  deadLetter: Route & { queue: string };
}

export interface ResultTarget {
  /** A queue of the topology whose binding is the result route (default processing.results). */
  queue?: string;
  /** Or an explicit exchange and routing key. */
  route?: Route;
}

/** Resolves and validates the routes once; errors name the option and what the topology has. */
export function resolveWorkerRoutes(compiled: CompiledTopology, queue: string, result: ResultTarget | false = {}): WorkerRoutes {
  const known = Object.keys(compiled.routes).join(', ') || 'none';
  const routes = compiled.routes[queue];
  if (!routes) throw new ConfigError('queue', `queue "${queue}" is not in the topology (it declares: ${known})`);
  if (!routes.deadLetter) {
    throw new ConfigError('queue', `queue "${queue}" has no deadLetter in the topology; the worker needs one for malformed and exhausted messages`);
  }
  const retry = retryPolicyOf(routes);
  let resultRoute: Route | undefined;
  let resultsQueue: string | undefined;
  if (result === false) {
    resultRoute = undefined;
  } else if (result.route) {
    resultRoute = result.route;
  } else {
    resultsQueue = result.queue ?? DEFAULT_RESULTS_QUEUE;
    const target = compiled.routes[resultsQueue];
    if (!target?.publish) {
      throw new ConfigError('results', `results queue "${resultsQueue}" is not a bound queue of the topology (it declares: ${known})`);
    }
    resultRoute = target.publish;
  }
  return {
    queue,
    result: resultRoute,
    resultsQueue,
    retry,
    deadLetter: { exchange: routes.deadLetter.exchange, routingKey: routes.deadLetter.routingKey, queue: routes.deadLetter.queue },
  };
}

/** The routes of a job of the topology: its queue's tiers and dead letters, its own result route. */
export function resolveJobRoutes(compiled: CompiledTopology, job: CompiledJob): WorkerRoutes {
  const routes = resolveWorkerRoutes(compiled, job.queue, false);
  if (!job.results) return routes;
  return { ...routes, result: { exchange: job.results.exchange, routingKey: job.results.routingKey }, resultsQueue: job.results.queue };
}

/** What must exist on the broker before the worker consumes. */
export function topologyNeeds(routes: WorkerRoutes): TopologyNeeds {
  const queues = [routes.queue, ...routes.retry.tiers.map((t) => t.queue), routes.deadLetter.queue];
  if (routes.resultsQueue) queues.push(routes.resultsQueue);
  const exchanges = [routes.deadLetter.exchange];
  if (routes.result) exchanges.push(routes.result.exchange);
  if (routes.retry.exchange) exchanges.push(routes.retry.exchange);
  return { queues, exchanges };
}
