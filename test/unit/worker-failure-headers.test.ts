import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { HEADERS, PermanentError, RetryableError } from '../../core/index.ts';
import { buildDeadLetterHeaders, buildRetryHeaders, describeFailure, LIMITS, readHistory } from '../../worker/index.ts';

const t1 = new Date('2030-01-01T00:00:00.000Z');
const t2 = new Date('2030-01-01T00:00:05.000Z');

test('describeFailure keeps the stable code, the message and a stack, all bounded', () => {
  const f = describeFailure(new RetryableError('x'.repeat(5000), { code: 'UPSTREAM_DOWN' }), t1);
  assert.is(f.code, 'UPSTREAM_DOWN');
  assert.ok(f.message.length <= LIMITS.message);
  assert.ok(f.stack !== undefined && f.stack.length <= LIMITS.stack);
  assert.is(describeFailure(new PermanentError('no'), t1).code, 'PERMANENT');
  assert.is(describeFailure(new TypeError('bad'), t1).code, 'TypeError');
  assert.is(describeFailure('a string was thrown', t1).message, 'a string was thrown');
  assert.is(describeFailure('a string was thrown', t1).stack, undefined);
});

test('retry headers carry the attempt count, failure times, origin and the original headers', () => {
  const original = { traceparent: '00-trace-span-01', custom: 'kept', 'x-death': [{ count: 1 }], 'x-delivery-count': 3 };
  const h = buildRetryHeaders(original, { failures: 1, failure: describeFailure(new Error('boom'), t1), originQueue: 'jobs' });
  assert.is(h[HEADERS.attempt], 1);
  assert.is(h[HEADERS.firstFailure], t1.toISOString());
  assert.is(h[HEADERS.lastFailure], t1.toISOString());
  assert.is(h[HEADERS.originQueue], 'jobs');
  assert.is(h[HEADERS.errorCode], 'Error');
  assert.is(h[HEADERS.errorMessage], 'boom');
  assert.is(h.traceparent, '00-trace-span-01');
  assert.is(h.custom, 'kept');
  // Broker-owned headers describe the old copy's path; they are not copied.
  assert.is(h['x-death'], undefined);
  assert.is(h['x-delivery-count'], undefined);
  assert.is(h[HEADERS.reason], undefined, 'a retry copy has no dead-letter reason');
});

test('the first failure time survives later retries; the last one moves; history grows', () => {
  const first = buildRetryHeaders({}, { failures: 1, failure: describeFailure(new Error('one'), t1), originQueue: 'jobs' });
  const second = buildRetryHeaders(first, { failures: 2, failure: describeFailure(new Error('two'), t2), originQueue: 'jobs' });
  assert.is(second[HEADERS.attempt], 2);
  assert.is(second[HEADERS.firstFailure], t1.toISOString());
  assert.is(second[HEADERS.lastFailure], t2.toISOString());
  assert.equal(
    readHistory(second).map((e) => [e.attempt, e.message]),
    [
      [1, 'one'],
      [2, 'two'],
    ],
  );
});

test('history stays bounded to the most recent entries', () => {
  let h: Record<string, unknown> = {};
  for (let i = 1; i <= LIMITS.historyEntries + 5; i++) {
    h = buildRetryHeaders(h, { failures: i, failure: describeFailure(new Error(`e${i}`), t1), originQueue: 'q' });
  }
  const history = readHistory(h);
  assert.is(history.length, LIMITS.historyEntries);
  assert.is(history.at(-1)?.message, `e${LIMITS.historyEntries + 5}`);
  assert.is(history[0]?.message, 'e6');
});

test('an unreadable history header starts afresh instead of failing the dead letter', () => {
  const h = buildRetryHeaders({ [HEADERS.history]: '{not json' }, { failures: 1, failure: describeFailure(new Error('x'), t1), originQueue: 'q' });
  assert.is(readHistory(h).length, 1);
  assert.equal(readHistory({ [HEADERS.history]: Buffer.from('[{"at":"a","attempt":1,"code":"C","message":"m"}, 42]') }), [
    { at: 'a', attempt: 1, code: 'C', message: 'm' },
  ]);
});

test('dead-letter headers say why: reason, error, truncated stack, attempts, times, origin', () => {
  const retried = buildRetryHeaders({ traceparent: 'tp' }, { failures: 2, failure: describeFailure(new Error('earlier'), t1), originQueue: 'jobs' });
  const err = new RetryableError('still down', { code: 'UPSTREAM_DOWN' });
  err.stack = `RetryableError: still down\n${'    at somewhere\n'.repeat(1000)}`;
  const h = buildDeadLetterHeaders(retried, { reason: 'max-attempts', attempts: 3, failure: describeFailure(err, t2), originQueue: 'jobs', deadAt: t2 });
  assert.is(h[HEADERS.reason], 'max-attempts');
  assert.is(h[HEADERS.attempts], 3);
  assert.is(h[HEADERS.attempt], 3);
  assert.is(h[HEADERS.errorCode], 'UPSTREAM_DOWN');
  assert.is(h[HEADERS.errorMessage], 'still down');
  assert.ok(typeof h[HEADERS.errorStack] === 'string' && (h[HEADERS.errorStack] as string).length <= LIMITS.stack);
  assert.is(h[HEADERS.firstFailure], t1.toISOString());
  assert.is(h[HEADERS.lastFailure], t2.toISOString());
  assert.is(h[HEADERS.deadAt], t2.toISOString());
  assert.is(h[HEADERS.originQueue], 'jobs');
  assert.is(h.traceparent, 'tp');
  assert.is(readHistory(h).length, 2);
});

test('a malformed message is dead-lettered with reason malformed and no stack', () => {
  const h = buildDeadLetterHeaders(undefined, {
    reason: 'malformed',
    attempts: 1,
    failure: { code: 'MALFORMED', message: 'body is not valid JSON', stack: undefined, at: t1 },
    originQueue: 'jobs',
    deadAt: t1,
  });
  assert.is(h[HEADERS.reason], 'malformed');
  assert.is(h[HEADERS.errorCode], 'MALFORMED');
  assert.is(h[HEADERS.errorMessage], 'body is not valid JSON');
  assert.is(h[HEADERS.errorStack], undefined);
  assert.is(h[HEADERS.attempts], 1);
});

test('the headers of a dead letter fit well within an AMQP header table', () => {
  const huge = new Error('m'.repeat(100_000));
  let h: Record<string, unknown> = {};
  for (let i = 1; i <= 50; i++) h = buildRetryHeaders(h, { failures: i, failure: describeFailure(huge, t1), originQueue: 'q' });
  const dead = buildDeadLetterHeaders(h, { reason: 'max-attempts', attempts: 51, failure: describeFailure(huge, t2), originQueue: 'q', deadAt: t2 });
  assert.ok(JSON.stringify(dead).length < 16_384, `headers are ${JSON.stringify(dead).length} characters`);
});

test.run();
