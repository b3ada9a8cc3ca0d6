import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { z } from 'zod';
import { ConfigError, createLogger } from '../../core/index.ts';
import { EnqueueError, JobValidationError, Producer } from '../../producer/index.ts';
import { compileTopology, parseTopology } from '../../topology/index.ts';
import { defineJob } from '../../worker/index.ts';
import { within } from '../helpers/broker.ts';
import { fakeSource } from '../helpers/fake-confirm-channel.ts';

/** producer.enqueue against a scripted confirm channel: the wire contract, schemas, ids and refusal codes. */
const logger = createLogger({ name: 'test', level: 'silent' });
const topology = compileTopology(
  parseTopology([
    {
      file: 'jobs.yaml',
      text: `
exchanges:
  media: { type: direct }
queues:
  media.thumbnails:
    bind: { exchange: media, routingKey: thumbnails }
    retry: { delays: [1s], maxAttempts: 2 }
    deadLetter: true
    job: { name: thumbnails, public: true, results: media.results }
  media.emails:
    bind: { exchange: media, routingKey: emails }
    deadLetter: true
    job: { name: emails, results: false }
  media.results:
    bind: { exchange: media, routingKey: results }
`,
    },
  ]),
);

function setup(opts: { maxInFlight?: number; timeoutMs?: number } = {}) {
  const { ch, source } = fakeSource();
  const producer = new Producer({
    channels: source,
    topology,
    logger,
    maxInFlight: opts.maxInFlight ?? 10,
    publishTimeoutMs: opts.timeoutMs ?? 1000,
    jobs: [defineJob({ queue: 'emails', schema: z.object({ to: z.email() }), handler: () => undefined })],
  });
  return { ch, source, producer };
}

/** Waits until the producer has handed `n` messages to the channel (schema checks are async). */
async function waitSent(ch: { sent: unknown[] }, n: number): Promise<void> {
  await within(
    1000,
    `${n} published`,
    (async () => {
      while (ch.sent.length < n) await new Promise((r) => setImmediate(r));
    })(),
  );
}

async function settle<T>(p: Promise<T>): Promise<T | unknown> {
  return within(3000, 'enqueue settles', p).catch((e: unknown) => e);
}

test('enqueue resolves with the requestId once confirmed; the message follows the wire contract', async () => {
  const { ch, producer } = setup();
  const before = Date.now();
  const p = producer.enqueue('thumbnails', { url: 'a.png' }, { headers: { traceparent: 't' } });
  await waitSent(ch, 1);
  ch.ack(0);
  const requestId = await p;
  const sent = ch.sent[0];
  assert.is(sent?.exchange, 'media');
  assert.is(sent?.routingKey, 'thumbnails');
  const body = JSON.parse(sent?.content.toString() ?? '{}') as { requestId: string; data: unknown; acceptedAt: number };
  assert.is(body.requestId, requestId);
  assert.equal(body.data, { url: 'a.png' });
  assert.ok(body.acceptedAt >= before && body.acceptedAt <= Date.now());
  assert.is(sent?.options.messageId, requestId);
  assert.is(sent?.options.correlationId, requestId);
  assert.is(sent?.options.persistent, true);
  assert.is(sent?.options.mandatory, true);
  assert.equal(sent?.options.headers, { traceparent: 't' });
});

test('a job is found by its name or its queue; an unknown one is a ConfigError listing the jobs', async () => {
  const { producer } = setup();
  assert.is(producer.job('media.thumbnails').name, 'thumbnails');
  const err = await settle(producer.enqueue('nope', 1));
  assert.instance(err, ConfigError);
  assert.match((err as Error).message, 'thumbnails, emails');
});

test('data failing the job schema is refused before anything is sent, naming the field', async () => {
  const { ch, producer } = setup();
  const err = await settle(producer.enqueue('emails', { to: 'not-an-address' }));
  assert.instance(err, JobValidationError);
  assert.match((err as Error).message, 'data.to');
  const viaDefinition = await settle(producer.enqueue(defineJob({ queue: 'thumbnails', schema: z.object({ url: z.string() }), handler: () => 1 }), { url: 3 }));
  assert.instance(viaDefinition, JobValidationError);
  assert.instance(await settle(producer.enqueue('thumbnails', undefined)), JobValidationError);
  assert.is(ch.sent.length, 0);
});

test('the same idempotencyKey gives the same requestId (per job), carried in a header', async () => {
  const { ch, producer } = setup();
  const one = producer.enqueue('thumbnails', 1, { idempotencyKey: 'k1' });
  const two = producer.enqueue('thumbnails', 1, { idempotencyKey: 'k1' });
  const other = producer.enqueue('emails', { to: 'a@b.example' }, { idempotencyKey: 'k1' });
  await waitSent(ch, 3);
  for (let i = 0; i < 3; i++) ch.ack(i);
  const [a, b, c] = await Promise.all([one, two, other]);
  assert.is(a, b);
  assert.is.not(a, c);
  assert.match(a, /^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  assert.equal(ch.sent[0]?.options.headers, { 'x-warren-idempotency-key': 'k1' });
});

test('refusals carry a code, retryAfterMs and whether the outcome is known', async () => {
  const { ch, source, producer } = setup({ maxInFlight: 1, timeoutMs: 100 });
  const keepAlive = setInterval(() => undefined, 1000);
  const first = producer.enqueue('thumbnails', 1);
  const full = (await settle(producer.enqueue('thumbnails', 2))) as EnqueueError;
  assert.instance(full, EnqueueError);
  assert.is(full.code, 'OVERLOADED');
  assert.is(full.outcome, 'refused');
  assert.ok(full.retryAfterMs > 0);
  const timedOut = (await settle(first)) as EnqueueError;
  clearInterval(keepAlive);
  assert.is(timedOut.code, 'TIMEOUT');
  assert.is(timedOut.outcome, 'unknown');
  ch.ack(0);

  const nacked = producer.enqueue('thumbnails', 3);
  await waitSent(ch, 2);
  ch.nack(1);
  assert.is(((await settle(nacked)) as EnqueueError).code, 'PUBLISH_REJECTED');

  const unroutable = producer.enqueue('thumbnails', 4);
  await waitSent(ch, 3);
  ch.returnMessage(2);
  ch.ack(2);
  assert.is(((await settle(unroutable)) as EnqueueError).code, 'UNROUTABLE');

  source.blocked = true;
  assert.is(((await settle(producer.enqueue('thumbnails', 5))) as EnqueueError).code, 'BROKER_BLOCKED');
  source.blocked = false;
  source.current = undefined;
  assert.is(((await settle(producer.enqueue('thumbnails', 6))) as EnqueueError).code, 'BROKER_UNAVAILABLE');
});

test('close() waits for pending confirms', async () => {
  const { ch, producer } = setup();
  const a = producer.enqueue('thumbnails', 1);
  const b = producer.enqueue('thumbnails', 2);
  await waitSent(ch, 2);
  let closed = false;
  const closing = producer.close().then(() => {
    closed = true;
  });
  ch.ack(1);
  await within(1000, 'the second enqueue confirmed', b);
  assert.is(closed, false, 'close waits while the first confirm is pending');
  ch.ack(0);
  await within(1000, 'closed', closing);
  assert.type(await a, 'string');
});

test.run();
