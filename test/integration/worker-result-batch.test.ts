import amqplib from 'amqplib';
import { pino } from 'pino';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { decodeResult, decodeResults, RESULTS_BATCH_CONTENT_TYPE, resultCountOf } from '../../core/index.ts';
import { applyTopology, DEFAULT_REQUESTS_QUEUE, DEFAULT_RESULTS_QUEUE, loadCompiledTopology, routesFor } from '../../topology/index.ts';
import { defineWorker } from '../../worker/index.ts';
import { createTestVhost, type TestVhost, waitFor, within } from '../helpers/broker.ts';

// A busy worker on a real broker: results finished while a results message awaits its confirm
// share the next one; every request's result arrives exactly once, and every request is acked.
const compiled = loadCompiledTopology(new URL('../fixtures/worker-topology.yaml', import.meta.url).pathname);
let vh: TestVhost;

test.before(async () => {
  vh = await within(10_000, 'vhost', createTestVhost('worker-batch'));
  await applyTopology({ amqpUrl: vh.url, compiled });
});
test.after(async () => {
  await vh?.cleanup();
});

/** Publishes `n` requests, runs a worker over them, and returns the results queue's messages. */
async function runBurst(prefix: string, n: number, resultBatch: number | undefined): Promise<amqplib.GetMessage[]> {
  const conn = await amqplib.connect(vh.url);
  try {
    const ch = await conn.createConfirmChannel();
    const route = routesFor(compiled, DEFAULT_REQUESTS_QUEUE).publish;
    if (!route) throw new Error('fixture has no publish route');
    for (let i = 0; i < n; i++) {
      const id = `${prefix}-${i}`;
      ch.publish(route.exchange, route.routingKey, Buffer.from(JSON.stringify({ requestId: id, data: i })), { persistent: true, messageId: id });
    }
    await ch.waitForConfirms();
    const worker = defineWorker<number>({
      handler: (data) => data * 2,
      urls: [vh.url],
      topology: compiled,
      logger: pino({ level: 'silent' }),
      concurrency: 50,
      ...(resultBatch === undefined ? {} : { resultBatch }),
    });
    await within(15_000, 'worker start', worker.start());
    await waitFor(
      `${n} requests acked`,
      async () => ((await ch.checkQueue(DEFAULT_REQUESTS_QUEUE)).messageCount === 0 && worker.stats().done >= n ? true : undefined),
      20_000,
    );
    await within(15_000, 'worker stop', worker.stop());
    assert.is(worker.stats().done, n);
    const messages: amqplib.GetMessage[] = [];
    for (let m = await ch.get(DEFAULT_RESULTS_QUEUE, { noAck: true }); m !== false; m = await ch.get(DEFAULT_RESULTS_QUEUE, { noAck: true })) messages.push(m);
    return messages;
  } finally {
    await conn.close();
  }
}

/** Each result in the messages, as [requestId, result]. */
function resultsIn(messages: amqplib.GetMessage[]): Array<[string, unknown]> {
  return messages.flatMap((m): Array<[string, unknown]> => {
    if (m.properties.contentType === RESULTS_BATCH_CONTENT_TYPE) {
      const items = decodeResults(m.content) ?? [];
      assert.is(resultCountOf(m.properties), items.length, 'the header counts the results');
      return items.map((i) => [i?.requestId as string, i?.result]);
    }
    const r = decodeResult(m.content);
    return [[r?.requestId as string, r?.result]];
  });
}

test('a burst: results share messages, each request answered once with its own result', async () => {
  const n = 300;
  const messages = await runBurst('b', n, undefined);
  const got = resultsIn(messages).sort((a, b) => Number(a[0].slice(2)) - Number(b[0].slice(2)));
  assert.equal(
    got,
    Array.from({ length: n }, (_, i) => [`b-${i}`, i * 2]),
  );
  const batches = messages.filter((m) => m.properties.contentType === RESULTS_BATCH_CONTENT_TYPE);
  assert.ok(batches.length > 0 && messages.length < n, `${messages.length} messages for ${n} results, ${batches.length} of them batches`);
});

test('resultBatch 1: one message per result, as before', async () => {
  const n = 100;
  const messages = await runBurst('s', n, 1);
  assert.is(messages.length, n);
  assert.ok(messages.every((m) => m.properties.contentType === 'application/json'));
  assert.is(new Set(resultsIn(messages).map(([id]) => id)).size, n);
});

test.run();
