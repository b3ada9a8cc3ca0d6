/** One round of a pair section: Warren's figure and the baseline's, measured seconds apart. */
export interface PairRound {
  warren: number;
  raw: number;
}

/**
 * The round whose warren/raw ratio is the median of the rounds (the upper middle one for an even
 * count). The ratio is taken within each round, where both sides met the same machine state; the
 * best figure of each side, taken from different rounds, paired one side's lucky moment with the
 * other's.
 */
export function medianRound<R extends PairRound>(rounds: readonly R[]): R {
  if (rounds.length === 0) throw new Error('medianRound: no rounds');
  const sorted = [...rounds].sort((a, b) => a.warren / a.raw - b.warren / b.raw);
  return sorted[Math.floor(sorted.length / 2)] as R;
}
