import type { Channel } from 'amqplib';
import { pino } from 'pino';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ChannelHolder } from '../../amqp/index.ts';
import { waitFor } from '../helpers/broker.ts';
import { type FakeChannel, FakeManager } from '../helpers/fake-amqp.ts';

/**
 * The channel holder against a scripted connection manager: a channel the broker closes on a live
 * connection is reopened alone (never by reconnecting), with a delay that doubles while closes keep
 * coming; a lost connection drops the channel until the manager reconnects; blocked is tracked.
 */
const logger = pino({ level: 'silent' });

function setup(retryMs = 20) {
  const manager = new FakeManager();
  let setups = 0;
  const holder = new ChannelHolder<Channel>({
    connection: manager.asManager(),
    name: 'test',
    create: (m) => m.createChannel(),
    setup: async () => {
      setups += 1;
    },
    logger,
    retryMs,
  });
  return { manager, holder, setups: () => setups };
}

test('opens a channel at start and resolves whenOpen with it', async () => {
  const { manager, holder, setups } = setup();
  holder.start();
  const ch = await holder.whenOpen();
  assert.is(ch, manager.channels[0] as unknown as Channel);
  assert.is(setups(), 1);
  await holder.close();
  assert.is(holder.current, undefined);
});

test('a channel closed by the broker on a live connection is reopened, with a doubling delay, and the connection is kept', async () => {
  const { manager, holder, setups } = setup(40);
  let reconnects = 0;
  (manager as unknown as { reconnect: () => void }).reconnect = () => reconnects++;
  holder.start();
  await holder.whenOpen();
  const opened: number[] = [Date.now()];
  for (let i = 1; i <= 3; i++) {
    const prev = holder.current as unknown as FakeChannel;
    const closedAt = Date.now();
    prev.closeByBroker();
    assert.is(holder.current, undefined);
    const next = await waitFor(
      `channel ${i + 1}`,
      () => (holder.current && holder.current !== (prev as unknown as Channel) ? holder.current : undefined),
      3000,
      2,
    );
    assert.ok(next);
    opened.push(Date.now() - closedAt);
  }
  assert.is(setups(), 4, 'setup ran on every new channel');
  assert.is(reconnects, 0, 'never by reconnecting');
  // 40, 80, 160 ms: each reopen waits about twice the one before (timers may run late, never early).
  assert.ok((opened[1] ?? 0) >= 35 && (opened[2] ?? 0) >= 75 && (opened[3] ?? 0) >= 155, `delays ${opened.slice(1).join(', ')} ms`);
  await holder.close();
});

test('renew: the next publishes go on a new channel at once; the old one is closed only after the linger (its confirms can still arrive)', async () => {
  const { manager, holder, setups } = setup();
  holder.start();
  const first = (await holder.whenOpen()) as unknown as FakeChannel;
  // whenOpen resolves inside the opening; renew is a no-op until it is over.
  await new Promise<void>((r) => setImmediate(r));
  holder.renew(60);
  const second = await waitFor(
    'a new channel',
    () => (holder.current && holder.current !== (first as unknown as Channel) ? holder.current : undefined),
    3000,
    2,
  );
  assert.is(manager.channels.length, 2);
  assert.is(setups(), 2, 'setup ran on the new channel');
  assert.not.ok(first.closed, 'the old channel lingers');
  await waitFor('the old channel closed after the linger', () => (first.closed ? true : undefined), 3000, 5);
  assert.is(holder.current, second, 'the new one stays current when the old one closes');
  await holder.close();
});

test('a lost connection drops the channel; the manager connecting again brings a new one', async () => {
  const { manager, holder } = setup();
  holder.start();
  const first = await holder.whenOpen();
  manager.connected = false;
  manager.emit('disconnect', { err: new Error('gone') });
  assert.is(holder.current, undefined);
  const waiting = holder.whenOpen();
  manager.connected = true;
  manager.emit('connect', { url: 'amqp://x' });
  const second = await waiting;
  assert.is.not(second, first);
  await holder.close();
});

test('blocked follows the connection, and listeners hear each block', async () => {
  const { manager, holder } = setup();
  let heard = 0;
  holder.addBlockedListener(() => heard++);
  holder.start();
  await holder.whenOpen();
  manager.emit('blocked', { reason: 'low on memory' });
  assert.is(holder.blocked, true);
  assert.is(heard, 1);
  manager.emit('unblocked');
  assert.is(holder.blocked, false);
  await holder.close();
});

test.run();
