import amqplib from 'amqplib';
import { pino } from 'pino';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { applyTopology, DEFAULT_REQUESTS_QUEUE, DEFAULT_RESULTS_QUEUE, loadCompiledTopology, routesFor } from '../../topology/index.ts';
import { defineWorker } from '../../worker/index.ts';
import { createTestVhost, type TestVhost, waitFor, within } from '../helpers/broker.ts';

// A worker for fire-and-forget jobs (`results: false`): each message is acked once its handler
// returned, and nothing is published to the results route.
const compiled = loadCompiledTopology(new URL('../fixtures/worker-topology.yaml', import.meta.url).pathname);
let vh: TestVhost;

test.before(async () => {
  vh = await within(10_000, 'vhost', createTestVhost('worker-noresult'));
  await applyTopology({ amqpUrl: vh.url, compiled });
});
test.after(async () => {
  await vh?.cleanup();
});

test('results: false acks after the handler and publishes no result', async () => {
  const handled: string[] = [];
  const worker = defineWorker<string>({
    handler: (data) => {
      handled.push(data);
    },
    urls: [vh.url],
    topology: compiled,
    logger: pino({ level: 'silent' }),
    results: false,
  });
  await within(15_000, 'worker start', worker.start());
  const conn = await amqplib.connect(vh.url);
  try {
    const ch = await conn.createConfirmChannel();
    const route = routesFor(compiled, DEFAULT_REQUESTS_QUEUE).publish;
    if (!route) throw new Error('fixture has no publish route');
    for (let i = 0; i < 20; i++)
      ch.publish(route.exchange, route.routingKey, Buffer.from(JSON.stringify({ requestId: `n-${i}`, data: `job-${i}` })), {
        persistent: true,
        messageId: `n-${i}`,
      });
    await ch.waitForConfirms();
    await waitFor('20 jobs handled', () => (handled.length >= 20 ? true : undefined));
    await within(15_000, 'worker stop', worker.stop());
    const main = await ch.checkQueue(DEFAULT_REQUESTS_QUEUE);
    const results = await ch.checkQueue(DEFAULT_RESULTS_QUEUE);
    assert.is(main.messageCount, 0, 'every job acked');
    assert.is(results.messageCount, 0, 'no result published');
    assert.equal(handled.sort(), Array.from({ length: 20 }, (_, i) => `job-${i}`).sort());
  } finally {
    await conn.close();
  }
});

test('acks are sent together, yet a slow message holds back none of the others', async () => {
  // Prefetch 3 with the first message held: were the later acks waiting for it (one multiple
  // ack), the window would stay full and only two more could ever be delivered.
  let release: () => void = () => undefined;
  const held = new Promise<void>((r) => {
    release = r;
  });
  const handled: string[] = [];
  const worker = defineWorker<string>({
    handler: async (data) => {
      if (data === 'slow') await held;
      handled.push(data);
    },
    urls: [vh.url],
    topology: compiled,
    logger: pino({ level: 'silent' }),
    results: false,
    concurrency: 3,
  });
  const conn = await amqplib.connect(vh.url);
  try {
    const ch = await conn.createConfirmChannel();
    const route = routesFor(compiled, DEFAULT_REQUESTS_QUEUE).publish;
    if (!route) throw new Error('fixture has no publish route');
    const send = (id: string, data: string) =>
      ch.publish(route.exchange, route.routingKey, Buffer.from(JSON.stringify({ requestId: id, data })), { persistent: true, messageId: id });
    send('slow-1', 'slow');
    for (let i = 0; i < 200; i++) send(`f-${i}`, `fast-${i}`);
    await ch.waitForConfirms();
    await within(15_000, 'worker start', worker.start());
    await waitFor('200 fast jobs past the slow one', () => (handled.length >= 200 ? true : undefined), 20_000);
    assert.not.ok(handled.includes('slow'), 'the slow one is still held');
    release();
    await waitFor('the slow one too', () => (handled.includes('slow') ? true : undefined));
    await within(15_000, 'worker stop', worker.stop());
    assert.is((await ch.checkQueue(DEFAULT_REQUESTS_QUEUE)).messageCount, 0, 'every message acked, none back in the queue');
    assert.is(handled.length, 201, 'no redelivery');
  } finally {
    release();
    await conn.close();
  }
});

test.run();
