import type { DeadReason } from '../core/index.ts';
import type { QueueRoutes, RetryTier } from '../topology/index.ts';

/**
 * The retry decision, kept pure and apart from the consume loop (as p-retry does) so it can be
 * tested on its own. Its only memory is the attempt count in the message's own headers: a
 * process that restarts forgets nothing, unlike an in-process redelivery counter.
 */

export interface RetryPolicy {
  /** Attempts in all, the first one included (1 means no retry). */
  maxAttempts: number;
  /** Retry exchange; undefined when the queue has no retry tiers. */
  exchange: string | undefined;
  tiers: readonly RetryTier[];
}

export type FailureDecision =
  /** Wait in `tier`, then attempt again; `failures` goes into the attempt header. */
  | { action: 'retry'; failures: number; tier: RetryTier }
  /** Stop: dead-letter with `reason` after `attempts` attempts. */
  | { action: 'dead'; reason: Extract<DeadReason, 'permanent' | 'max-attempts'>; attempts: number };

/** The policy a queue's compiled routes describe; no retry block means one attempt. */
export function retryPolicyOf(routes: QueueRoutes): RetryPolicy {
  if (!routes.retry || routes.retry.tiers.length === 0) return { maxAttempts: 1, exchange: undefined, tiers: [] };
  return { maxAttempts: routes.retry.maxAttempts, exchange: routes.retry.exchange, tiers: routes.retry.tiers };
}

/**
 * What to do with a message whose handler failed.
 *
 * @param priorFailures attempts that already failed before this one (the x-warren-attempt header)
 * @param permanent whether the error says retrying cannot help (PermanentError)
 */
export function decideFailure(input: { priorFailures: number; permanent: boolean; policy: RetryPolicy }): FailureDecision {
  const failures = Math.max(0, Math.floor(input.priorFailures)) + 1;
  if (input.permanent) return { action: 'dead', reason: 'permanent', attempts: failures };
  const tier = tierFor(input.policy, failures);
  if (failures >= input.policy.maxAttempts || tier === undefined) return { action: 'dead', reason: 'max-attempts', attempts: failures };
  return { action: 'retry', failures, tier };
}

/** Failure N waits in tier N; failures past the last tier reuse the last one. */
export function tierFor(policy: RetryPolicy, failures: number): RetryTier | undefined {
  const { tiers } = policy;
  if (tiers.length === 0 || failures < 1) return undefined;
  return tiers[Math.min(failures, tiers.length) - 1];
}
