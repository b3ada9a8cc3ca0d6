import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConfigError } from '../core/index.ts';
import { type CompiledTopology, compileTopology } from './compile.ts';
import type { CompiledJob } from './jobs.ts';
import { loadTopology } from './load.ts';

export * from './apply.ts';
export * from './compile.ts';
export * from './jobs.ts';
export * from './live.ts';
export * from './load.ts';
export * from './plan.ts';
export { parseDuration } from './schema.ts';

/** The topology the project ships. */
export const DEFAULT_TOPOLOGY = resolve(dirname(fileURLToPath(import.meta.url)), 'processing.yaml');

/** The main queue of the shipped topology and the queue results go to. */
export const DEFAULT_REQUESTS_QUEUE = 'processing.requests';
export const DEFAULT_RESULTS_QUEUE = 'processing.results';

/** The job a name or a queue names, or a clear error listing the jobs the topology has. */
export function jobFor(compiled: CompiledTopology, nameOrQueue: string): CompiledJob {
  const job = compiled.jobs[nameOrQueue] ?? Object.values(compiled.jobs).find((j) => j.queue === nameOrQueue);
  if (!job) throw new ConfigError('job', `no job "${nameOrQueue}" in the topology (it declares: ${Object.keys(compiled.jobs).join(', ') || 'no jobs'})`);
  return job;
}

/** Loads and compiles a topology file or folder (default: the shipped topology). */
export function loadCompiledTopology(path: string = DEFAULT_TOPOLOGY): CompiledTopology {
  return compileTopology(loadTopology(path));
}
