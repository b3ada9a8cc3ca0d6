import type { ConfirmChannel } from 'amqplib';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ConfirmPublisher, type Envelope } from '../../amqp/index.ts';
import { createLogger, createMetricsRegistry, PublishMetrics, PublishNotConfirmedError } from '../../core/index.ts';
import { within } from '../helpers/broker.ts';
import { FakeConfirmChannel, fakeSource } from '../helpers/fake-confirm-channel.ts';

/**
 * The one confirm publisher (worker, producer, API, dead-letter tools) against a scripted confirm
 * channel: confirms, nacks, returns matched per message, deadlines, the window, blocked, closes.
 */
const logger = createLogger({ name: 'test', level: 'silent' });

function setup(opts: { timeoutMs?: number; maxInFlight?: number; maxInFlightBytes?: number; failWhenBlocked?: boolean } = {}) {
  const { ch, source } = fakeSource();
  const registry = createMetricsRegistry({ processMetrics: false });
  const publisher = new ConfirmPublisher({
    channels: source,
    timeoutMs: opts.timeoutMs ?? 1000,
    ...(opts.maxInFlight !== undefined ? { maxInFlight: opts.maxInFlight } : {}),
    ...(opts.maxInFlightBytes !== undefined ? { maxInFlightBytes: opts.maxInFlightBytes } : {}),
    failWhenBlocked: opts.failWhenBlocked ?? true,
    logger,
    metrics: new PublishMetrics(registry),
  });
  return { ch, source, publisher, registry };
}

const env = (messageId: string, body = '{}'): Envelope => ({
  exchange: 'processing',
  routingKey: 'result',
  content: Buffer.from(body),
  options: { persistent: true, mandatory: true, messageId },
});

async function reasonOf(p: Promise<void>): Promise<string> {
  try {
    await within(3000, 'publish settles', p);
  } catch (err) {
    if (err instanceof PublishNotConfirmedError) return err.reason;
    throw err;
  }
  return 'confirmed';
}

async function outcomes(registry: ReturnType<typeof createMetricsRegistry>): Promise<Record<string, number>> {
  const m = (await registry.getMetricsAsJSON()).find((x) => x.name === 'warren_publish_confirms_total');
  return Object.fromEntries((m?.values ?? []).filter((v) => v.value > 0).map((v) => [String(v.labels.outcome), v.value]));
}

test('resolves on the confirm, rejects on a nack; the metrics count each', async () => {
  const { ch, publisher, registry } = setup();
  const ok = publisher.publish(env('a'));
  const nacked = publisher.publish(env('b'));
  assert.is(publisher.unconfirmed, 2);
  ch.ack(0);
  ch.nack(1);
  assert.is(await reasonOf(ok), 'confirmed');
  assert.is(await reasonOf(nacked), 'nack');
  assert.is(publisher.unconfirmed, 0);
  assert.equal(await outcomes(registry), { ack: 1, nack: 1 });
  assert.equal(ch.sent[0]?.options, { persistent: true, mandatory: true, messageId: 'a' });
});

test('a return is matched to its own message, not to another on the same route', async () => {
  const { ch, publisher } = setup();
  const a = publisher.publish(env('a'));
  const b = publisher.publish(env('b'));
  // The broker returns b (say its copy was unroutable) and then confirms both.
  ch.returnMessage(1);
  ch.ack(0);
  ch.ack(1);
  assert.is(await reasonOf(a), 'confirmed');
  assert.is(await reasonOf(b), 'unroutable');
  const c = publisher.publish(env('b'));
  ch.ack(2);
  assert.is(await reasonOf(c), 'confirmed', 'the return was used up by its own publish');
});

test('no confirm in time rejects with timeout near the deadline; a late confirm changes nothing', async () => {
  const { ch, publisher, registry } = setup({ timeoutMs: 150 });
  // The deadline sweeper is unref'd (a real socket keeps the process alive; none here).
  const keepAlive = setInterval(() => undefined, 1000);
  const started = Date.now();
  const reason = await reasonOf(publisher.publish(env('a')));
  clearInterval(keepAlive);
  const took = Date.now() - started;
  assert.is(reason, 'timeout');
  // Not before its deadline; how late after it depends on the machine (reasonOf bounds the wait).
  assert.ok(took >= 140, `took ${took} ms`);
  ch.ack(0);
  assert.equal(await outcomes(registry), { timeout: 1 });
  const again = publisher.publish(env('b'));
  ch.ack(1);
  assert.is(await reasonOf(again), 'confirmed', 'the sweeper starts again for the next publish');
});

test('a full window fails at once and frees up as confirms arrive', async () => {
  const { ch, publisher } = setup({ maxInFlight: 2, timeoutMs: 5000 });
  const a = publisher.publish(env('a'));
  const b = publisher.publish(env('b'));
  assert.is(await reasonOf(publisher.publish(env('c'))), 'window-full');
  assert.is(ch.sent.length, 2);
  ch.ack(0);
  assert.is(await reasonOf(a), 'confirmed');
  const d = publisher.publish(env('d'));
  ch.ack(1);
  ch.ack(2);
  assert.is(await reasonOf(b), 'confirmed');
  assert.is(await reasonOf(d), 'confirmed');
});

test('the window is bounded in bytes too (one large publish always fits)', async () => {
  const { ch, publisher } = setup({ maxInFlight: 100, maxInFlightBytes: 1000, timeoutMs: 5000 });
  const big = publisher.publish(env('big', 'x'.repeat(2000)));
  assert.is(await reasonOf(publisher.publish(env('small'))), 'window-full');
  ch.ack(0);
  assert.is(await reasonOf(big), 'confirmed');
  const small = publisher.publish(env('small'));
  ch.ack(1);
  assert.is(await reasonOf(small), 'confirmed');
});

test('a timed-out publish keeps its window slot until the broker answers', async () => {
  const { ch, publisher } = setup({ maxInFlight: 1, timeoutMs: 100 });
  const keepAlive = setInterval(() => undefined, 1000);
  assert.is(await reasonOf(publisher.publish(env('a'))), 'timeout');
  clearInterval(keepAlive);
  assert.is(await reasonOf(publisher.publish(env('b'))), 'window-full');
  assert.is(publisher.awaiting, 0);
  ch.ack(0);
  assert.is(publisher.unconfirmed, 0);
});

test('no channel, a blocked connection or a closed channel fail at once', async () => {
  const { ch, source, publisher } = setup();
  source.blocked = true;
  assert.is(await reasonOf(publisher.publish(env('a'))), 'blocked');
  source.blocked = false;
  ch.throwOnPublish = true;
  assert.is(await reasonOf(publisher.publish(env('b'))), 'closed');
  source.current = undefined;
  assert.is(await reasonOf(publisher.publish(env('c'))), 'closed');
  assert.is(publisher.unconfirmed, 0);
});

test('the broker blocking the connection fails what awaits a confirm (API, producer); a worker keeps waiting', async () => {
  const api = setup();
  const p = api.publisher.publish(env('a'));
  api.source.block();
  assert.is(await reasonOf(p), 'blocked');

  const worker = setup({ failWhenBlocked: false });
  const q = worker.publisher.publish(env('a'));
  worker.source.block();
  const r = worker.publisher.publish(env('b'));
  worker.ch.ack(0);
  worker.ch.ack(1);
  assert.is(await reasonOf(q), 'confirmed');
  assert.is(await reasonOf(r), 'confirmed');
});

test('a channel closing with publishes pending rejects them with reason closed', async () => {
  const { ch, source, publisher } = setup();
  const p = publisher.publish(env('a'));
  // As amqplib does: the holder drops the channel and pending callbacks fail in the same 'close'.
  source.current = undefined;
  ch.nack(0);
  assert.is(await reasonOf(p), 'closed');
});

test('a deadline passing with no answer at all from the broker reports a silent link, once', async () => {
  const { ch, source } = fakeSource();
  let silent = 0;
  const publisher = new ConfirmPublisher({ channels: source, timeoutMs: 100, logger, onSilent: () => silent++ });
  const keepAlive = setInterval(() => undefined, 1000);
  try {
    const a = publisher.publish(env('a'));
    const b = publisher.publish(env('b'));
    assert.is(await reasonOf(a), 'timeout');
    assert.is(await reasonOf(b), 'timeout');
    assert.is(silent, 1, 'two timeouts of one silence are one report');
    ch.ack(0);
    ch.ack(1);
  } finally {
    clearInterval(keepAlive);
    publisher.close();
  }
});

test('a slow broker is not silent: one publish times out while the broker goes on answering others, and nothing is reported', async () => {
  const { ch, source } = fakeSource();
  let silent = 0;
  const publisher = new ConfirmPublisher({ channels: source, timeoutMs: 300, logger, onSilent: () => silent++ });
  try {
    const slow = publisher.publish(env('slow'));
    // Every 30 ms another publish, answered at once: the broker is alive, only `slow` waits.
    let sent = 1;
    const others: Array<Promise<void>> = [];
    const ticker = setInterval(() => {
      others.push(publisher.publish(env(`other-${sent}`)));
      ch.ack(sent);
      sent += 1;
    }, 30);
    try {
      assert.is(await reasonOf(slow), 'timeout');
      // Ten more answers after the deadline (about as long again), `slow` still unanswered.
      const atDeadline = sent;
      await within(
        3000,
        'ten more answers',
        waitUntil(() => sent >= atDeadline + 10),
      );
    } finally {
      clearInterval(ticker);
    }
    ch.ack(0);
    for (const o of others) assert.is(await reasonOf(o), 'confirmed');
    assert.is(silent, 0, 'answers kept coming: no silence');
  } finally {
    publisher.close();
  }
});

test('what was published on a silent link after its report fails as a timeout when the owner gives up on the link, not as a refusal when the drop closes it', async () => {
  const { ch, source } = fakeSource();
  let giveUp: (() => void) | undefined;
  const publisher = new ConfirmPublisher({ channels: source, timeoutMs: 100, logger, onSilent: (g) => (giveUp = g) });
  const keepAlive = setInterval(() => undefined, 1000);
  try {
    const a = publisher.publish(env('a'));
    assert.is(await reasonOf(a), 'timeout');
    assert.ok(giveUp, 'the silence was reported');
    // Published while the owner probes the link: still awaiting its confirm.
    const b = publisher.publish(env('b'));
    giveUp?.();
    // The drop then closes the channel, as amqplib fails pending confirms in its 'close'.
    source.current = undefined;
    ch.nack(1);
    assert.is(await reasonOf(b), 'timeout', 'the broker may still read b from its socket: unknown, not refused');
  } finally {
    clearInterval(keepAlive);
  }
});

test('silence is reported after silentAfterMs, before the deadline, without failing the publishes; once per silence', async () => {
  const { ch, source } = fakeSource();
  const reports: Array<{ at: number }> = [];
  const start = performance.now();
  const publisher = new ConfirmPublisher({
    channels: source,
    timeoutMs: 2000,
    silentAfterMs: 100,
    logger,
    onSilent: () => reports.push({ at: performance.now() - start }),
  });
  const keepAlive = setInterval(() => undefined, 1000);
  try {
    const a = publisher.publish(env('a'));
    await within(
      1000,
      'first report',
      waitUntil(() => reports.length === 1),
    );
    assert.ok((reports[0]?.at ?? 0) < 1000, `reported at ${reports[0]?.at} ms, long before the 2000 ms deadline`);
    assert.is(publisher.awaiting, 1, 'the publish still waits for its confirm');
    ch.ack(0);
    assert.is(await reasonOf(a), 'confirmed');
    const b = publisher.publish(env('b'));
    await within(
      1000,
      'second report',
      waitUntil(() => reports.length === 2),
    );
    assert.ok((reports[1]?.at ?? 0) > (reports[0]?.at ?? 0));
    ch.ack(1);
    assert.is(await reasonOf(b), 'confirmed');
  } finally {
    clearInterval(keepAlive);
  }
});

/** A publisher that reports silence after 300 ms, then every 60 ms while it goes on, to `onSilent` (the owner's probe). */
function renewingPublisher(source: ReturnType<typeof fakeSource>['source'], onSilent: () => Promise<void>): ConfirmPublisher {
  return new ConfirmPublisher({ channels: source, timeoutMs: 10_000, silentAfterMs: 300, renewAfterMs: 60, logger, onSilent });
}

test('while the owner probes the link no silence is reported; after a kept connection the next report comes renewAfterMs after the probe, and after an answer silentAfterMs again', async () => {
  const { ch, source } = fakeSource();
  const reports: number[] = [];
  const probesEnded: number[] = [];
  const start = performance.now();
  // The owner's probe: the broker answers it after 400 ms (the connection is kept, a new channel opened).
  const publisher = renewingPublisher(source, () => {
    reports.push(performance.now() - start);
    return new Promise<void>((resolve) =>
      setTimeout(() => {
        probesEnded.push(performance.now() - start);
        resolve();
      }, 400),
    );
  });
  try {
    void publisher.publish(env('a')).catch(() => undefined);
    await within(
      3000,
      'two reports',
      waitUntil(() => reports.length === 2 && probesEnded.length >= 1),
    );
    const [first = 0, second = 0] = reports;
    const [probeEnd = 0] = probesEnded;
    assert.ok(first >= 290, `first report after silentAfterMs: ${first} ms`);
    assert.ok(second >= probeEnd, `no report while the probe ran (report at ${second} ms, probe ended at ${probeEnd} ms)`);
    assert.ok(second - probeEnd >= 55 && second - probeEnd < 250, `the next report renewAfterMs after the probe, not silentAfterMs: ${second - probeEnd} ms`);
    // An answer ends the silence: a later one is reported silentAfterMs after its first unanswered publish.
    await within(
      3000,
      'second probe',
      waitUntil(() => probesEnded.length === 2),
    );
    ch.ack(0);
    const sentAt = performance.now() - start;
    void publisher.publish(env('b')).catch(() => undefined);
    await within(
      3000,
      'third report',
      waitUntil(() => reports.length === 3),
    );
    assert.ok((reports[2] ?? 0) - sentAt >= 290, `after an answer, silentAfterMs again: ${(reports[2] ?? 0) - sentAt} ms`);
  } finally {
    publisher.close();
  }
});

test('a renewed-away channel closing with publishes pending is no answer from the broker: the silence goes on at renewAfterMs', async () => {
  const old = new FakeConfirmChannel();
  const { source } = fakeSource(old);
  const renewed = new FakeConfirmChannel();
  const reports: number[] = [];
  const start = performance.now();
  // The probe is answered at once, and the owner renews the channel (ChannelHolder.renew).
  const publisher = renewingPublisher(source, () => {
    reports.push(performance.now() - start);
    source.current = renewed as unknown as ConfirmChannel;
    return Promise.resolve();
  });
  try {
    const a = publisher.publish(env('a'));
    await within(
      3000,
      'first report',
      waitUntil(() => reports.length === 1),
    );
    void publisher.publish(env('b')).catch(() => undefined);
    // The old channel closes after its linger, as amqplib fails its pending confirms.
    old.nack(0);
    assert.is(await reasonOf(a), 'closed');
    await within(
      3000,
      'second report',
      waitUntil(() => reports.length === 2),
    );
    const step = (reports[1] ?? 0) - (reports[0] ?? 0);
    assert.ok(step < 250, `the next report renewAfterMs later, not silentAfterMs: ${step} ms`);
  } finally {
    publisher.close();
  }
});

test('a window full of publishes given up at their deadline, unanswered, is still a silence: reported again and again', async () => {
  const { ch, source } = fakeSource();
  const reports: number[] = [];
  const publisher = new ConfirmPublisher({
    channels: source,
    timeoutMs: 100,
    maxInFlight: 2,
    silentAfterMs: 100,
    renewAfterMs: 30,
    logger,
    onSilent: () => {
      reports.push(performance.now());
      return Promise.resolve();
    },
  });
  try {
    const a = publisher.publish(env('a'));
    const b = publisher.publish(env('b'));
    assert.is(await reasonOf(a), 'timeout');
    assert.is(await reasonOf(b), 'timeout');
    // No caller waits any more, and the window is full: nothing new goes out.
    assert.is(await reasonOf(publisher.publish(env('c'))), 'window-full');
    const seen = reports.length;
    await within(
      2000,
      'reports while nothing is answered',
      waitUntil(() => reports.length >= seen + 3),
    );
    ch.ack(0);
    ch.ack(1);
    assert.is(publisher.unconfirmed, 0, 'the answers free the window');
  } finally {
    publisher.close();
  }
});

test('publishes left unanswered after the broker last answered are a silence, with nothing new published after that answer', async () => {
  const { ch, source } = fakeSource();
  let reports = 0;
  const publisher = new ConfirmPublisher({ channels: source, timeoutMs: 10_000, silentAfterMs: 100, logger, onSilent: () => reports++ });
  try {
    const a = publisher.publish(env('a'));
    const b = publisher.publish(env('b'));
    const c = publisher.publish(env('c'));
    // close() below fails them if the test fails first.
    for (const p of [b, c]) p.catch(() => undefined);
    ch.ack(0);
    assert.is(await reasonOf(a), 'confirmed');
    // b and c wait, and the broker says nothing more; no caller publishes again.
    await within(
      2000,
      'a report of the silence after the last answer',
      waitUntil(() => reports === 1),
    );
    assert.is(publisher.awaiting, 2, 'b and c still wait for their confirms');
    ch.ack(1);
    ch.ack(2);
    assert.is(await reasonOf(b), 'confirmed');
    assert.is(await reasonOf(c), 'confirmed');
  } finally {
    publisher.close();
  }
});

function waitUntil(cond: () => boolean): Promise<void> {
  return new Promise((resolve) => {
    const t = setInterval(() => {
      if (cond()) {
        clearInterval(t);
        resolve();
      }
    }, 5);
  });
}

test('close() fails what still awaits its confirm', async () => {
  const { publisher } = setup();
  const p = publisher.publish(env('a'));
  publisher.close();
  assert.is(await reasonOf(p), 'closed');
});

test.run();
