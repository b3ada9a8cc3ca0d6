import { pino } from 'pino';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Consumer, type Delivery } from '../../amqp/index.ts';
import { waitFor } from '../helpers/broker.ts';
import { type FakeChannel, FakeManager, turn } from '../helpers/fake-amqp.ts';

/**
 * The consumer's ack batching and delivery-tag bookkeeping against a scripted channel: which acks
 * go out together (one `multiple` ack below every unsettled delivery), which one by one, what a
 * slow message holds back, and that no frame ever goes to a channel other than the delivering one.
 */
const logger = pino({ level: 'silent' });

async function setup(prefetch = 10) {
  const manager = new FakeManager();
  const deliveries: Delivery[] = [];
  const consumer = new Consumer({ connection: manager.asManager(), queue: 'q', prefetch, logger, onDelivery: (d) => deliveries.push(d), retryMs: 10 });
  consumer.start();
  await waitFor('subscribed', () => (consumer.consuming ? true : undefined), 2000, 5);
  const ch = manager.working[0] as FakeChannel;
  return { manager, consumer, deliveries, ch };
}

test('per-consumer prefetch, then one consume on the queue', async () => {
  const { ch } = await setup(7);
  assert.equal(
    ch.frames.filter((f) => f.op === 'prefetch' || f.op === 'consume'),
    [
      { op: 'prefetch', count: 7 },
      { op: 'consume', queue: 'q' },
    ],
  );
});

test('acks decided in one turn with nothing else unsettled go out as one multiple ack of the highest tag', async () => {
  const { consumer, deliveries, ch } = await setup();
  for (let i = 0; i < 3; i++) ch.deliver();
  for (const d of deliveries) assert.ok(consumer.ack(d));
  assert.equal(ch.acks, [], 'nothing is sent before the turn ends');
  await turn();
  assert.equal(ch.acks, [[3, true]]);
});

test('acks below a later delivery still in flight go out as one multiple ack up to the highest of them', async () => {
  const { consumer, deliveries, ch } = await setup();
  for (let i = 0; i < 3; i++) ch.deliver();
  const [a, b] = deliveries as [Delivery, Delivery, Delivery];
  consumer.ack(b);
  consumer.ack(a);
  await turn();
  assert.equal(ch.acks, [[2, true]], 'one frame for 1 and 2; 3 is still in flight');
});

test('a slow message holds back the multiple ack: the others go one by one, it is acked with multiple later', async () => {
  const { consumer, deliveries, ch } = await setup();
  for (let i = 0; i < 4; i++) ch.deliver();
  const [slow, b, c, d] = deliveries as [Delivery, Delivery, Delivery, Delivery];
  consumer.ack(b);
  consumer.ack(c);
  await turn();
  assert.equal(ch.acks, [
    [2, false],
    [3, false],
  ]);
  consumer.ack(slow);
  await turn();
  // 1 is now below the lowest unsettled tag (4): a multiple ack of 1 covers only what is settled.
  assert.equal(ch.acks.slice(2), [[1, true]]);
  consumer.ack(d);
  await turn();
  assert.equal(ch.acks.slice(3), [[4, true]]);
});

test('a delivery is settled once: a second ack, nack or reject sends nothing (a double ack closes the channel)', async () => {
  const { consumer, deliveries, ch } = await setup();
  ch.deliver();
  const [d] = deliveries as [Delivery];
  assert.ok(consumer.ack(d));
  assert.not.ok(consumer.ack(d));
  assert.not.ok(consumer.nack(d));
  assert.not.ok(consumer.reject(d));
  await turn();
  assert.equal(ch.acks, [[1, true]]);
  assert.is(ch.frames.filter((f) => f.op === 'nack' || f.op === 'reject').length, 0);
});

test('nack and reject go out at once, single, with their requeue flag', async () => {
  const { consumer, deliveries, ch } = await setup();
  ch.deliver();
  ch.deliver();
  const [a, b] = deliveries as [Delivery, Delivery];
  assert.ok(consumer.nack(a, true));
  assert.ok(consumer.reject(b, true));
  assert.equal(
    ch.frames.filter((f) => f.op === 'nack' || f.op === 'reject'),
    [
      { op: 'nack', tag: 1, multiple: false, requeue: true },
      { op: 'reject', tag: 2, requeue: true },
    ],
  );
});

test('deliveries of a channel the broker closed are never acked on the new one; the consumer resubscribes there', async () => {
  const { manager, consumer, deliveries, ch } = await setup();
  ch.deliver();
  ch.deliver();
  const [a, b] = deliveries as [Delivery, Delivery];
  consumer.ack(a);
  ch.closeByBroker(); // before the flush: that ack is lost, the broker redelivers
  await turn();
  assert.equal(ch.acks, []);
  assert.not.ok(consumer.ack(b), 'its channel is gone');
  const fresh = await waitFor('a new channel subscribed', () => manager.working.find((c) => c !== ch && c.frames.some((f) => f.op === 'consume')), 2000, 5);
  assert.ok(consumer.owns(a), 'the consumer still knows its old deliveries');
  fresh.deliver();
  const c = deliveries[2] as Delivery;
  assert.is(c.source.generation, 2);
  assert.ok(consumer.ack(c));
  await turn();
  assert.equal(fresh.acks, [[1, true]]);
  assert.equal(ch.acks, [], 'nothing went to the closed channel');
});

test('close: the decided acks are flushed, then the ack barrier (a round trip), then the channel closes', async () => {
  const { consumer, deliveries, ch } = await setup();
  ch.deliver();
  consumer.ack(deliveries[0] as Delivery);
  await consumer.close();
  const ops = ch.frames.map((f) => f.op).filter((op) => op === 'ack' || op === 'checkQueue' || op === 'close');
  assert.equal(ops, ['ack', 'checkQueue', 'close']);
});

test.run();
