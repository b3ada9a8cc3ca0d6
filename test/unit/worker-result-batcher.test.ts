import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { Envelope } from '../../amqp/index.ts';
import { decodeResults, RESULTS_BATCH_CONTENT_TYPE, RESULTS_BATCH_HEADER } from '../../core/index.ts';
import { resultEnvelope } from '../../worker/envelopes.ts';
import { batchEnvelope, ResultBatcher } from '../../worker/result-batcher.ts';

const route = { exchange: 'processing', routingKey: 'result' };

function result(requestId: string, headers?: Record<string, string>): Envelope {
  return resultEnvelope(route, { requestId, result: `${requestId}-done`, attempts: 1, processedAt: new Date(0), requestHeaders: headers, acceptedAt: 5 });
}

/** A publish the test confirms (or refuses) by hand, one message at a time. */
function brokerByHand() {
  const sent: Array<{ envelope: Envelope; confirm: () => void; refuse: (err: Error) => void }> = [];
  const publish = (envelope: Envelope) =>
    new Promise<void>((resolve, reject) => {
      sent.push({ envelope, confirm: resolve, refuse: reject });
    });
  return { sent, publish };
}

const turn = () => new Promise<void>((r) => setImmediate(r));
function state<T>(p: Promise<T>) {
  const s: { done: boolean; error?: unknown } = { done: false };
  p.then(
    () => {
      s.done = true;
    },
    (err: unknown) => {
      s.done = true;
      s.error = err;
    },
  );
  return s;
}

test('a lone result leaves unchanged, as the single result message', async () => {
  const broker = brokerByHand();
  const batcher = new ResultBatcher(broker.publish);
  const one = result('r1');
  const p = batcher.add(one);
  await turn();
  assert.is(broker.sent.length, 1);
  assert.is(broker.sent[0]?.envelope, one);
  broker.sent[0]?.confirm();
  await p;
});

test('results finished while a results message awaits its confirm leave together, and each settles only with that message', async () => {
  const broker = brokerByHand();
  const batcher = new ResultBatcher(broker.publish);
  const first = state(batcher.add(result('r1')));
  await turn();
  const later = ['r2', 'r3', 'r4'].map((id) => state(batcher.add(result(id, id === 'r3' ? { traceparent: 'tp-3' } : undefined))));
  await turn();
  assert.is(broker.sent.length, 1, 'the next message waits for the confirm of the one in flight');
  broker.sent[0]?.confirm();
  await turn();
  assert.ok(first.done);
  assert.ok(
    later.every((s) => !s.done),
    'no result is settled (its message acked) before the broker confirmed the message holding it',
  );
  assert.is(broker.sent.length, 2);
  const batch = broker.sent[1]?.envelope as Envelope;
  assert.is(batch.options.contentType, RESULTS_BATCH_CONTENT_TYPE);
  assert.is(batch.options.headers?.[RESULTS_BATCH_HEADER], 3);
  assert.is(batch.options.persistent, true);
  assert.is(batch.options.mandatory, true);
  assert.equal([batch.exchange, batch.routingKey], [route.exchange, route.routingKey]);
  const items = decodeResults(batch.content);
  assert.equal(
    items?.map((i) => [i?.requestId, i?.result, i?.acceptedAt]),
    [
      ['r2', 'r2-done', 5],
      ['r3', 'r3-done', 5],
      ['r4', 'r4-done', 5],
    ],
  );
  assert.equal((JSON.parse(batch.content.toString()) as Array<{ headers?: unknown }>)[1]?.headers, { traceparent: 'tp-3' });
  broker.sent[1]?.confirm();
  await turn();
  assert.ok(later.every((s) => s.done && s.error === undefined));
});

test('a results message the broker refuses fails every result in it (their messages are requeued, not acked)', async () => {
  const broker = brokerByHand();
  const batcher = new ResultBatcher(broker.publish);
  const first = state(batcher.add(result('r1')));
  await turn();
  const later = ['r2', 'r3'].map((id) => state(batcher.add(result(id))));
  broker.sent[0]?.confirm();
  await turn();
  broker.sent[1]?.refuse(new Error('nacked'));
  await turn();
  assert.ok(first.done && first.error === undefined);
  assert.ok(later.every((s) => s.done && (s.error as Error)?.message === 'nacked'));
  // The batcher goes on: the next result is published.
  const next = batcher.add(result('r5'));
  await turn();
  broker.sent[2]?.confirm();
  await next;
});

test('a batch holds at most maxItems results and maxBytes of them; 1 turns batching off', async () => {
  const broker = brokerByHand();
  const batcher = new ResultBatcher(broker.publish, 2, 10_000);
  const all = ['a', 'b', 'c', 'd', 'e'].map((id) => batcher.add(result(id)));
  for (let i = 0; i < 3; i++) {
    await turn();
    for (const s of broker.sent.slice(i)) s.confirm();
  }
  await Promise.all(all);
  assert.equal(
    broker.sent.map((s) => decodeResults(s.envelope.content)?.length ?? 1),
    [2, 2, 1],
  );

  const small = brokerByHand();
  const size = result('x').content.length;
  const bySize = new ResultBatcher(small.publish, 100, size * 2 + 1);
  const sized = ['a', 'b', 'c'].map((id) => bySize.add(result(id)));
  await turn();
  for (const s of small.sent) s.confirm();
  await Promise.all(sized);
  assert.equal(
    small.sent.map((s) => (s.envelope.options.contentType === RESULTS_BATCH_CONTENT_TYPE ? decodeResults(s.envelope.content)?.length : 1)),
    [2, 1],
  );

  const off = brokerByHand();
  const single = new ResultBatcher(off.publish, 1);
  const each = ['a', 'b', 'c'].map((id) => single.add(result(id)));
  assert.is(off.sent.length, 3);
  for (const s of off.sent) s.confirm();
  await Promise.all(each);
  assert.ok(off.sent.every((s) => s.envelope.options.contentType === 'application/json'));
});

test('decodeResults: not an array is undefined; an item without a requestId is no result', () => {
  assert.is(decodeResults(Buffer.from('{"requestId":"r"}')), undefined);
  assert.is(decodeResults(Buffer.from('[not json')), undefined);
  assert.equal(decodeResults(Buffer.from('[{"result":1},7]')), [undefined, undefined]);
  assert.throws(() => batchEnvelope([]), /at least one result/);
});

test.run();
