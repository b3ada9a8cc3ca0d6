import { setTimeout as sleep } from 'node:timers/promises';
import type { ConfirmChannel } from 'amqplib';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { DEFAULT_REQUESTS_QUEUE, loadCompiledTopology, routesFor } from '../../topology/index.ts';
import type { Handler, Worker } from '../../worker/index.ts';
import { waitFor } from '../helpers/broker.ts';
import { startWorkerInVhost, type WorkerInVhost } from '../helpers/worker-vhost.ts';

// A handler that ignores its AbortSignal against a hung dependency: each timeout retries the
// message and frees its prefetch slot while the handler runs on. Without a cap the running
// handlers pile up far past the concurrency; with it, at most `concurrency` overdue handlers run
// beside the `concurrency` in-flight ones, and the gauge says so.
const compiled = loadCompiledTopology(new URL('../fixtures/worker-topology.yaml', import.meta.url).pathname);
const requests = routesFor(compiled, DEFAULT_REQUESTS_QUEUE);
const publishRoute = requests.publish ?? { exchange: '', routingKey: '' };
const deadQueue = requests.deadLetter?.queue ?? '';
const CONCURRENCY = 2;
const MESSAGES = 10;

let ctx: WorkerInVhost;
let ch: ConfirmChannel;
let worker: Worker;
let running = 0;
let mostRunning = 0;
let mostOverdue = 0;

const handler: Handler = async () => {
  running += 1;
  mostRunning = Math.max(mostRunning, running);
  try {
    await sleep(1500); // ignores ctx.signal, as a hung client library would
  } finally {
    running -= 1;
  }
  return 'late';
};

test.before(async () => {
  ctx = await startWorkerInVhost('worker-overdue', compiled, { handler, concurrency: CONCURRENCY, timeoutMs: 100 });
  ({ ch, worker } = ctx);
});

test.after(async () => {
  await ctx?.cleanup(3000);
});

async function overdueGauge(): Promise<number> {
  const m = (await worker.registry.getMetricsAsJSON()).find((x) => x.name === 'warren_handlers_overdue');
  return m?.values.find((v) => v.labels.queue === DEFAULT_REQUESTS_QUEUE)?.value ?? 0;
}

test('handlers past their timeout are capped at the concurrency, and counted', async () => {
  for (let i = 0; i < MESSAGES; i++) {
    const id = `hung-${i}`;
    ch.publish(publishRoute.exchange, publishRoute.routingKey, Buffer.from(JSON.stringify({ requestId: id, data: i })), { persistent: true, messageId: id });
  }
  await ch.waitForConfirms();
  // Every message times out on each of its attempts and ends dead (max-attempts); the gauge is
  // sampled on the way.
  await waitFor(
    `all ${MESSAGES} messages dead-lettered`,
    async () => {
      mostOverdue = Math.max(mostOverdue, await overdueGauge());
      return (await ch.checkQueue(deadQueue)).messageCount === MESSAGES ? true : undefined;
    },
    60_000,
    50,
  );
  assert.ok(mostOverdue >= 1, `the gauge showed overdue handlers (max ${mostOverdue})`);
  assert.ok(mostRunning <= 2 * CONCURRENCY, `at most ${2 * CONCURRENCY} handlers ran at once, saw ${mostRunning}`);
  await waitFor('the overdue handlers to end', async () => ((await overdueGauge()) === 0 && running === 0 ? true : undefined), 10_000);
});

test.run();
