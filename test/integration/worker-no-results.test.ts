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

test.run();
