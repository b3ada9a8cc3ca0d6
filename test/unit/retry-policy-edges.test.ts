import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { QueueRoutes } from '../../topology/index.ts';
import { decideFailure, retryPolicyOf } from '../../worker/index.ts';

/**
 * Edges of the retry policy the compiled topology cannot produce today (the file schema wants at
 * least one delay) but a hand-built or future topology can: a retry block without tiers is no
 * retry at all, not a retry block with nowhere to wait.
 */
test('a retry block without tiers means one attempt and no retry exchange', () => {
  const routes: QueueRoutes = { queue: 'q', type: 'quorum', retry: { exchange: 'q.retry', maxAttempts: 5, tiers: [] } };
  assert.equal(retryPolicyOf(routes), { maxAttempts: 1, exchange: undefined, tiers: [] });
});

test('a policy with attempts left but no tier to wait in dead-letters instead of retrying nowhere', () => {
  assert.equal(decideFailure({ priorFailures: 0, permanent: false, policy: { maxAttempts: 3, exchange: 'q.retry', tiers: [] } }), {
    action: 'dead',
    reason: 'max-attempts',
    attempts: 1,
  });
});

test.run();
