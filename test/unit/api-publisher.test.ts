import { EventEmitter } from 'node:events';
import type { ConfirmChannel } from 'amqplib';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { type ConfirmChannelSource, ConfirmPublisher } from '../../api/index.ts';
import { createLogger, PublishNotConfirmedError } from '../../core/index.ts';
import { within } from '../helpers/broker.ts';

/** A confirm channel the test drives: it records publishes and confirms, nacks or closes on demand. */
class FakeChannel extends EventEmitter {
  readonly sent: Array<{ exchange: string; routingKey: string; body: unknown; options: Record<string, unknown>; cb: (err: unknown) => void }> = [];
  throwOnPublish = false;

  publish(exchange: string, routingKey: string, content: Buffer, options: Record<string, unknown>, cb: (err: unknown) => void): boolean {
    if (this.throwOnPublish) throw new Error('Channel closed');
    this.sent.push({ exchange, routingKey, body: JSON.parse(content.toString('utf8')), options, cb });
    return true;
  }
  ack(i = 0): void {
    this.sent[i]?.cb(null);
  }
  nack(i = 0): void {
    this.sent[i]?.cb(new Error('message nacked'));
  }
}

const logger = createLogger({ name: 'test', level: 'silent' });
const route = { exchange: 'processing', routingKey: 'request' };

function setup(opts: { timeoutMs?: number; maxInFlight?: number } = {}) {
  const ch = new FakeChannel();
  const source: { current: ConfirmChannel | undefined; blocked: boolean } = { current: ch as unknown as ConfirmChannel, blocked: false };
  const publisher = new ConfirmPublisher({
    channels: source as ConfirmChannelSource,
    route,
    timeoutMs: opts.timeoutMs ?? 1000,
    maxInFlight: opts.maxInFlight ?? 10,
    logger,
  });
  return { ch, source, publisher };
}

async function reasonOf(p: Promise<void>): Promise<string> {
  try {
    await within(3000, 'publish settles', p);
  } catch (err) {
    if (err instanceof PublishNotConfirmedError) return err.reason;
    throw err;
  }
  return 'confirmed';
}

test('resolves on confirm; the message follows the wire contract', async () => {
  const { ch, publisher } = setup();
  const before = Date.now();
  const p = publisher.publish({ requestId: 'r1', data: { a: 1 } }, { headers: { traceparent: 't' } });
  assert.is(publisher.unconfirmed, 1);
  ch.ack();
  assert.is(await reasonOf(p), 'confirmed');
  assert.is(publisher.unconfirmed, 0);
  const sent = ch.sent[0];
  const { acceptedAt, ...body } = (sent?.body ?? {}) as { acceptedAt?: unknown };
  assert.equal(body, { requestId: 'r1', data: { a: 1 } });
  assert.ok(typeof acceptedAt === 'number' && acceptedAt >= before && acceptedAt <= Date.now(), `acceptedAt ${acceptedAt}`);
  assert.is(sent?.exchange, 'processing');
  assert.is(sent?.routingKey, 'request');
  assert.is(sent?.options.persistent, true);
  assert.is(sent?.options.messageId, 'r1');
  assert.is(sent?.options.correlationId, 'r1');
  assert.is(sent?.options.contentType, 'application/json');
  assert.is(sent?.options.mandatory, true);
  assert.equal(sent?.options.headers, { traceparent: 't' });
});

test('a nack rejects with reason nack', async () => {
  const { ch, publisher } = setup();
  const p = publisher.publish({ requestId: 'r1', data: 1 });
  ch.nack();
  assert.is(await reasonOf(p), 'nack');
});

test('an unroutable message (returned, then acked) counts as not accepted', async () => {
  const { ch, publisher } = setup();
  const p = publisher.publish({ requestId: 'r1', data: 1 });
  ch.emit('return', { properties: { messageId: 'r1' } });
  ch.ack();
  assert.is(await reasonOf(p), 'unroutable');
});

test('no confirm in time rejects with reason timeout, within the deadline', async () => {
  const { publisher } = setup({ timeoutMs: 150 });
  const started = Date.now();
  assert.is(await reasonOf(publisher.publish({ requestId: 'r1', data: 1 })), 'timeout');
  const took = Date.now() - started;
  assert.ok(took >= 140 && took < 1000, `took ${took} ms`);
});

test('a full window fails at once and frees up as confirms arrive', async () => {
  const { ch, publisher } = setup({ maxInFlight: 2, timeoutMs: 5000 });
  const a = publisher.publish({ requestId: 'a', data: 1 });
  const b = publisher.publish({ requestId: 'b', data: 1 });
  assert.is(await reasonOf(publisher.publish({ requestId: 'c', data: 1 })), 'window-full');
  assert.is(ch.sent.length, 2);
  ch.ack(0);
  assert.is(await reasonOf(a), 'confirmed');
  const d = publisher.publish({ requestId: 'd', data: 1 });
  ch.ack(1);
  ch.ack(2);
  assert.is(await reasonOf(b), 'confirmed');
  assert.is(await reasonOf(d), 'confirmed');
});

test('the window is bounded in bytes too (one large publish always fits)', async () => {
  const ch = new FakeChannel();
  const source = { current: ch as unknown as ConfirmChannel, blocked: false };
  const publisher = new ConfirmPublisher({ channels: source, route, timeoutMs: 5000, maxInFlight: 100, maxInFlightBytes: 1000, logger });
  const big = publisher.publish({ requestId: 'big', data: 'x'.repeat(2000) });
  assert.is(await reasonOf(publisher.publish({ requestId: 'small', data: 1 })), 'window-full');
  ch.ack(0);
  assert.is(await reasonOf(big), 'confirmed');
  const small = publisher.publish({ requestId: 'small', data: 1 });
  ch.ack(1);
  assert.is(await reasonOf(small), 'confirmed');
});

test('a timed-out publish keeps its window slot until the broker answers', async () => {
  const { ch, publisher } = setup({ maxInFlight: 1, timeoutMs: 100 });
  assert.is(await reasonOf(publisher.publish({ requestId: 'a', data: 1 })), 'timeout');
  assert.is(await reasonOf(publisher.publish({ requestId: 'b', data: 1 })), 'window-full');
  ch.ack(0);
  assert.is(publisher.unconfirmed, 0);
});

test('no channel, a blocked connection or a closed channel fail at once', async () => {
  const { ch, source, publisher } = setup();
  source.blocked = true;
  assert.is(await reasonOf(publisher.publish({ requestId: 'a', data: 1 })), 'blocked');
  source.blocked = false;
  ch.throwOnPublish = true;
  assert.is(await reasonOf(publisher.publish({ requestId: 'b', data: 1 })), 'closed');
  source.current = undefined;
  assert.is(await reasonOf(publisher.publish({ requestId: 'c', data: 1 })), 'closed');
  assert.is(publisher.unconfirmed, 0);
});

test('a channel closing with publishes pending rejects them with reason closed', async () => {
  const { ch, source, publisher } = setup();
  const p = publisher.publish({ requestId: 'a', data: 1 });
  // As amqplib does: the slot drops the channel and pending callbacks fail in the same 'close'.
  source.current = undefined;
  ch.nack(0);
  assert.is(await reasonOf(p), 'closed');
});

test.run();
