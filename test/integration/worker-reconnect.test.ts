import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import amqplib, { type ChannelModel, type ConfirmChannel, type GetMessage } from 'amqplib';
import { pino } from 'pino';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { credentialsOf, decodeResult, HEADERS, RetryableError } from '../../core/index.ts';
import { applyTopology, DEFAULT_REQUESTS_QUEUE, DEFAULT_RESULTS_QUEUE, loadCompiledTopology, routesFor } from '../../topology/index.ts';
import { defineWorker, type Handler, type Worker } from '../../worker/index.ts';
import { createTestVhost, type TestVhost, waitFor, within } from '../helpers/broker.ts';

// Broker-side faults against a running in-process worker: the broker closes its connection, the
// broker cancels its consumer because the queue was deleted.
const compiled = loadCompiledTopology(new URL('../fixtures/worker-topology.yaml', import.meta.url).pathname);
const publishRoute = routesFor(compiled, DEFAULT_REQUESTS_QUEUE).publish ?? { exchange: '', routingKey: '' };
const connectionName = `warren-worker-test-${randomBytes(4).toString('hex')}`;

let vhost: TestVhost;
let conn: ChannelModel;
let ch: ConfirmChannel;
let worker: Worker;
const started = new Map<string, number>();

const handler: Handler<{ delayMs: number; fail?: boolean }> = async (data, ctx) => {
  started.set(ctx.requestId, (started.get(ctx.requestId) ?? 0) + 1);
  if (data.fail) throw new RetryableError('failing on purpose', { code: 'TEST_FAIL' });
  await sleep(data.delayMs, undefined, { signal: ctx.signal });
  return `${ctx.requestId}-done`;
};

const results = new Map<string, GetMessage[]>();
async function result(requestId: string, ms = 15_000): Promise<GetMessage> {
  return waitFor(
    `result of ${requestId}`,
    async () => {
      for (;;) {
        const m = await ch.get(DEFAULT_RESULTS_QUEUE, { noAck: true });
        if (!m) break;
        const id = String(m.properties.correlationId);
        results.set(id, [...(results.get(id) ?? []), m]);
      }
      return results.get(requestId)?.[0];
    },
    ms,
    50,
  );
}

async function publish(requestId: string, delayMs: number, fail = false): Promise<void> {
  const body = Buffer.from(JSON.stringify({ requestId, data: { delayMs, fail } }));
  ch.publish(publishRoute.exchange, publishRoute.routingKey, body, { persistent: true, messageId: requestId, correlationId: requestId });
  await ch.waitForConfirms();
}

interface ConnectionInfo {
  name: string;
  client_properties?: { connection_name?: string };
}

async function workerConnections(): Promise<ConnectionInfo[]> {
  const all = (await vhost.mgmt.get<ConnectionInfo[]>(vhost.mgmt.path('vhosts', vhost.vhost, 'connections'))) ?? [];
  return all.filter((c) => c.client_properties?.connection_name === connectionName);
}

/** DELETE /api/connections/<name> with an X-Reason, as an operator closing it would. */
async function closeFromBroker(name: string): Promise<void> {
  const { username, password } = credentialsOf(vhost.url);
  const res = await fetch(`${vhost.mgmt.baseUrl}${vhost.mgmt.path('connections', name)}`, {
    method: 'DELETE',
    headers: { authorization: `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}`, 'x-reason': 'warren test: closed by the broker' },
  });
  assert.ok(res.status === 204 || res.status === 200, `DELETE connection answered ${res.status}`);
}

test.before(async () => {
  vhost = await createTestVhost('worker-reconnect');
  assert.is((await applyTopology({ amqpUrl: vhost.url, compiled })).failed, undefined);
  conn = await amqplib.connect(vhost.url);
  ch = await conn.createConfirmChannel();
  worker = defineWorker({ handler, urls: [vhost.url], topology: compiled, logger: pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' }), connectionName });
  await within(10_000, 'worker start', worker.start());
});

test.after(async () => {
  await worker?.stop(2000);
  await conn?.close();
  await vhost?.cleanup();
});

test('the broker closes the connection mid-message: the worker reconnects, nothing is lost', async () => {
  await publish('before', 0);
  assert.is(decodeResult((await result('before')).content)?.result, 'before-done');

  const [first] = await waitFor('the worker connection in the management API', async () => {
    const list = await workerConnections();
    return list.length > 0 ? list : undefined;
  });
  await publish('in-flight', 1500);
  await waitFor('the in-flight handler to start', () => (started.has('in-flight') ? true : undefined));
  await closeFromBroker(first?.name ?? '');

  // The delivery died with its channel: its result is published after the reconnect, its ack is
  // skipped (the tag is void on the new channel), and the broker redelivers it: a duplicate.
  assert.is(decodeResult((await result('in-flight')).content)?.result, 'in-flight-done');
  await publish('after', 0);
  assert.is(decodeResult((await result('after')).content)?.result, 'after-done');
  const again = await waitFor('a new worker connection', async () => {
    const list = await workerConnections();
    return list.find((c) => c.name !== first?.name);
  });
  assert.ok(again);
  // Both copies end with a result: the one published after the reconnect and the redelivery's.
  await waitFor('the redelivered copy to be processed', async () => {
    await result('in-flight');
    return (results.get('in-flight')?.length ?? 0) >= 2 ? true : undefined;
  });
  assert.is(started.get('in-flight'), 2, 'handled twice: once before the close, once redelivered');
  assert.ok(worker.stats().redelivery >= 1, `stats ${JSON.stringify(worker.stats())}: the stale ack was skipped`);
  const q = await waitFor('the main queue to drain', async () => {
    const info = await ch.checkQueue(DEFAULT_REQUESTS_QUEUE);
    return info.messageCount === 0 && worker.inFlightCount === 0 ? info : undefined;
  });
  assert.is(q.consumerCount, 1, 'the consumer is back');
});

test('a deleted queue cancels the consumer; it resumes once the topology is applied again', async () => {
  await ch.deleteQueue(DEFAULT_REQUESTS_QUEUE);
  await waitFor('the broker to cancel the consumer', () => (worker.consuming ? undefined : true));
  assert.is((await applyTopology({ amqpUrl: vhost.url, compiled })).failed, undefined);
  await publish('after-redeclare', 0);
  assert.is(decodeResult((await result('after-redeclare')).content)?.result, 'after-redeclare-done');
  assert.is((await ch.checkQueue(DEFAULT_REQUESTS_QUEUE)).consumerCount, 1);
});

test('a publish channel closed by the broker (retry exchange deleted) comes back; the message is not lost', async () => {
  const retryExchange = routesFor(compiled, DEFAULT_REQUESTS_QUEUE).retry?.exchange ?? '';
  const deadQueue = routesFor(compiled, DEFAULT_REQUESTS_QUEUE).deadLetter?.queue ?? '';
  await ch.deleteExchange(retryExchange);
  await publish('no-retry-exchange', 0, true);
  // The retry copy is refused (404 closes the publish channel); the message is requeued, not acked.
  await waitFor('a failed attempt', () => ((started.get('no-retry-exchange') ?? 0) >= 1 ? true : undefined));
  assert.is((await applyTopology({ amqpUrl: vhost.url, compiled })).failed, undefined);
  const dead = await waitFor(
    'the message in the dead-letter queue',
    async () => {
      const m = await ch.get(deadQueue, { noAck: true });
      return m && m.properties.messageId === 'no-retry-exchange' ? m : undefined;
    },
    20_000,
  );
  // Either path ends in dead-letter: the worker's own (max-attempts, once the exchange is back)
  // or the broker's delivery limit (while the retry copy kept being refused).
  const reason = dead.properties.headers?.[HEADERS.reason];
  const deaths = (dead.properties.headers?.['x-death'] ?? []) as Array<{ reason?: string }>;
  assert.ok(reason === 'max-attempts' || deaths.some((d) => d.reason === 'delivery_limit'), `reason ${String(reason)}, x-death ${JSON.stringify(deaths)}`);
  await publish('after-publish-fault', 0);
  assert.is(decodeResult((await result('after-publish-fault')).content)?.result, 'after-publish-fault-done');
});

test('a channel error costs only its channel: the connection and the deliveries on the consume channel stay', async () => {
  const retryExchange = routesFor(compiled, DEFAULT_REQUESTS_QUEUE).retry?.exchange ?? '';
  const before = await waitFor('the worker connection', async () => {
    const list = await workerConnections();
    return list.length === 1 ? list : undefined;
  });
  const redeliveriesBefore = worker.stats().redelivery;
  await publish('long-running', 4000);
  await waitFor('the long handler to start', () => (started.has('long-running') ? true : undefined));
  // A retry copy to a deleted exchange: the broker closes the publish channel (404) while the
  // long message is in flight on the consume channel. Recovering by reconnecting (as the worker did)
  // would void its delivery tag and the broker would redeliver it.
  await ch.deleteExchange(retryExchange);
  await publish('channel-fault', 0, true);
  await waitFor('a failed attempt of the faulty message', () => ((started.get('channel-fault') ?? 0) >= 1 ? true : undefined));
  assert.is((await applyTopology({ amqpUrl: vhost.url, compiled })).failed, undefined);
  assert.is(decodeResult((await result('long-running')).content)?.result, 'long-running-done');
  await publish('after-channel-fault', 0);
  assert.is(decodeResult((await result('after-channel-fault')).content)?.result, 'after-channel-fault-done');
  // Its ack went to the channel that delivered it (had the connection been recreated, the ack would
  // be void, the broker would redeliver it and a second result would come before this later one).
  assert.is(worker.stats().redelivery, redeliveriesBefore, 'no delivery lost its channel');
  assert.is(results.get('long-running')?.length, 1, 'one result for it');
  const after = await workerConnections();
  assert.equal(
    after.map((c) => c.name),
    before.map((c) => c.name),
    'the same connection: no reconnect',
  );
});

test.run();
