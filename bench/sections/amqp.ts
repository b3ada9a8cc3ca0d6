import { randomUUID } from 'node:crypto';
import amqplib from 'amqplib';
import { pino } from 'pino';
import type { CompiledTopology } from '../../topology/index.ts';
import { HANDLER_PREFETCH_FACTOR } from '../../worker/handler-slots.ts';
import { inOrder, type Order, type Pair } from '../lib/pair-rounds.ts';
import { fillQueue, payload, rawConsume, rawConsumeWithResults, rawPublish } from '../lib/raw-amqp.ts';
import { warren } from '../lib/warren.ts';

const silent = pino({ level: 'silent' });
const REQUESTS = 'processing.requests';
const RESULTS = 'processing.results';

/** Confirmed publishes per second, `window` outstanding: raw amqplib vs Warren's confirm publisher (the AMQP layer). */
export function benchPublish(url: string, count: number, window: number, size: number, order: Order = 'raw-first'): Promise<Pair> {
  const raw = async () => {
    const r = await rawPublish(url, REQUESTS, count, window, size);
    await purge(url, REQUESTS);
    return r.perSecond;
  };
  return inOrder(order, raw, () => warrenPublish(url, count, window, size));
}

async function warrenPublish(url: string, count: number, window: number, size: number): Promise<number> {
  const { amqp, core } = await warren();
  const { ChannelHolder, ConfirmPublisher } = amqp;
  const conn = core.connectBroker({ urls: [url], logger: silent, connectionName: 'warren-bench publisher' });
  const holder = new ChannelHolder<amqplib.ConfirmChannel>({ connection: conn, name: 'publish', create: (m) => m.createConfirmChannel(), logger: silent });
  holder.start();
  await holder.whenOpen();
  const publisher = new ConfirmPublisher({ channels: holder, timeoutMs: 10_000, maxInFlight: window, logger: silent });
  const content = payload(size, 0);
  const started = performance.now();
  let sent = 0;
  // The same window as the raw run: `window` publishes in flight, each replaced when confirmed.
  await Promise.all(
    Array.from({ length: window }, async () => {
      while (sent < count) {
        const i = sent++;
        await publisher.publish({ exchange: '', routingKey: REQUESTS, content, options: { persistent: true, mandatory: true, messageId: `bench-${i}` } });
      }
    }),
  );
  const ms = performance.now() - started;
  await holder.close();
  await conn.close();
  await purge(url, REQUESTS);
  return (count / ms) * 1000;
}

/**
 * Jobs enqueued and confirmed per second with `producer.enqueue` (the topology's job: its route,
 * the request envelope, a requestId each), `window` outstanding, against raw amqplib publishing
 * the very same messages (the job's exchange and routing key, mandatory, the same properties and
 * body) with confirms in the same run: what is left is Warren's own cost. (Against `rawPublish`,
 * which sends a bare message to the default exchange, the broker's extra work for the exchange
 * hop, the mandatory flag and the properties would count as Warren's.)
 */
export function benchEnqueue(url: string, compiled: CompiledTopology, count: number, window: number, size: number, order: Order = 'raw-first'): Promise<Pair> {
  const job = Object.values(compiled.jobs).find((j) => j.queue === REQUESTS);
  if (!job) return Promise.reject(new Error(`the bench topology has no job on ${REQUESTS}`));
  const data = JSON.parse(payload(size, 0).toString()).data as string;
  const raw = async () => {
    const r = await rawPublishLikeProducer(url, job.publish, count, window, data);
    await purge(url, REQUESTS);
    return r.perSecond;
  };
  return inOrder(order, raw, () => warrenEnqueue(url, compiled, count, window, data));
}

async function warrenEnqueue(url: string, compiled: CompiledTopology, count: number, window: number, data: string): Promise<number> {
  const { createProducer } = (await warren()).producer;
  const producer = await createProducer({ urls: [url], topology: compiled, maxInFlight: window, publishTimeoutMs: 10_000, logger: silent });
  const started = performance.now();
  let sent = 0;
  await Promise.all(
    Array.from({ length: window }, async () => {
      while (sent < count) {
        sent++;
        await producer.enqueue(REQUESTS, data);
      }
    }),
  );
  const ms = performance.now() - started;
  await producer.close();
  await purge(url, REQUESTS);
  return (count / ms) * 1000;
}

/** Consume + ack per second at `prefetch`: raw amqplib vs the worker runtime, no-op handler. */
export async function benchConsume(
  url: string,
  compiled: CompiledTopology,
  count: number,
  prefetch: number,
  size: number,
  withResults: boolean,
): Promise<Pair> {
  await fillQueue(url, REQUESTS, count, size);
  const raw = withResults
    ? await rawConsumeWithResults(url, REQUESTS, { exchange: 'processing', routingKey: 'result' }, count, prefetch)
    : await rawConsume(url, REQUESTS, count, prefetch);
  await purge(url, RESULTS);
  await fillQueue(url, REQUESTS, count, size);
  let handled = 0;
  let started = 0;
  let finished = 0;
  let resolveDone: () => void = () => undefined;
  const done = new Promise<void>((r) => {
    resolveDone = r;
  });
  const { defineWorker } = (await warren()).worker;
  const worker = defineWorker({
    handler: () => {
      if (handled === 0) started = performance.now();
      handled++;
      if (handled === count) {
        finished = performance.now();
        resolveDone();
      }
      return null;
    },
    urls: [url],
    topology: compiled,
    logger: silent,
    // The worker prefetches HANDLER_PREFETCH_FACTOR times its concurrency: the same prefetch as raw.
    concurrency: Math.max(1, Math.floor(prefetch / HANDLER_PREFETCH_FACTOR)),
    results: withResults ? {} : false,
  });
  await worker.start();
  await done;
  await worker.stop();
  await purge(url, RESULTS);
  await purge(url, REQUESTS);
  return { raw: raw.perSecond, warren: (count / (finished - started)) * 1000 };
}

/** Raw amqplib, confirm channel, `window` outstanding: the messages producer.enqueue sends, built inline. */
async function rawPublishLikeProducer(
  url: string,
  route: { exchange: string; routingKey: string },
  count: number,
  window: number,
  data: string,
): Promise<{ perSecond: number }> {
  const conn = await amqplib.connect(url);
  const ch = await conn.createConfirmChannel();
  const started = performance.now();
  let sent = 0;
  await Promise.all(
    Array.from({ length: window }, async () => {
      while (sent < count) {
        sent++;
        const requestId = randomUUID();
        const now = Date.now();
        const content = Buffer.from(JSON.stringify({ requestId, data, acceptedAt: now }));
        await new Promise<void>((resolve, reject) =>
          ch.publish(
            route.exchange,
            route.routingKey,
            content,
            {
              persistent: true,
              mandatory: true,
              messageId: requestId,
              correlationId: requestId,
              contentType: 'application/json',
              timestamp: Math.floor(now / 1000),
              appId: 'warren',
            },
            (err: unknown) => (err ? reject(err) : resolve()),
          ),
        );
      }
    }),
  );
  const ms = performance.now() - started;
  await ch.close();
  await conn.close();
  return { perSecond: (count / ms) * 1000 };
}

export async function purge(url: string, queue: string): Promise<void> {
  const conn = await amqplib.connect(url);
  const ch = await conn.createChannel();
  await ch.purgeQueue(queue);
  await conn.close();
}
