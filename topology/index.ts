import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type CompiledTopology, compileTopology } from './compile.ts';
import { loadTopology } from './load.ts';

export * from './apply.ts';
export * from './compile.ts';
export * from './live.ts';
export * from './load.ts';
export * from './plan.ts';
export { parseDuration } from './schema.ts';

/** The topology the project ships. */
export const DEFAULT_TOPOLOGY = resolve(dirname(fileURLToPath(import.meta.url)), 'processing.yaml');

/** The main queue of the shipped topology and the queue results go to. */
export const DEFAULT_REQUESTS_QUEUE = 'processing.requests';
export const DEFAULT_RESULTS_QUEUE = 'processing.results';

/** Loads and compiles `TOPOLOGY` (a file or folder), or the shipped topology. */
export function loadCompiledTopology(path: string = process.env.TOPOLOGY || DEFAULT_TOPOLOGY): CompiledTopology {
  return compileTopology(loadTopology(path));
}
