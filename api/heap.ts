import { setFlagsFromString } from 'node:v8';

/**
 * How the API keeps its resident set small under load, at about the same throughput (measured
 * with the embedded store, 50 connections for 10 s, the API from the build: bench/README.md, "API
 * memory"). V8's defaults let the main thread's heap reach 95 MiB under that load around a live
 * heap of ~20 MiB: a young generation grown to 32 MiB and old-generation garbage to 60 MiB.
 *
 * - API_NODE_OPTIONS (`--max-semi-space-size=4`, a start-up flag: V8 sizes the young generation
 *   when the process starts, and ignores it set later) keeps the young generation at 8 MiB (V8
 *   grows it to 32 MiB under this load) for more, cheaper scavenges. Whatever starts the API
 *   passes it: `warren start`, the compose file and the Kubernetes manifests (NODE_OPTIONS), and
 *   the benchmark.
 * - API_HEAP_FLAGS (`--heap-growing-percent=30`), which V8 reads at each full GC, so `warren api`
 *   sets it itself (tuneApiHeap): after a full GC the old generation may grow by 30% of what
 *   survived before the next one, instead of by a factor of up to 4.
 *
 * Peak RSS under that load (one run each, 3 or more per setting): 325-332 MiB with V8's defaults,
 * 288-342 MiB with API_HEAP_FLAGS alone, 247-294 MiB with both (median 268, accepted req/s as with
 * the defaults). `--max-semi-space-size=2` saved another 15-25 MiB for 10-30% fewer req/s in paired
 * runs, so 4 it is. Neither caps the heap: `--max-old-space-size=128` also gave ~255 MiB, but
 * a burst of large bodies (API_MAX_IN_FLIGHT x API_BODY_LIMIT) could then crash the process.
 */
export const API_NODE_OPTIONS = '--max-semi-space-size=4';

/** The V8 settings `warren api` applies to itself at start (see API_NODE_OPTIONS). */
export const API_HEAP_FLAGS = ['--heap-growing-percent=30'] as const;

const USER_GC_FLAG = /--(heap-growing-percent|optimize-for-size)\b/;

/**
 * Applies API_HEAP_FLAGS unless `node` was started with a flag that tunes the same thing, on its
 * command line or in NODE_OPTIONS (the user's own choice wins; V8 reads both before this runs, and
 * process.execArgv does not list NODE_OPTIONS); returns what it set. For an API embedded in a
 * program of your own, call it first thing.
 */
export function tuneApiHeap(execArgv: readonly string[] = process.execArgv, nodeOptions: string | undefined = process.env.NODE_OPTIONS): readonly string[] {
  if ([...execArgv, ...(nodeOptions ?? '').split(/\s+/)].some((a) => USER_GC_FLAG.test(a))) return [];
  for (const flag of API_HEAP_FLAGS) setFlagsFromString(flag);
  return API_HEAP_FLAGS;
}

/** NODE_OPTIONS for an API process: the caller's own, with API_NODE_OPTIONS unless it sizes the young generation already. */
export function apiNodeOptions(current: string | undefined): string {
  const own = (current ?? '').trim();
  if (/--max-semi-space-size\b/.test(own)) return own;
  return own ? `${own} ${API_NODE_OPTIONS}` : API_NODE_OPTIONS;
}
