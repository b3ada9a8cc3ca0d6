import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { longestGap } from '../../chaos/blind-window.ts';
import { expectDone, Ledger } from '../../chaos/ledger.ts';
import { tappedResults, totalQueue } from '../../chaos/total-queue.ts';

/** Keys k-1..k-n, each accepted as r-<i>. */
function ledger(n: number): Ledger {
  const l = new Ledger();
  for (let i = 1; i <= n; i++) {
    l.add(`k-${i}`, 'load', expectDone(`k-${i}`));
    l.accept(`k-${i}`, `r-${i}`);
  }
  return l;
}

const result = (i: number, at = 't1', id = `r-${i}`) => ({ requestId: id, result: `k-${i}-processed`, processedAt: at });

test('every promise out once: nothing lost, duplicated or unexpected', () => {
  const r = totalQueue({ entries: ledger(3).entries(), results: [1, 2, 3].map((i) => result(i)), dead: new Map() });
  assert.equal([r.accepted, r.lost, r.duplicated, r.unexpected], [3, 0, 0, 0]);
});

test('a promise with no result and no dead letter is lost; a dead letter accounts for one', () => {
  const r = totalQueue({ entries: ledger(3).entries(), results: [result(1)], dead: new Map([['r-2', 'max-attempts']]) });
  assert.is(r.lost, 1);
  assert.equal(r.lostIds, ['r-3']);
});

test('two results for one requestId: duplicated (allowed), and reprocessed only when processed at different times', () => {
  const r = totalQueue({ entries: ledger(2).entries(), results: [result(1, 'a'), result(1, 'b'), result(2, 'a'), result(2, 'a')], dead: new Map() });
  assert.is(r.duplicated, 2);
  assert.is(r.reprocessed, 1);
  assert.is(r.extraOutcomes, 2);
  assert.is(r.lost, 0);
});

test('a result for a requestId never promised is unexpected; one carrying a sent key counts as a refusal that was not one', () => {
  const l = ledger(2);
  l.add('k-3', 'load', expectDone('k-3'));
  l.reject('k-3');
  l.abandon('k-3', 'http 503');
  const foreign = { requestId: 'x-9', result: 'nobody-processed', processedAt: 't' };
  const r = totalQueue({
    entries: l.entries(),
    results: [result(1), result(2), result(3, 't', 'r-lost-answer'), foreign],
    dead: new Map([['x-10', 'malformed']]),
  });
  assert.is(r.unexpected, 3);
  assert.is(r.unexpectedOfRefusedKeys, 1);
  assert.equal(r.unexpectedIds.sort(), ['r-lost-answer', 'x-10', 'x-9']);
});

test('a result for a key whose attempt timed out (indeterminate) is allowed; one for a key only ever refused is not', () => {
  const l = ledger(1);
  l.add('k-2', 'load', expectDone('k-2'));
  l.reject('k-2');
  l.markIndeterminate('k-2');
  l.abandon('k-2', 'timeout');
  l.add('k-3', 'load', expectDone('k-3'));
  l.reject('k-3');
  l.abandon('k-3', 'http 503');
  const r = totalQueue({ entries: l.entries(), results: [result(1), result(2, 't', 'r-timed-out'), result(3, 't', 'r-refused')], dead: new Map() });
  assert.is(r.indeterminateOutcomes, 1);
  assert.is(r.unexpected, 1);
  assert.equal(r.unexpectedIds, ['r-refused']);
});

test('a requestId an answer named as unknown may come out without being unexpected', () => {
  const l = ledger(1);
  l.noteUnknown('r-unknown');
  const r = totalQueue({
    entries: l.entries(),
    results: [result(1), { requestId: 'r-unknown', result: 'k-1-processed', processedAt: 't' }],
    dead: new Map(),
    unknown: l.unknownIds,
  });
  assert.is(r.unexpected, 0);
  assert.is(r.unknownAnswers, 1);
});

test('longest gap without a 202 counts the edges of the load, and ignores 202s outside it', () => {
  assert.equal(longestGap([1000, 1500, 9000, 9100], 0, 10_000), { from: 1500, to: 9000 });
  assert.equal(longestGap([], 0, 10_000), { from: 0, to: 10_000 });
  assert.equal(longestGap([500, 20_000], 0, 3000), { from: 500, to: 3000 });
});

test('the tap reads a results batch as each of its results, a single result as one, and ignores what is not a result', () => {
  const single = Buffer.from(JSON.stringify({ requestId: 'a', result: 1, attempts: 1, processedAt: 't1' }));
  const batch = Buffer.from(
    JSON.stringify([
      { requestId: 'b', result: 2, attempts: 1, processedAt: 't2' },
      { requestId: 'c', result: 3, attempts: 1, processedAt: 't3', headers: { traceparent: 'x' } },
      7,
    ]),
  );
  assert.equal(tappedResults(single), [{ requestId: 'a', result: 1, processedAt: 't1' }]);
  assert.equal(tappedResults(batch), [
    { requestId: 'b', result: 2, processedAt: 't2' },
    { requestId: 'c', result: 3, processedAt: 't3' },
  ]);
  assert.equal(tappedResults(Buffer.from('{not json')), []);
  assert.equal(tappedResults(Buffer.from('"text"')), []);
});

test.run();
