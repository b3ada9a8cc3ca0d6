/** One round of a pair section: Warren's figure and the baseline's, measured seconds apart. */
export interface Pair {
  warren: number;
  raw: number;
}

/** Which side of a pair runs first: alternated between rounds, so neither always meets the queue the other just filled and purged. */
export type Order = 'raw-first' | 'warren-first';

/** Runs the two sides of one round in `order`; each resolves with its figure (or its whole result, for a caller that keeps it). */
export async function inOrder<R = number, W = number>(order: Order, raw: () => Promise<R>, warren: () => Promise<W>): Promise<{ raw: R; warren: W }> {
  if (order === 'raw-first') {
    const r = await raw();
    return { raw: r, warren: await warren() };
  }
  const w = await warren();
  return { raw: await raw(), warren: w };
}

/**
 * `count` rounds of a pair; with `alternate`, the side that runs first changes every round
 * (recorded as `order`). A round may carry more than its two figures (P), kept as it came.
 */
export async function runRounds<P extends Pair>(count: number, run: (order: Order) => Promise<P>, alternate = false): Promise<Array<P & { order?: Order }>> {
  const all: Array<P & { order?: Order }> = [];
  for (let i = 0; i < count; i++) {
    const order: Order = alternate && i % 2 === 1 ? 'warren-first' : 'raw-first';
    all.push({ ...(await run(order)), ...(alternate ? { order } : {}) });
  }
  return all;
}

/**
 * The round whose warren/raw ratio is the median of the rounds (the upper middle one for an even
 * count). The ratio is taken within each round, where both sides met the same machine state; the
 * best figure of each side, taken from different rounds, paired one side's lucky moment with the
 * other's.
 */
export function medianRound<R extends Pair>(rounds: readonly R[]): R {
  if (rounds.length === 0) throw new Error('medianRound: no rounds');
  const sorted = [...rounds].sort((a, b) => a.warren / a.raw - b.warren / b.raw);
  return sorted[Math.floor(sorted.length / 2)] as R;
}
