import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { blindWindow, clusterEvents, longestGap } from '../../chaos/blind-window.ts';
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

// Lines as RabbitMQ 3.10 wrote them in a partition run (the API's node rabbit@wch-p-2 cut off).
const NODE_LOG = [
  "2026-12-01 16:45:38.677577+00:00 [error] <0.1987.0> ** Node 'rabbit@wch-p-2' not responding **",
  "2026-12-01 16:45:38.679034+00:00 [info] <0.2358.0> queue 'processing.requests' in vhost '/': Leader monitor down with noconnection, setting election timeout",
  "2026-12-01 16:45:38.693133+00:00 [info] <0.2293.0> node 'rabbit@wch-p-2' down: net_tick_timeout",
  "2026-12-01 16:45:41.736445+00:00 [notice] <0.2349.0> queue 'processing.requests.retry.2' in vhost '/': candidate -> leader in term: 3 machine version: 2",
  "2026-12-01 16:45:43.673598+00:00 [notice] <0.723.0> queue 'processing.requests' in vhost '/': candidate -> leader in term: 3 machine version: 2",
  '2026-12-01 16:45:44.000000+00:00 [info] <0.1.0> a line about something else',
].join('\n');

test("cluster events from a node's log: peers declared down and the named queue's own leader elections only", () => {
  assert.equal(clusterEvents(NODE_LOG, 'processing.requests'), [
    { at: Date.parse('2026-12-01T16:45:38.693Z'), kind: 'down', text: "node 'rabbit@wch-p-2' down: net_tick_timeout" },
    { at: Date.parse('2026-12-01T16:45:43.673Z'), kind: 'leader', text: 'processing.requests leader (in term: 3 machine version: 2)' },
  ]);
  assert.equal(clusterEvents('not a log\n\n', 'processing.requests'), []);
});

test("the blind window says how much of it came after the main queue's new leader (the clients' share)", () => {
  const dir = mkdtempSync(join(tmpdir(), 'warren-blind-'));
  try {
    const file = join(dir, 'rabbit@wch-p-3.log');
    writeFileSync(file, NODE_LOG);
    const from = Date.parse('2026-12-01T16:45:34.300Z');
    const to = Date.parse('2026-12-01T16:45:45.100Z');
    const w = blindWindow({
      acceptTimes: [from - 500, from, to, to + 50],
      loadStart: from - 10_000,
      loadEnd: to + 10_000,
      retries: [],
      faults: [],
      brokerLogs: {
        files: [
          { node: 'rabbit@wch-p-3', file },
          { node: 'rabbit@wch-p-1', file: join(dir, 'missing.log') },
        ],
        queue: 'processing.requests',
      },
    });
    assert.is(w.seconds, 10.8);
    assert.is(w.afterLeaderS, 1.4);
    assert.equal(w.brokerLog, [
      "+4.4s rabbit@wch-p-3: node 'rabbit@wch-p-2' down: net_tick_timeout",
      '+9.4s rabbit@wch-p-3: processing.requests leader (in term: 3 machine version: 2)',
    ]);
    const noElection = blindWindow({
      acceptTimes: [],
      loadStart: from,
      loadEnd: from + 1000,
      retries: [],
      faults: [],
      brokerLogs: { files: [{ node: 'n', file }], queue: 'processing.requests' },
    });
    assert.is(noElection.afterLeaderS, undefined);
    assert.equal(noElection.brokerLog, []);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
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
