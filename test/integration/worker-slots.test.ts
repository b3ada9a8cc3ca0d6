import type { ConfirmChannel } from 'amqplib';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { DEFAULT_REQUESTS_QUEUE, DEFAULT_RESULTS_QUEUE, loadCompiledTopology, routesFor } from '../../topology/index.ts';
import { HANDLER_PREFETCH_FACTOR } from '../../worker/handler-slots.ts';
import type { Handler, Worker } from '../../worker/index.ts';
import { unbatched, waitFor, within } from '../helpers/broker.ts';
import { startWorkerInVhost, type WorkerInVhost } from '../helpers/worker-vhost.ts';

// A job's concurrency bounds its handlers; its prefetch is HANDLER_PREFETCH_FACTOR times that, so the next messages are
// already delivered while earlier ones wait for their results' confirms. A stop requeues the
// messages still waiting for a handler at once, and lets the running ones finish.
const compiled = loadCompiledTopology(new URL('../fixtures/worker-topology.yaml', import.meta.url).pathname);
const requests = routesFor(compiled, DEFAULT_REQUESTS_QUEUE);
const publishRoute = requests.publish ?? { exchange: '', routingKey: '' };
const CONCURRENCY = 3;
const PREFETCH = HANDLER_PREFETCH_FACTOR * CONCURRENCY;
const MESSAGES = PREFETCH + 2 * CONCURRENCY;

let ctx: WorkerInVhost;
let ch: ConfirmChannel;
let worker: Worker;
let running = 0;
let mostRunning = 0;
const started: string[] = [];
let open: () => void = () => undefined;
const gate = new Promise<void>((r) => {
  open = r;
});

const handler: Handler = async (data) => {
  running += 1;
  mostRunning = Math.max(mostRunning, running);
  started.push(String(data));
  try {
    await gate;
  } finally {
    running -= 1;
  }
  return 'ok';
};

test.before(async () => {
  ctx = await startWorkerInVhost('worker-slots', compiled, { handler, concurrency: CONCURRENCY });
  ({ ch, worker } = ctx);
});

test.after(async () => {
  open();
  await ctx?.cleanup(3000);
});

const ready = async (queue: string) => (await ch.checkQueue(queue)).messageCount;

test('the prefetch delivered, the concurrency running; a stop requeues the waiting ones at once and finishes the rest', async () => {
  for (let i = 0; i < MESSAGES; i++) {
    const id = `slot-${i}`;
    ch.publish(publishRoute.exchange, publishRoute.routingKey, Buffer.from(JSON.stringify({ requestId: id, data: i })), { persistent: true, messageId: id });
  }
  await ch.waitForConfirms();
  // The broker keeps what the prefetch does not take: MESSAGES - PREFETCH.
  await waitFor('the prefetch filled', async () =>
    worker.inFlightCount === PREFETCH && (await ready(DEFAULT_REQUESTS_QUEUE)) === MESSAGES - PREFETCH ? true : undefined,
  );
  assert.is(running, CONCURRENCY, 'handlers running: the concurrency');
  assert.is(started.length, CONCURRENCY, 'the other delivered messages wait for a slot');

  const stopping = worker.stop(10_000);
  // The waiting ones go back to the queue while the handlers still run.
  await waitFor('the waiting messages requeued', async () => ((await ready(DEFAULT_REQUESTS_QUEUE)) === MESSAGES - CONCURRENCY ? true : undefined));
  assert.is(running, CONCURRENCY, 'the running handlers were left to finish');
  open();
  const summary = await within(10_000, 'worker stop', stopping);
  assert.is(summary.counts.done, CONCURRENCY);
  assert.is(summary.counts.requeued, PREFETCH - CONCURRENCY, 'the messages that never reached a handler');
  assert.is(summary.requeued, 0, 'nothing was left for the deadline');
  assert.is(mostRunning, CONCURRENCY);
  assert.is(started.length, CONCURRENCY, 'no handler started after the stop');
  const results: string[] = [];
  for (let m = await ch.get(DEFAULT_RESULTS_QUEUE, { noAck: true }); m; m = await ch.get(DEFAULT_RESULTS_QUEUE, { noAck: true })) {
    for (const r of unbatched(m)) results.push(String(r.properties.messageId));
  }
  assert.equal(results.sort(), started.map((i) => `slot-${i}`).sort(), 'a result for each message that ran');
  assert.is(await ready(DEFAULT_REQUESTS_QUEUE), MESSAGES - CONCURRENCY, 'every other message is back in the queue');
});

test.run();
