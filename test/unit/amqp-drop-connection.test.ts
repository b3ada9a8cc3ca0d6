import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { dropIfSilent } from '../../amqp/index.ts';
import { type AmqpConnectionManager, createLogger } from '../../core/index.ts';

/** dropIfSilent against a fake manager: a channel open that answers, one that never does, and a reconnect during the probe. */
const logger = createLogger({ name: 'test', level: 'silent' });

function fakeManager(answers: boolean) {
  const events: string[] = [];
  const model = {
    connection: { stream: { destroy: (err?: Error) => events.push(`destroyed: ${err?.message}`) } },
    createChannel: () => (answers ? Promise.resolve({ on: () => undefined, close: () => Promise.resolve() }) : new Promise<never>(() => undefined)),
  };
  const manager = { connection: model } as unknown as AmqpConnectionManager & { connection: unknown };
  return { manager, events };
}

test('a link that answers a channel open is kept, and nothing is given up', async () => {
  const { manager, events } = fakeManager(true);
  await dropIfSilent(manager, 'silent', logger, { probeMs: 50, beforeDrop: () => events.push('gave up') });
  assert.equal(events, []);
});

test('a link that does not answer within the probe: its publishes are given up, then its socket destroyed', async () => {
  const { manager, events } = fakeManager(false);
  await dropIfSilent(manager, 'silent', logger, { probeMs: 50, beforeDrop: () => events.push('gave up') });
  assert.equal(events, ['gave up', 'destroyed: connection dropped: silent']);
});

test('a link that answers the probe is kept, and its owner told (it opens a new channel)', async () => {
  const { manager, events } = fakeManager(true);
  await dropIfSilent(manager, 'silent', logger, { probeMs: 50, beforeDrop: () => events.push('gave up'), onAnswered: () => events.push('answered') });
  assert.equal(events, ['answered']);
});

test('a connection replaced during the probe (a reconnect) is left alone', async () => {
  const { manager, events } = fakeManager(false);
  const p = dropIfSilent(manager, 'silent', logger, { probeMs: 50, beforeDrop: () => events.push('gave up') });
  (manager as { connection: unknown }).connection = { connection: { stream: { destroy: () => events.push('new one destroyed') } } };
  await p;
  assert.equal(events, []);
});

test.run();
