import { EventEmitter } from 'node:events';
import type { AmqpConnectionManager } from 'amqp-connection-manager';
import type { Channel } from 'amqplib';
import { pino } from 'pino';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createMetricsRegistry, PublishMetrics, PublishNotConfirmedError } from '../../core/index.ts';
import { Publisher } from '../../worker/publisher.ts';

/**
 * The worker's publisher against a fake confirm channel: confirms, nacks, returns and deadlines
 * (one sweeping timer for all publishes), and what the metrics count for each.
 */
type Confirm = (err: unknown) => void;

function setup(timeoutMs = 200) {
  const channel = Object.assign(new EventEmitter(), {
    confirms: [] as Confirm[],
    publish(_exchange: string, _key: string, _content: Buffer, _options: unknown, cb: Confirm) {
      this.confirms.push(cb);
      return true;
    },
  });
  let setupFn: ((ch: Channel) => Promise<void>) | undefined;
  const manager = {
    createChannel(opts: { setup: (ch: Channel) => Promise<void> }) {
      setupFn = opts.setup;
      return Object.assign(new EventEmitter(), { close: async () => undefined, waitForConnect: async () => undefined });
    },
  } as unknown as AmqpConnectionManager;
  const registry = createMetricsRegistry({ processMetrics: false });
  const publisher = new Publisher(manager, pino({ level: 'silent' }), timeoutMs, new PublishMetrics(registry));
  void setupFn?.(channel as unknown as Channel);
  return { channel, publisher, registry };
}

const envelope = { exchange: 'processing', routingKey: 'result', content: Buffer.from('{}'), options: { persistent: true, mandatory: true } };

async function outcomes(registry: ReturnType<typeof createMetricsRegistry>): Promise<Record<string, number>> {
  const m = (await registry.getMetricsAsJSON()).find((x) => x.name === 'warren_publish_confirms_total');
  return Object.fromEntries((m?.values ?? []).filter((v) => v.value > 0).map((v) => [String(v.labels.outcome), v.value]));
}

test('resolves on the confirm, rejects on a nack', async () => {
  const { channel, publisher, registry } = setup();
  const ok = publisher.publish(envelope);
  const nacked = publisher.publish(envelope).catch((e: unknown) => e);
  channel.confirms[0]?.(null);
  channel.confirms[1]?.(new Error('nack'));
  await ok;
  const err = await nacked;
  assert.instance(err, PublishNotConfirmedError);
  assert.is((err as PublishNotConfirmedError).reason, 'nack');
  assert.equal(await outcomes(registry), { ack: 1, nack: 1 });
});

test('an unconfirmed publish fails with timeout near its deadline, and a late confirm changes nothing', async () => {
  const { channel, publisher, registry } = setup(200);
  const started = Date.now();
  // The publisher's deadline timer is unref'd (a worker's socket keeps the process alive; none here).
  const keepAlive = setInterval(() => undefined, 1000);
  const err = await publisher.publish(envelope).catch((e: unknown) => e);
  clearInterval(keepAlive);
  const waited = Date.now() - started;
  assert.is((err as PublishNotConfirmedError).reason, 'timeout');
  assert.ok(waited >= 190 && waited < 1000, `failed after ${waited} ms`);
  channel.confirms[0]?.(null);
  assert.equal(await outcomes(registry), { timeout: 1 });
  // The sweeper stops once nothing is pending, and starts again for the next publish.
  const again = publisher.publish(envelope);
  channel.confirms[1]?.(null);
  await again;
  assert.equal(await outcomes(registry), { timeout: 1, ack: 1 });
});

test('a returned message fails as unroutable even though the broker acked it', async () => {
  const { channel, publisher } = setup();
  const p = publisher.publish(envelope).catch((e: unknown) => e);
  channel.emit('return', { fields: { exchange: 'processing', routingKey: 'result' } });
  channel.confirms[0]?.(null);
  assert.is(((await p) as PublishNotConfirmedError).reason, 'unroutable');
  const next = publisher.publish(envelope);
  channel.confirms[1]?.(null);
  await next; // the return was used up by the first publish
});

test.run();
