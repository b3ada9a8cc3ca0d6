import type { ConfirmChannel } from 'amqplib';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { decodeResult, HEADERS, PermanentError, RetryableError } from '../../core/index.ts';
import { DEFAULT_REQUESTS_QUEUE, DEFAULT_RESULTS_QUEUE, loadCompiledTopology, routesFor } from '../../topology/index.ts';
import type { Handler, Worker } from '../../worker/index.ts';
import { messageTaker, within } from '../helpers/broker.ts';
import { startWorkerInVhost, type WorkerInVhost } from '../helpers/worker-vhost.ts';

// The runtime in-process against a real broker: retries through the TTL tiers, dead-lettering
// with reasons, malformed input, handler timeouts. Delays come from the fixture (300ms, 600ms).
const compiled = loadCompiledTopology(new URL('../fixtures/worker-topology.yaml', import.meta.url).pathname);
const requests = routesFor(compiled, DEFAULT_REQUESTS_QUEUE);
const tiers = requests.retry?.tiers ?? [];
const maxAttempts = requests.retry?.maxAttempts ?? 0;
const deadQueue = requests.deadLetter?.queue ?? '';
const publishRoute = requests.publish ?? { exchange: '', routingKey: '' };

let ctx: WorkerInVhost;
let ch: ConfirmChannel;
let worker: Worker;
/** Handler invocations by requestId: the attempt number and when. */
const calls = new Map<string, Array<{ attempt: number; at: number }>>();

type Mode = { mode: 'flaky'; failures: number } | { mode: 'always' } | { mode: 'permanent' } | { mode: 'hang-once' } | { mode: 'slow' } | { mode: 'ok' };

let running = 0;
let mostRunning = 0;

const handler: Handler<Mode> = async (data, ctx) => {
  const list = calls.get(ctx.requestId) ?? [];
  list.push({ attempt: ctx.attempt, at: Date.now() });
  calls.set(ctx.requestId, list);
  switch (data.mode) {
    case 'flaky':
      if (ctx.attempt <= data.failures) throw new RetryableError(`flaky failure ${ctx.attempt}`, { code: 'FLAKY' });
      return { ok: true, attempt: ctx.attempt };
    case 'always':
      throw new RetryableError('upstream still down', { code: 'UPSTREAM_DOWN' });
    case 'permanent':
      throw new PermanentError('this request can never work', { code: 'INVALID_INPUT' });
    case 'hang-once':
      if (ctx.attempt === 1) await new Promise((_, reject) => ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason)));
      return 'finally';
    case 'slow':
      running += 1;
      mostRunning = Math.max(mostRunning, running);
      await new Promise((r) => setTimeout(r, 150));
      running -= 1;
      return 'slow';
    default:
      return 'ok';
  }
};

const taker = messageTaker({ get: (q, o) => ch.get(q, o) });
const seen = taker.seen;
const take = (queue: string, requestId: string, ms = 10_000) => taker.take(queue, requestId, ms);

async function publish(requestId: string, body: Buffer | object, headers: Record<string, unknown> = {}): Promise<void> {
  const content = Buffer.isBuffer(body) ? body : Buffer.from(JSON.stringify(body));
  ch.publish(publishRoute.exchange, publishRoute.routingKey, content, { persistent: true, messageId: requestId, correlationId: requestId, headers });
  await ch.waitForConfirms();
}

test.before(async () => {
  ctx = await startWorkerInVhost('worker-retry', compiled, { handler, concurrency: 4, timeoutMs: 400 });
  ({ ch, worker } = ctx);
});

test.after(async () => {
  await ctx?.cleanup(2000);
});

test('fails twice then succeeds: the result comes after both retry tiers, with attempts 3', async () => {
  const started = Date.now();
  await publish('flaky-1', { requestId: 'flaky-1', data: { mode: 'flaky', failures: 2 } });
  const msg = await take(DEFAULT_RESULTS_QUEUE, 'flaky-1');
  const elapsed = Date.now() - started;
  const result = decodeResult(msg.content);
  assert.is(result?.requestId, 'flaky-1');
  assert.is(result?.attempts, 3);
  assert.equal(result?.result, { ok: true, attempt: 3 });
  assert.is(msg.properties.correlationId, 'flaky-1');
  assert.is(msg.properties.messageId, 'flaky-1');
  const sumOfDelays = (tiers[0]?.delayMs ?? 0) + (tiers[1]?.delayMs ?? 0);
  assert.ok(elapsed >= sumOfDelays, `result after ${elapsed} ms, expected at least ${sumOfDelays} ms`);
  const at = (calls.get('flaky-1') ?? []).map((c) => c.at);
  assert.equal(
    (calls.get('flaky-1') ?? []).map((c) => c.attempt),
    [1, 2, 3],
  );
  assert.ok((at[1] ?? 0) - (at[0] ?? 0) >= (tiers[0]?.delayMs ?? 0), 'attempt 2 waited for tier 1');
  assert.ok((at[2] ?? 0) - (at[1] ?? 0) >= (tiers[1]?.delayMs ?? 0), 'attempt 3 waited for tier 2');
});

test('always fails: dead-lettered after maxAttempts with the reason headers', async () => {
  const body = { requestId: 'always-1', data: { mode: 'always' } };
  await publish('always-1', body, { traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01' });
  const dead = await take(deadQueue, 'always-1');
  const h = dead.properties.headers ?? {};
  assert.is(h[HEADERS.reason], 'max-attempts');
  assert.is(h[HEADERS.attempts], maxAttempts);
  assert.is(h[HEADERS.errorCode], 'UPSTREAM_DOWN');
  assert.is(h[HEADERS.errorMessage], 'upstream still down');
  assert.match(String(h[HEADERS.errorStack]), /upstream still down/);
  assert.is(h[HEADERS.originQueue], DEFAULT_REQUESTS_QUEUE);
  const first = Date.parse(String(h[HEADERS.firstFailure]));
  const last = Date.parse(String(h[HEADERS.lastFailure]));
  assert.ok(first > 0 && last - first >= (tiers[0]?.delayMs ?? 0) + (tiers[1]?.delayMs ?? 0), 'first and last failure span both tiers');
  assert.is(JSON.parse(String(h[HEADERS.history])).length, maxAttempts);
  assert.is(h.traceparent, '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01', 'trace context survives retries');
  assert.equal(JSON.parse(dead.content.toString()), body, 'the body is unchanged');
  assert.is(calls.get('always-1')?.length, maxAttempts);
  assert.not.ok(seen.has(`${DEFAULT_RESULTS_QUEUE}/always-1`));
});

test('a PermanentError goes straight to dead-letter', async () => {
  await publish('permanent-1', { requestId: 'permanent-1', data: { mode: 'permanent' } });
  const h = (await take(deadQueue, 'permanent-1')).properties.headers ?? {};
  assert.is(h[HEADERS.reason], 'permanent');
  assert.is(h[HEADERS.attempts], 1);
  assert.is(h[HEADERS.errorCode], 'INVALID_INPUT');
  assert.is(calls.get('permanent-1')?.length, 1);
});

test('malformed messages are dead-lettered at once with reason malformed; the worker goes on', async () => {
  await publish('malformed-1', Buffer.from('this is not JSON {'));
  await publish('malformed-2', { data: 'no requestId' });
  await publish('good-after-malformed', { requestId: 'good-after-malformed', data: { mode: 'ok' } });
  for (const id of ['malformed-1', 'malformed-2']) {
    const dead = await take(deadQueue, id);
    assert.is(dead.properties.headers?.[HEADERS.reason], 'malformed', id);
    assert.is(dead.properties.headers?.[HEADERS.errorCode], 'MALFORMED', id);
  }
  assert.is((await take(deadQueue, 'malformed-1')).content.toString(), 'this is not JSON {');
  assert.match(String((await take(deadQueue, 'malformed-2')).properties.headers?.[HEADERS.errorMessage]), /requestId/);
  assert.is(decodeResult((await take(DEFAULT_RESULTS_QUEUE, 'good-after-malformed')).content)?.result, 'ok');
});

test('a handler past its timeout is retried (TimeoutError), then succeeds', async () => {
  await publish('hang-1', { requestId: 'hang-1', data: { mode: 'hang-once' } });
  const result = decodeResult((await take(DEFAULT_RESULTS_QUEUE, 'hang-1')).content);
  assert.is(result?.attempts, 2);
  assert.is(result?.result, 'finally');
});

test('prefetch bounds the messages in flight to the concurrency', async () => {
  const ids = Array.from({ length: 12 }, (_, i) => `slow-${i}`);
  for (const id of ids) await publish(id, { requestId: id, data: { mode: 'slow' } });
  for (const id of ids) await take(DEFAULT_RESULTS_QUEUE, id);
  assert.is(mostRunning, worker.settings.jobs[0]?.concurrency, `at most ${mostRunning} handlers ran at once`);
});

test('a retry copy that no queue would take is not acked away: the message ends dead, not lost', async () => {
  // A retry tier's binding removed by hand: the broker confirms an unroutable publish all the same,
  // so only the mandatory flag's basic.return tells the worker its copy went nowhere.
  const tier1 = tiers[0];
  if (!tier1 || !requests.retry) throw new Error('fixture has no retry tier');
  await ch.unbindQueue(tier1.queue, requests.retry.exchange, tier1.routingKey);
  try {
    await publish('unroutable-1', { requestId: 'unroutable-1', data: { mode: 'always' } });
    // Requeued after each unconfirmed copy until the quorum queue's delivery limit dead-letters it.
    const dead = await take(deadQueue, 'unroutable-1', 20_000);
    const death = (dead.properties.headers?.['x-death'] as Array<{ reason: string }> | undefined)?.[0];
    assert.is(death?.reason, 'delivery_limit');
    assert.is(
      calls.get('unroutable-1')?.every((c) => c.attempt === 1),
      true,
      'no copy reached a retry tier',
    );
  } finally {
    await ch.bindQueue(tier1.queue, requests.retry.exchange, tier1.routingKey);
  }
});

test('nothing is left in the main queue or unacked', async () => {
  const summary = await within(5000, 'worker stop', worker.stop(2000));
  assert.is(summary.requeued, 0);
  assert.ok(summary.counts.done >= 3 && summary.counts.dead >= 2 && summary.counts.malformed === 2, JSON.stringify(summary.counts));
  const q = await ch.checkQueue(DEFAULT_REQUESTS_QUEUE);
  assert.is(q.messageCount, 0, 'ready messages after stop (unacked ones would be back in ready)');
  for (const t of tiers) assert.is((await ch.checkQueue(t.queue)).messageCount, 0, t.queue);
});

test.run();
