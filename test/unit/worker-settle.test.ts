import type { ConsumeMessage } from 'amqplib';
import { pino } from 'pino';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { z } from 'zod';
import type { Delivery, DeliverySource, Envelope } from '../../amqp/index.ts';
import { HEADERS, PublishNotConfirmedError, RetryableError } from '../../core/index.ts';
import { compileTopology, parseTopology } from '../../topology/index.ts';
import { decoderFor, resolveJobRoutes } from '../../worker/index.ts';
import { type DeliveryContext, processDelivery } from '../../worker/process-delivery.ts';

/**
 * One delivery's settlement against a scripted context: what is published, and which settle call
 * (ack, reject) ends it. RabbitMQ 4.3 counts basic.reject toward a quorum queue's delivery limit and
 * basic.nack not, so a failure of the message's own processing must end in a reject.
 */
const compiled = compileTopology(
  parseTopology([
    {
      file: 't.yaml',
      text: `
exchanges: { media: { type: direct } }
queues:
  media.thumbs:
    bind: { exchange: media, routingKey: thumbs }
    retry: { delays: [1s], maxAttempts: 2 }
    deadLetter: true
    job: { name: thumbs, results: media.results }
  media.results: { bind: { exchange: media, routingKey: results } }
`,
    },
  ]),
);
const routes = resolveJobRoutes(compiled, compiled.jobs.thumbs ?? (undefined as never));

function delivery(body: unknown, props: Record<string, unknown> = { messageId: 'r1' }): Delivery {
  const message = {
    content: Buffer.from(typeof body === 'string' ? body : JSON.stringify(body)),
    fields: { deliveryTag: 1, redelivered: false, exchange: 'media', routingKey: 'thumbs', consumerTag: 'c' },
    properties: { headers: {}, ...props },
  } as unknown as ConsumeMessage;
  return { message, source: { generation: 1 } as DeliverySource };
}

function context(over: Partial<DeliveryContext> = {}) {
  const calls: string[] = [];
  const published: Envelope[] = [];
  const ctx: DeliveryContext = {
    routes,
    handler: async (data) => `ok:${JSON.stringify(data)}`,
    decode: decoderFor('warren', undefined),
    timeoutMs: 1000,
    logger: pino({ level: 'silent' }),
    publish: async (e) => {
      published.push(e);
    },
    ack: () => {
      calls.push('ack');
      return true;
    },
    reject: () => {
      calls.push('reject');
      return true;
    },
    ...over,
  };
  return { ctx, calls, published };
}

const live = new AbortController().signal;

test('a result is published, then the message acked', async () => {
  const { ctx, calls, published } = context();
  assert.is(await processDelivery(delivery({ requestId: 'r1', data: 1 }), ctx, live), 'done');
  assert.equal(calls, ['ack']);
  assert.is(published[0]?.routingKey, 'results');
});

test('a replacement the broker does not confirm ends in a reject (counted on 4.3), never a nack', async () => {
  const { ctx, calls } = context({ publish: () => Promise.reject(new PublishNotConfirmedError('nack', 'no')) });
  assert.is(await processDelivery(delivery({ requestId: 'r1', data: 1 }), ctx, live), 'requeued');
  assert.equal(calls, ['reject']);
});

test('a result goes through publishResult (shared results messages): the ack waits for its confirm, a refusal requeues', async () => {
  let confirm: () => void = () => undefined;
  const viaResults: Envelope[] = [];
  const { ctx, calls, published } = context({
    publishResult: (e) =>
      new Promise<void>((resolve) => {
        viaResults.push(e);
        confirm = resolve;
      }),
  });
  const outcome = processDelivery(delivery({ requestId: 'r1', data: 1 }), ctx, live);
  await new Promise<void>((r) => setImmediate(r));
  assert.is(viaResults.length, 1);
  assert.is(published.length, 0, 'a result does not take the plain publish');
  assert.equal(calls, [], 'not acked before the results message is confirmed');
  confirm();
  assert.is(await outcome, 'done');
  assert.equal(calls, ['ack']);

  const refused = context({ publishResult: () => Promise.reject(new PublishNotConfirmedError('nack', 'no')) });
  assert.is(await processDelivery(delivery({ requestId: 'r2', data: 1 }), refused.ctx, live), 'requeued');
  assert.equal(refused.calls, ['reject']);
});

test('a handler failure publishes the retry copy to the job tier, then acks', async () => {
  const { ctx, calls, published } = context({
    handler: () => {
      throw new RetryableError('down');
    },
  });
  assert.is(await processDelivery(delivery({ requestId: 'r1', data: 1 }), ctx, live), 'retried');
  assert.equal(calls, ['ack']);
  assert.is(published[0]?.exchange, 'media.thumbs.retry');
  assert.is(published[0]?.options.headers?.[HEADERS.attempt], 1);
});

test('data failing the job schema is dead-lettered as malformed, naming the field', async () => {
  const { ctx, published } = context({ decode: decoderFor('warren', z.object({ width: z.number() })) });
  assert.is(await processDelivery(delivery({ requestId: 'r1', data: { width: 'wide' } }), ctx, live), 'malformed');
  assert.is(published[0]?.exchange, 'media.thumbs.dlx');
  assert.is(published[0]?.options.headers?.[HEADERS.reason], 'malformed');
  assert.match(String(published[0]?.options.headers?.[HEADERS.errorMessage]), 'data.width');
});

test('a raw body: the handler gets the body, the requestId is the message id, copies get one when it has none', async () => {
  let seen: unknown;
  const { ctx, published } = context({
    decode: decoderFor('raw', undefined),
    handler: (data, c) => {
      seen = { data, id: c.requestId };
      throw new RetryableError('again');
    },
  });
  await processDelivery(delivery({ any: 'shape' }, { messageId: 'ext-7' }), ctx, live);
  assert.equal(seen, { data: { any: 'shape' }, id: 'ext-7' });
  await processDelivery(delivery({ any: 'shape' }, {}), ctx, live);
  assert.match(String(published[1]?.options.messageId), /^sha256-[0-9a-f]{32}$/);
});

test('a shutdown that gives up on a message settles nothing (the worker requeues it with a nack)', async () => {
  const stop = new AbortController();
  const { ctx, calls } = context({
    handler: (_d, c) =>
      new Promise((_, reject) => {
        c.signal.addEventListener('abort', () => reject(c.signal.reason));
        stop.abort();
      }),
  });
  assert.is(await processDelivery(delivery({ requestId: 'r1', data: 1 }), ctx, stop.signal), 'abandoned');
  assert.equal(calls, []);
});

test.run();
