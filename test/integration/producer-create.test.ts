import amqplib from 'amqplib';
import { pino } from 'pino';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ConfigError, createMetricsRegistry } from '../../core/index.ts';
import { createProducer, JobValidationError, ProducerStartError, requestIdForKey } from '../../producer/index.ts';
import { applyTopology, DEFAULT_REQUESTS_QUEUE, loadCompiledTopology } from '../../topology/index.ts';
import { createTestVhost, type TestVhost, waitFor, within } from '../helpers/broker.ts';

/**
 * createProducer against the real broker, from the sources (the package test runs it too, but from
 * an installed tarball): the start checks (URLs, the broker answering, the jobs' exchanges), an
 * enqueue that lands in the job's queue with its requestId, and close.
 */
const compiled = loadCompiledTopology();
const logger = pino({ level: 'silent' });
let withTopology: TestVhost;
let empty: TestVhost;

test.before(async () => {
  withTopology = await within(10_000, 'vhost', createTestVhost('producer'));
  empty = await within(10_000, 'vhost', createTestVhost('producer-empty'));
  await applyTopology({ amqpUrl: withTopology.url, compiled });
});
test.after(async () => {
  await withTopology?.cleanup();
  await empty?.cleanup();
});

test('URLs that are not amqp:// are refused before anything connects', async () => {
  for (const urls of [[], ['http://127.0.0.1:5672']]) {
    try {
      await createProducer({ urls, topology: compiled, logger });
      assert.unreachable('createProducer accepted bad URLs');
    } catch (err) {
      assert.instance(err, ConfigError);
      assert.match((err as Error).message, /amqp/);
    }
  }
});

test('a broker with no topology: the start fails naming the missing exchange and what to run', async () => {
  try {
    await within(30_000, 'createProducer', createProducer({ urls: [empty.url], topology: compiled, logger }));
    assert.unreachable('createProducer started without the exchanges');
  } catch (err) {
    assert.instance(err, ProducerStartError);
    assert.match((err as Error).message, /lacks exchange "[^"]+".*topology apply/);
  }
});

test('a broker that does not answer: the start fails at its deadline', async () => {
  // Nothing listens on port 1: every connect is refused, and the producer keeps retrying until its deadline.
  try {
    await within(30_000, 'createProducer', createProducer({ urls: ['amqp://127.0.0.1:1'], topology: compiled, logger, connectTimeoutMs: 1500 }));
    assert.unreachable('createProducer started without a broker');
  } catch (err) {
    assert.instance(err, ProducerStartError);
    assert.match((err as Error).message, /did not answer in time \(1500 ms\)/);
  }
});

test('enqueue lands in the job queue with its requestId (a key gives a stable one); close waits for the confirms', async () => {
  const registry = createMetricsRegistry({ processMetrics: false });
  const producer = await within(30_000, 'createProducer', createProducer({ urls: [withTopology.url], topology: compiled, logger, metrics: registry }));
  const job = producer.job(DEFAULT_REQUESTS_QUEUE).name;
  const ids: string[] = [];
  try {
    ids.push(await producer.enqueue(job, { n: 1 }));
    ids.push(await producer.enqueue(job, { n: 2 }, { idempotencyKey: 'key-2' }));
    assert.is(ids[1], requestIdForKey(job, 'key-2'));
    try {
      await producer.enqueue(job, undefined);
      assert.unreachable('undefined data was enqueued');
    } catch (err) {
      assert.instance(err, JobValidationError);
    }
  } finally {
    await within(15_000, 'producer close', producer.close());
  }
  assert.match(await registry.metrics(), /^warren_publishes_total 2$/m);
  const conn = await amqplib.connect(withTopology.url);
  try {
    const ch = await conn.createChannel();
    const got: string[] = [];
    await waitFor('both jobs in the queue', async () => {
      const msg = await ch.get(DEFAULT_REQUESTS_QUEUE, { noAck: true });
      if (msg) got.push(String(msg.properties.messageId));
      return got.length >= 2 ? true : undefined;
    });
    assert.equal(got.sort(), [...ids].sort());
  } finally {
    await conn.close();
  }
});

test.run();
