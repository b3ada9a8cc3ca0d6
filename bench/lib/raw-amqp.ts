import amqplib from 'amqplib';

/**
 * The baselines: plain amqplib, written the way a careful user would (a window of outstanding
 * confirms; prefetch with manual acks), against which Warren's publisher and worker are compared.
 */

export function payload(size: number, i: number): Buffer {
  const body = JSON.stringify({ requestId: `bench-${i}`, data: 'x'.repeat(Math.max(0, size - 40)) });
  return Buffer.from(body.padEnd(size, ' '));
}

/** Publishes `count` persistent messages with confirms, at most `window` unconfirmed at once. */
export async function rawPublish(url: string, queue: string, count: number, window: number, size: number): Promise<{ perSecond: number; ms: number }> {
  const conn = await amqplib.connect(url);
  const ch = await conn.createConfirmChannel();
  const started = performance.now();
  let inFlight = 0;
  let sent = 0;
  let failed = 0;
  await new Promise<void>((resolve, reject) => {
    let done = 0;
    const pump = () => {
      while (inFlight < window && sent < count) {
        const i = sent++;
        inFlight++;
        ch.sendToQueue(queue, payload(size, i), { persistent: true, contentType: 'application/json', messageId: `bench-${i}` }, (err) => {
          inFlight--;
          done++;
          if (err) failed++;
          if (done === count) resolve();
          else pump();
        });
      }
    };
    ch.on('error', reject);
    pump();
  });
  const ms = performance.now() - started;
  await ch.close();
  await conn.close();
  if (failed > 0) throw new Error(`raw publish: ${failed} of ${count} nacked`);
  return { perSecond: (count / ms) * 1000, ms };
}

/** Consumes and acks `count` messages with the given prefetch. */
export async function rawConsume(url: string, queue: string, count: number, prefetch: number): Promise<{ perSecond: number; ms: number }> {
  const conn = await amqplib.connect(url);
  const ch = await conn.createChannel();
  await ch.prefetch(prefetch);
  let got = 0;
  let started = 0;
  const ms = await new Promise<number>((resolve, reject) => {
    ch.on('error', reject);
    void ch
      .consume(queue, (msg) => {
        if (!msg) return;
        if (got === 0) started = performance.now();
        // Decode as a handler would, so both sides pay for JSON.
        JSON.parse(msg.content.toString('utf8'));
        ch.ack(msg);
        got++;
        if (got === count) resolve(performance.now() - started);
      })
      .catch(reject);
  });
  await ch.close();
  await conn.close();
  return { perSecond: (count / ms) * 1000, ms };
}

/** Fills a queue with `count` messages (confirmed) for a consume run. */
export async function fillQueue(url: string, queue: string, count: number, size: number): Promise<void> {
  await rawPublish(url, queue, count, 500, size);
}

/** Declares a plain quorum queue for a run and deletes it afterwards. */
export async function withQuorumQueue<T>(url: string, name: string, fn: (queue: string) => Promise<T>): Promise<T> {
  const conn = await amqplib.connect(url);
  const ch = await conn.createChannel();
  await ch.assertQueue(name, { durable: true, arguments: { 'x-queue-type': 'quorum' } });
  try {
    return await fn(name);
  } finally {
    await ch.deleteQueue(name).catch(() => undefined);
    await ch.close().catch(() => undefined);
    await conn.close().catch(() => undefined);
  }
}

/**
 * Consume, publish a result with a confirm, ack after the confirm: what a careful user writes
 * for at-least-once request/result processing by hand, Warren's default worker mode.
 */
export async function rawConsumeWithResults(
  url: string,
  queue: string,
  result: { exchange: string; routingKey: string },
  count: number,
  prefetch: number,
): Promise<{ perSecond: number; ms: number }> {
  const conn = await amqplib.connect(url);
  const ch = await conn.createChannel();
  const pub = await conn.createConfirmChannel();
  await ch.prefetch(prefetch);
  let got = 0;
  let started = 0;
  const ms = await new Promise<number>((resolve, reject) => {
    ch.on('error', reject);
    pub.on('error', reject);
    void ch
      .consume(queue, (msg) => {
        if (!msg) return;
        if (started === 0) started = performance.now();
        const { requestId } = JSON.parse(msg.content.toString('utf8')) as { requestId: string };
        const body = Buffer.from(JSON.stringify({ requestId, result: null, attempts: 1, processedAt: new Date().toISOString() }));
        // The same route as the worker's results (exchange and key), so the broker does equal work.
        pub.publish(result.exchange, result.routingKey, body, { persistent: true, correlationId: requestId }, (err) => {
          if (err) return reject(err);
          ch.ack(msg);
          got++;
          if (got === count) resolve(performance.now() - started);
        });
      })
      .catch(reject);
  });
  await ch.close();
  await pub.close();
  await conn.close();
  return { perSecond: (count / ms) * 1000, ms };
}
