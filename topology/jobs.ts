import type { TopologyProblem } from '../core/index.ts';
import type { Topology } from './load.ts';

/**
 * Jobs: queues that carry a kind of work. A producer enqueues by the job's name, a worker consumes
 * its queue with the job's handler, and the API accepts the public ones over HTTP. Each job keeps
 * the retry tiers, delivery limit and dead letters of its queue, and its own result route.
 */
export interface CompiledJob {
  /** The name producers and the HTTP route use: the topology's `job.name`, else the queue's name. */
  name: string;
  queue: string;
  /** Accepted at the HTTP API's POST /api/v1/jobs/:job. */
  public: boolean;
  /** Where producers publish (the queue's first binding). */
  publish: { exchange: string; routingKey: string };
  /** Where the worker publishes results, or undefined for fire-and-forget work. */
  results: { queue: string; exchange: string; routingKey: string } | undefined;
}

/** The results queue of the tutorial: a topology that marks no job gets its jobs inferred (below). */
export const TUTORIAL_RESULTS_QUEUE = 'processing.results';

/**
 * The jobs a topology declares. A topology written before jobs existed (no queue says `job`) keeps
 * working: each bound queue but processing.results is a job named by its queue, sending results
 * to processing.results when the topology has it; such inferred jobs are not public.
 * Call on a topology checkJobs() found sound.
 */
export function compileJobs(topo: Topology): Record<string, CompiledJob> {
  const jobs: Record<string, CompiledJob> = {};
  const explicit = Object.values(topo.queues).some((q) => q.job !== undefined);
  for (const [queue, q] of Object.entries(topo.queues)) {
    const publish = firstBinding(q.bind);
    if (!publish) continue;
    if (explicit) {
      if (q.job === undefined) continue;
      const spec = q.job === true ? { public: false, name: undefined, results: undefined } : q.job;
      const results = spec.results === undefined || spec.results === false ? undefined : resultRoute(topo, spec.results);
      const name = spec.name ?? queue;
      jobs[name] = { name, queue, public: spec.public, publish, results };
    } else if (queue !== TUTORIAL_RESULTS_QUEUE) {
      jobs[queue] = { name: queue, queue, public: false, publish, results: resultRoute(topo, TUTORIAL_RESULTS_QUEUE) };
    }
  }
  return jobs;
}

/** What makes a job unusable, named by file and key. */
export function checkJobs(topo: Topology): TopologyProblem[] {
  const problems: TopologyProblem[] = [];
  const names = new Map<string, string>();
  for (const [queue, q] of Object.entries(topo.queues)) {
    if (q.job === undefined) continue;
    const at = `queues.${queue}.job`;
    const spec = q.job === true ? { public: false, name: undefined, results: undefined } : q.job;
    if (!firstBinding(q.bind)) {
      problems.push({ file: q.file, path: `queues.${queue}.bind`, message: 'expected a binding: producers publish a job through its queue binding' });
    }
    if (!q.deadLetter) {
      problems.push({
        file: q.file,
        path: `queues.${queue}.deadLetter`,
        message: 'expected deadLetter: a job ends in its dead-letter queue when it fails for good',
      });
    }
    if (typeof spec.results === 'string') {
      const target = topo.queues[spec.results];
      if (!target) problems.push({ file: q.file, path: `${at}.results`, message: `expected a queue of the topology or false, got "${spec.results}"` });
      else if (!firstBinding(target.bind)) {
        problems.push({
          file: q.file,
          path: `${at}.results`,
          message: `expected a bound queue: "${spec.results}" has no binding for results to be published through`,
        });
      }
    }
    if (spec.public && (spec.results === undefined || spec.results === false)) {
      problems.push({ file: q.file, path: `${at}.results`, message: 'expected a results queue for a public job: the API reports its status from its results' });
    }
    const name = spec.name ?? queue;
    const taken = names.get(name);
    if (taken) problems.push({ file: q.file, path: `${at}.name`, message: `expected a unique job name: "${name}" is also the job of queue "${taken}"` });
    names.set(name, queue);
  }
  return problems;
}

function firstBinding(bind: Topology['queues'][string]['bind']): { exchange: string; routingKey: string } | undefined {
  const first = Array.isArray(bind) ? bind[0] : bind;
  return first ? { exchange: first.exchange, routingKey: first.routingKey } : undefined;
}

function resultRoute(topo: Topology, queue: string): CompiledJob['results'] {
  const route = firstBinding(topo.queues[queue]?.bind);
  return route ? { queue, ...route } : undefined;
}
