import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { expectDone, Ledger } from '../../chaos/ledger.ts';
import { type Observation, passed, reconcile } from '../../chaos/reconcile.ts';

const done = (data: string): Observation => ({ kind: 'record', status: 'done', result: `${data}-processed` });

/** Three load requests, all accepted once, each with its own requestId r-<n>. */
function ledgerOfThree(): Ledger {
  const l = new Ledger();
  for (const n of [1, 2, 3]) {
    l.add(`x-${n}`, 'load', expectDone(`x-${n}`));
    l.accept(`x-${n}`, `r-${n}`);
  }
  return l;
}

test('a clean ledger passes: everything done with its own result', () => {
  const l = ledgerOfThree();
  const obs = new Map([1, 2, 3].map((n) => [`r-${n}`, done(`x-${n}`)]));
  const r = reconcile({ entries: l.entries(), observations: obs, brokerIdle: true });
  assert.equal([r.accepted, r.done, r.lost, r.stuck, r.unverified], [3, 3, 0, 0, 0]);
  assert.ok(passed(r));
});

test('a 404 after the drain is lost', () => {
  const l = ledgerOfThree();
  const obs = new Map<string, Observation>([
    ['r-1', done('x-1')],
    ['r-2', { kind: 'missing' }],
    ['r-3', done('x-3')],
  ]);
  const r = reconcile({ entries: l.entries(), observations: obs, brokerIdle: false });
  assert.is(r.lost, 1);
  assert.is(r.problems[0]?.requestId, 'r-2');
  assert.is(r.problems[0]?.observed, 'store: 404');
  assert.not.ok(passed(r));
});

test('a wrong result or a wrong final status is lost', () => {
  const l = ledgerOfThree();
  const obs = new Map<string, Observation>([
    ['r-1', done('x-2')],
    ['r-2', { kind: 'record', status: 'dead', reason: 'max-attempts' }],
    ['r-3', done('x-3')],
  ]);
  const r = reconcile({ entries: l.entries(), observations: obs, brokerIdle: false });
  assert.equal([r.done, r.lost, r.dead], [1, 2, 0]);
  assert.match(r.problems[0]?.observed ?? '', /wrong outcome: done "x-2-processed"/);
});

test('still queued is stuck while the broker holds messages, lost once it holds nothing', () => {
  const l = ledgerOfThree();
  const obs = new Map<string, Observation>([
    ['r-1', done('x-1')],
    ['r-2', { kind: 'record', status: 'queued' }],
    ['r-3', { kind: 'record', status: 'queued' }],
  ]);
  const busy = reconcile({ entries: l.entries(), observations: obs, brokerIdle: false });
  assert.equal([busy.stuck, busy.lost], [2, 0]);
  assert.not.ok(passed(busy));
  const idle = reconcile({ entries: l.entries(), observations: obs, brokerIdle: true });
  assert.equal([idle.stuck, idle.lost], [0, 2]);
  assert.match(idle.problems[0]?.observed ?? '', /broker holds nothing/);
});

test('duplicated requests: a key accepted twice needs both requestIds final; the same id twice counts once', () => {
  const l = new Ledger();
  l.add('a', 'load', expectDone('a'));
  l.reject('a');
  l.accept('a', 'r-a1');
  l.accept('a', 'r-a2'); // the first 202 was lost on the wire: the retry published a second request
  l.add('b', 'load', expectDone('b'));
  l.accept('b', 'r-b');
  l.accept('b', 'r-b'); // an idempotent retry answered with the same requestId
  const obs = new Map<string, Observation>([
    ['r-a1', done('a')],
    ['r-a2', { kind: 'record', status: 'queued' }],
    ['r-b', done('b')],
  ]);
  const r = reconcile({ entries: l.entries(), observations: obs, brokerIdle: false });
  assert.equal([r.accepted, r.done, r.stuck, r.duplicateAccepts, r.rejectedThenRetried], [3, 2, 1, 1, 1]);
  assert.is(r.problems[0]?.requestId, 'r-a2');
});

test('two keys answered with the same requestId: the one whose result does not match is lost', () => {
  const l = new Ledger();
  l.add('a', 'load', expectDone('a'));
  l.accept('a', 'r-same');
  l.add('b', 'load', expectDone('b'));
  l.accept('b', 'r-same');
  const r = reconcile({ entries: l.entries(), observations: new Map([['r-same', done('a')]]), brokerIdle: true });
  assert.equal([r.done, r.lost], [1, 1]);
  assert.is(r.problems[0]?.key, 'b');
});

test('poison ends dead with its reason; malformed counts as dead through the dead-letter queue', () => {
  const l = new Ledger();
  l.add('fail:1', 'poison', { status: 'dead', reason: 'max-attempts' });
  l.accept('fail:1', 'r-p');
  l.add('bad-1', 'malformed', { status: 'dead', reason: 'malformed' });
  l.accept('bad-1', 'm-1');
  l.add('bad-2', 'malformed', { status: 'dead', reason: 'malformed' });
  l.accept('bad-2', 'm-2');
  const obs = new Map<string, Observation>([
    ['r-p', { kind: 'record', status: 'dead', reason: 'max-attempts', attempts: 3 }],
    ['m-1', { kind: 'missing' }],
    ['m-2', { kind: 'missing' }],
  ]);
  const r = reconcile({ entries: l.entries(), observations: obs, deadLetters: new Map([['m-1', 'malformed']]), brokerIdle: true });
  assert.equal([r.dead, r.lost], [2, 1]);
  assert.equal(r.deadReasons, { 'max-attempts': 1, malformed: 1 });
  assert.is(r.deadFromQueue, 1);
  assert.is(r.problems[0]?.key, 'bad-2');
});

test('a poison request dead for another reason than expected is lost; done when poison is lost too', () => {
  const l = new Ledger();
  l.add('fail:1', 'poison', { status: 'dead', reason: 'max-attempts' });
  l.accept('fail:1', 'r-1');
  l.add('fail:2', 'poison', { status: 'dead', reason: 'max-attempts' });
  l.accept('fail:2', 'r-2');
  const obs = new Map<string, Observation>([
    ['r-1', { kind: 'record', status: 'dead', reason: 'delivery-limit' }],
    ['r-2', { kind: 'record', status: 'done', result: 'fail:2-processed' }],
  ]);
  const r = reconcile({ entries: l.entries(), observations: obs, brokerIdle: true });
  assert.equal([r.dead, r.lost], [0, 2]);
});

test('an unreadable store is unverified and fails the run; abandoned requests are not promises', () => {
  const l = ledgerOfThree();
  l.add('gave-up', 'load', expectDone('gave-up'));
  l.reject('gave-up');
  l.abandon('gave-up', 'retry window over');
  const obs = new Map<string, Observation>([
    ['r-1', done('x-1')],
    ['r-2', done('x-2')],
  ]);
  const r = reconcile({ entries: l.entries(), observations: obs, brokerIdle: true });
  assert.equal([r.accepted, r.unverified, r.abandoned, r.rejections, r.rejectedThenRetried], [3, 1, 1, 1, 0]);
  assert.not.ok(passed(r));
});

test('an empty ledger does not pass: a run that accepted nothing proved nothing', () => {
  assert.not.ok(passed(reconcile({ entries: [], observations: new Map(), brokerIdle: true })));
});

test.run();
