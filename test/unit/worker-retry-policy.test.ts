import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { compileTopology, parseTopology, routesFor } from '../../topology/index.ts';
import { decideFailure, type RetryPolicy, retryPolicyOf, tierFor } from '../../worker/index.ts';

const tiers = [
  { tier: 1, queue: 'q.retry.1', routingKey: 'q.retry.1', delayMs: 1000 },
  { tier: 2, queue: 'q.retry.2', routingKey: 'q.retry.2', delayMs: 10_000 },
];
const policy: RetryPolicy = { maxAttempts: 5, exchange: 'q.retry', tiers };

test('the first failure waits in tier 1 and carries attempt 1', () => {
  const d = decideFailure({ priorFailures: 0, permanent: false, policy });
  assert.equal(d, { action: 'retry', failures: 1, tier: tiers[0] });
});

test('failure N waits in tier N', () => {
  const d = decideFailure({ priorFailures: 1, permanent: false, policy });
  assert.is(d.action, 'retry');
  if (d.action === 'retry') {
    assert.is(d.failures, 2);
    assert.is(d.tier.queue, 'q.retry.2');
  }
});

test('failures past the last tier reuse the last tier', () => {
  const d = decideFailure({ priorFailures: 3, permanent: false, policy });
  assert.is(d.action, 'retry');
  if (d.action === 'retry') {
    assert.is(d.failures, 4);
    assert.is(d.tier.tier, 2);
  }
  assert.is(tierFor(policy, 17)?.tier, 2);
});

test('the failure that reaches maxAttempts dead-letters with reason max-attempts', () => {
  assert.equal(decideFailure({ priorFailures: 4, permanent: false, policy }), { action: 'dead', reason: 'max-attempts', attempts: 5 });
  // A header beyond the cap (a policy lowered since the copy was made) still ends it.
  assert.equal(decideFailure({ priorFailures: 9, permanent: false, policy }), { action: 'dead', reason: 'max-attempts', attempts: 10 });
});

test('a permanent error dead-letters at once, whatever the attempt', () => {
  assert.equal(decideFailure({ priorFailures: 0, permanent: true, policy }), { action: 'dead', reason: 'permanent', attempts: 1 });
  assert.equal(decideFailure({ priorFailures: 2, permanent: true, policy }), { action: 'dead', reason: 'permanent', attempts: 3 });
});

test('a garbled attempt count (negative, fractional) counts as a first failure or its floor', () => {
  assert.is(decideFailure({ priorFailures: -3, permanent: false, policy }).action, 'retry');
  const d = decideFailure({ priorFailures: 1.7, permanent: false, policy });
  assert.ok(d.action === 'retry' && d.failures === 2);
});

test('a queue without retry gets one attempt: the first failure dead-letters', () => {
  const none: RetryPolicy = { maxAttempts: 1, exchange: undefined, tiers: [] };
  assert.equal(decideFailure({ priorFailures: 0, permanent: false, policy: none }), { action: 'dead', reason: 'max-attempts', attempts: 1 });
});

test('retryPolicyOf reads the compiled topology: exchange, tiers in order, maxAttempts', () => {
  const compiled = compileTopology(
    parseTopology([
      {
        file: 't.yaml',
        text: `
exchanges: { ex: { type: direct } }
queues:
  jobs:
    bind: { exchange: ex, routingKey: job }
    retry: { delays: [300ms, 2s], maxAttempts: 3 }
    deadLetter: true
  plain:
    bind: { exchange: ex, routingKey: plain }
    deadLetter: true
`,
      },
    ]),
  );
  const p = retryPolicyOf(routesFor(compiled, 'jobs'));
  assert.is(p.maxAttempts, 3);
  assert.is(p.exchange, 'jobs.retry');
  assert.equal(
    p.tiers.map((t) => [t.tier, t.routingKey, t.delayMs]),
    [
      [1, 'jobs.retry.1', 300],
      [2, 'jobs.retry.2', 2000],
    ],
  );
  assert.equal(retryPolicyOf(routesFor(compiled, 'plain')), { maxAttempts: 1, exchange: undefined, tiers: [] });
});

test.run();
