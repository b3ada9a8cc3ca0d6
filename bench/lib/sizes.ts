import type { PeerOptions } from '../sections/peers.ts';

/** How much each section runs: the full run of record, or `--quick` for a check that it works. */
export function benchSizes(quick: boolean) {
  const rounds = quick ? 1 : 5;
  return {
    messages: quick ? 10_000 : 40_000,
    /** Rounds of each pair section (odd: the median round is reported). */
    rounds,
    httpSeconds: quick ? 3 : 10,
    httpWarmupSeconds: quick ? 1 : 3,
    /** Rounds of each HTTP section, bare express and Warren alternating first (odd: the median round is reported). */
    httpRounds: quick ? 1 : 3,
    overloadSeconds: quick ? 5 : 20,
    overloadWarmupSeconds: quick ? 1 : 2,
    overloadMaxWarmupSeconds: quick ? 5 : 10,
    e2eSeconds: quick ? 3 : 10,
    scalingPerReplica: quick ? 250 : 1500,
    /** Offered rates of the sustained ramp, ascending. */
    sustainedRates: quick ? [100, 200, 400, 800] : [250, 500, 750, 1000, 1500, 2000, 2500, 3000, 4000],
    sustainedStepSeconds: quick ? 3 : 10,
    sustainedWarmupSeconds: quick ? 1 : 3,
    sustainedConnections: 100,
    /**
     * The peers section's options, the same for `npm run bench` and `one-section.ts peers`: jobs a
     * timed run, jobs through each side before its timed runs, rounds, enqueue window, handlers.
     */
    peers: { count: quick ? 5000 : 20_000, warmup: quick ? 1000 : 10_000, rounds, window: 256, concurrency: 50 } satisfies PeerOptions,
  } as const;
}

/** PostgreSQL of the sustained ramp's second store, unless BENCH_DATABASE_URL says otherwise. */
export const DEFAULT_BENCH_DATABASE_URL = 'postgresql://postgres@127.0.0.1:5432/test';
