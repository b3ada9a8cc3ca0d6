import type amqplib from 'amqplib';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { type ChannelSource, deleteQueueSafely } from '../../topology/safe-delete.ts';

/**
 * A scripted broker with one queue and a publisher that publishes through the exchange right
 * after every emptiness check: the race `--recreate` and `--prune` must not lose to. A routed
 * message lands in the queue; an unroutable one goes back to its (mandatory) publisher.
 */
function scriptedBroker(opts: { messages?: number; consumers?: number; bindings?: number }) {
  const state = { messages: opts.messages ?? 0, bound: opts.bindings ?? 1, deleted: false, lost: 0, returned: 0, ops: [] as string[] };
  const publish = () => {
    if (state.deleted) return;
    if (state.bound > 0) state.messages++;
    else state.returned++;
  };
  const channel = {
    on: () => channel,
    close: async () => {},
    checkQueue: async (q: string) => {
      state.ops.push(`check ${q}`);
      const reply = { queue: q, messageCount: state.messages, consumerCount: opts.consumers ?? 0 };
      publish(); // lands between the check and whatever comes next
      return reply;
    },
    deleteQueue: async (q: string, o?: { ifEmpty?: boolean; ifUnused?: boolean }) => {
      state.ops.push(`delete ${q}${o?.ifEmpty ? ' if-empty' : ''}`);
      if (o?.ifEmpty && state.messages > 0) throw Object.assign(new Error('PRECONDITION_FAILED - queue not empty'), { code: 406 });
      state.lost += state.messages;
      state.deleted = true;
      return { messageCount: state.messages };
    },
    unbindQueue: async (q: string, ex: string) => {
      state.ops.push(`unbind ${ex} -> ${q}`);
      state.bound--;
    },
    bindQueue: async (q: string, ex: string) => {
      state.ops.push(`bind ${ex} -> ${q}`);
      state.bound++;
    },
  };
  const conn: ChannelSource = { createChannel: async () => channel as unknown as amqplib.Channel };
  return { conn, state };
}

const binding = { exchange: 'processing', queue: 'q', routingKey: 'request' };

test('classic: a publish between the check and the delete is not deleted with the queue (if-empty delete refuses)', async () => {
  const { conn, state } = scriptedBroker({});
  const refusal = await deleteQueueSafely(conn, { queue: 'q', quorum: false, bindings: [binding] });
  assert.match(refusal ?? '', /arrived while it was being deleted/);
  assert.is(state.lost, 0, 'no confirmed message deleted with its queue');
  assert.not.ok(state.deleted);
  assert.equal(state.ops, ['check q', 'delete q if-empty']);
});

test('quorum (no if-empty delete): bindings go before the check, so a publish is returned, not deleted', async () => {
  const { conn, state } = scriptedBroker({});
  assert.is(await deleteQueueSafely(conn, { queue: 'q', quorum: true, bindings: [binding] }), undefined);
  assert.ok(state.deleted);
  assert.is(state.lost, 0);
  assert.is(state.returned, 1, 'the racing publish came back to its publisher as unroutable');
  assert.equal(state.ops, ['unbind processing -> q', 'check q', 'delete q']);
});

test('quorum: a queue holding messages or consumers is refused and gets its bindings back', async () => {
  for (const opts of [{ messages: 3 }, { consumers: 1 }]) {
    const { conn, state } = scriptedBroker(opts);
    const refusal = await deleteQueueSafely(conn, { queue: 'q', quorum: true, bindings: [binding] });
    assert.match(refusal ?? '', /it holds \d+ message\(s\) and has \d+ consumer\(s\)/);
    assert.not.ok(state.deleted);
    assert.is(state.bound, 1, 'binding restored');
    assert.equal(state.ops, ['unbind processing -> q', 'check q', 'bind processing -> q']);
  }
});

test('classic: a queue holding messages is refused before any delete', async () => {
  const { conn, state } = scriptedBroker({ messages: 2 });
  assert.match((await deleteQueueSafely(conn, { queue: 'q', quorum: false, bindings: [] })) ?? '', /it holds 2 message/);
  assert.equal(state.ops, ['check q']);
});

test('a queue whose retry tier still holds copies is refused: they would expire into no queue', async () => {
  const { conn, state } = scriptedBroker({});
  const tiers = new Map([
    ['q.retry.1', 0],
    ['q.retry.2', 4],
  ]);
  const checked: string[] = [];
  const source: ChannelSource = {
    createChannel: async () => {
      const ch = (await conn.createChannel()) as unknown as Record<string, unknown>;
      const check = ch.checkQueue as (q: string) => Promise<{ messageCount: number; consumerCount: number }>;
      return {
        ...ch,
        checkQueue: async (q: string) => {
          checked.push(q);
          return tiers.has(q) ? { queue: q, messageCount: tiers.get(q), consumerCount: 0 } : check(q);
        },
      } as unknown as amqplib.Channel;
    },
  };
  const refusal = await deleteQueueSafely(source, { queue: 'q', quorum: true, bindings: [binding], feeders: ['q.retry.1', 'q.retry.2'] });
  assert.match(refusal ?? '', /its retry queue q\.retry\.2 holds 4 message\(s\) that expire back into it/);
  assert.not.ok(state.deleted);
  assert.is(state.bound, 1, 'nothing unbound');
  assert.equal(checked, ['q.retry.1', 'q.retry.2']);
});

test.run();
