import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { HEADERS } from '../../core/index.ts';
import { buildDeadLetterHeaders, buildRetryHeaders, describeFailure, readHistory, truncate } from '../../worker/failure-headers.ts';

/**
 * Edges of the failure headers: what counts as a stack, an absent or unreadable history, which
 * history entries are kept, and truncation at its exact limit.
 */
const at = new Date('2030-01-01T00:00:00Z');
const failure = { code: 'E', message: 'boom', stack: undefined, at };
const entry = { at: '2030-01-01T00:00:00.000Z', attempt: 1, code: 'E', message: 'm' };

test('only an Error with a string stack gives a stack', () => {
  assert.is(describeFailure({ message: 'm', stack: 'looks like one' }, at).stack, undefined);
  const e = new Error('x');
  e.stack = undefined;
  assert.is(describeFailure(e, at).stack, undefined);
  assert.ok(describeFailure(new Error('y'), at).stack?.startsWith('Error: y'));
});

test('no history header, a non-array, or unreadable JSON: an empty history', () => {
  assert.equal(readHistory(undefined), []);
  assert.equal(readHistory({}), []);
  assert.equal(readHistory({ [HEADERS.history]: '{"at":"x"}' }), []);
  assert.equal(readHistory({ [HEADERS.history]: '[{' }), []);
  const first = buildRetryHeaders(undefined, { failures: 1, failure, originQueue: 'q' });
  assert.equal(JSON.parse(first[HEADERS.history] as string), [{ ...entry, message: 'boom' }], 'the first failure starts the history');
});

test('history entries of the wrong shape are dropped, each field checked', () => {
  const raw = [null, 'x', 7, { ...entry, at: 1 }, { ...entry, attempt: '1' }, { ...entry, code: 1 }, { ...entry, message: 1 }, entry];
  assert.equal(readHistory({ [HEADERS.history]: JSON.stringify(raw) }), [entry]);
});

test('a dead letter without a stack has no stack header at all', () => {
  const h = buildDeadLetterHeaders(undefined, { reason: 'permanent', attempts: 1, failure, originQueue: 'q', deadAt: at });
  assert.not.ok(HEADERS.errorStack in h);
  const withStack = buildDeadLetterHeaders(undefined, { reason: 'permanent', attempts: 1, failure: { ...failure, stack: 's' }, originQueue: 'q', deadAt: at });
  assert.is(withStack[HEADERS.errorStack], 's');
});

test('truncate keeps a string of exactly the limit and marks a cut with an ellipsis within it', () => {
  assert.is(truncate('abc', 3), 'abc');
  assert.is(truncate('abcd', 3), 'ab…');
  assert.is(truncate('abc', 2), 'a…');
  assert.is(truncate('abc', 0), '…');
});

test.run();
