import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { decodeDeadLetter, fingerprintOf, groupDeadLetters, maskMessage, matches } from '../../api/dead-letters/index.ts';
import { HEADERS } from '../../core/index.ts';

test('masking removes ids, numbers and quoted values but keeps the words', () => {
  assert.is(maskMessage('user 42 not found in shard 7'), 'user <n> not found in shard <n>');
  assert.is(maskMessage('order 3f1c2b9a-1d2e-4f5a-8b9c-0d1e2f3a4b5c failed: "timeout"'), 'order <uuid> failed: "<str>"');
  assert.is(maskMessage('connect ECONNREFUSED 127.0.0.1:5432'), 'connect ECONNREFUSED <addr>');
});

test('messages that differ only by ids share a fingerprint; other causes do not', () => {
  const a = fingerprintOf('max-attempts', 'payment 1234 declined');
  const b = fingerprintOf('max-attempts', 'payment 98765 declined');
  const c = fingerprintOf('permanent', 'payment 1234 declined');
  const d = fingerprintOf('max-attempts', 'card expired');
  assert.is(a.id, b.id);
  assert.is.not(a.id, c.id);
  assert.is.not(a.id, d.id);
  assert.match(a.id, /^[0-9a-f]{10}$/);
});

test('a worker dead letter is read from its x-warren headers', () => {
  const dl = decodeDeadLetter({
    properties: {
      messageId: 'r-1',
      headers: {
        [HEADERS.reason]: 'max-attempts',
        [HEADERS.errorCode]: 'RETRYABLE',
        [HEADERS.errorMessage]: 'demo failure for fail:x',
        [HEADERS.attempts]: 3,
        [HEADERS.originQueue]: 'processing.requests',
        [HEADERS.firstFailure]: '2026-01-01T00:00:00.000Z',
        [HEADERS.lastFailure]: '2026-01-01T00:00:05.000Z',
        [HEADERS.history]: JSON.stringify([{ at: 't1' }, { at: 't2' }, { at: 't3' }]),
      },
    },
    content: Buffer.from('{"requestId":"r-1","data":"fail:x"}'),
  });
  assert.is(dl.requestId, 'r-1');
  assert.is(dl.reason, 'max-attempts');
  assert.is(dl.attempts, 3);
  assert.is(dl.originQueue, 'processing.requests');
  assert.is(dl.history.length, 3);
  assert.is(dl.fingerprint.reason, 'max-attempts');
});

test('a broker dead letter (delivery limit) is read from x-death', () => {
  const dl = decodeDeadLetter(
    {
      properties: {
        headers: {
          'x-delivery-count': 2,
          'x-death': [{ reason: 'delivery_limit', queue: 'processing.requests', count: 1, time: { '!': 'timestamp', value: 1_700_000_000 } }],
        },
      },
      content: Buffer.from('{"requestId":"r-2","data":"crash:x"}'),
    },
    'processing.requests',
    2,
  );
  assert.is(dl.requestId, 'r-2');
  assert.is(dl.reason, 'delivery-limit');
  assert.is(dl.errorCode, 'DELIVERY_LIMIT');
  assert.is(dl.attempts, 3);
  assert.is(dl.originQueue, 'processing.requests');
  assert.is(dl.deadAt, new Date(1_700_000_000_000).toISOString());
});

test('a malformed body without ids still decodes', () => {
  const dl = decodeDeadLetter(
    { properties: { headers: { [HEADERS.reason]: 'malformed', [HEADERS.errorMessage]: 'body is not valid JSON' } }, content: Buffer.from('{oops') },
    'q',
  );
  assert.is(dl.requestId, undefined);
  assert.is(dl.reason, 'malformed');
  assert.is(dl.originQueue, 'q');
});

test('selectors: nothing matches an empty selector; ids, group and all do', () => {
  const dl = decodeDeadLetter({
    properties: { messageId: 'r-3', headers: { [HEADERS.reason]: 'permanent', [HEADERS.errorMessage]: 'bad input 7' } },
    content: Buffer.from('{}'),
  });
  assert.not.ok(matches(dl, {}));
  assert.ok(matches(dl, { all: true }));
  assert.ok(matches(dl, { ids: ['r-3'] }));
  assert.not.ok(matches(dl, { ids: ['r-4'] }));
  assert.ok(matches(dl, { group: dl.fingerprint.id }));
  assert.not.ok(matches(dl, { group: 'ffffffffff' }));
});

test('stats group by fingerprint with counts and oldest/newest', () => {
  const mk = (msg: string, at: string) =>
    decodeDeadLetter({
      properties: { headers: { [HEADERS.reason]: 'max-attempts', [HEADERS.errorMessage]: msg, [HEADERS.deadAt]: at, [HEADERS.originQueue]: 'q' } },
      content: Buffer.from('{}'),
    });
  const groups = groupDeadLetters([mk('timeout after 30 s', '2026-01-02'), mk('timeout after 31 s', '2026-01-01'), mk('boom', '2026-01-03')]);
  assert.is(groups.length, 2);
  assert.is(groups[0]?.count, 2);
  assert.is(groups[0]?.pattern, 'timeout after <n> s');
  assert.is(groups[0]?.oldest, '2026-01-01');
  assert.is(groups[0]?.newest, '2026-01-02');
  assert.is(groups[1]?.count, 1);
});

test.run();
