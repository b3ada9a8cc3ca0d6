import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { compileTopology, routesFor } from '../../topology/index.ts';
import type { Topology } from '../../topology/load.ts';

/**
 * The compiler's branches one setting at a time, on topologies built in code (so the file
 * checks, which refuse some of these settings, do not stand in the way of what compile does
 * with them): queue types, limits, dead-letter shapes, overflow, retry tiers, bindings, routes.
 */
type QueueIn = Partial<Topology['queues'][string]>;
function compile(queues: Record<string, QueueIn>, bindings: Array<{ exchange: string; queue: string; routingKey: string }> = []) {
  const topo: Topology = {
    exchanges: { ex: { type: 'topic', durable: false, file: 't.yaml' } },
    queues: Object.fromEntries(Object.entries(queues).map(([n, q]) => [n, { type: 'quorum', durable: true, file: 't.yaml', ...q }])),
    bindings: bindings.map((b) => ({ ...b, file: 't.yaml' })),
    files: ['t.yaml'],
  } as Topology;
  const c = compileTopology(topo);
  return { ...c, q: (name: string) => c.queues.find((x) => x.name === name) };
}

test('exchanges keep their type and durability', () => {
  assert.equal(compile({}).exchanges, [{ name: 'ex', type: 'topic', durable: false }]);
});

test('a classic queue: its type and limits only; a delivery limit without dead-letter is not a classic argument', () => {
  const c = compile({ c: { type: 'classic', durable: false, maxLength: 5, maxLengthBytes: 1024, messageTtl: 3000, deliveryLimit: 4 } });
  assert.equal(c.q('c'), {
    name: 'c',
    durable: false,
    arguments: { 'x-queue-type': 'classic', 'x-max-length': 5, 'x-max-length-bytes': 1024, 'x-message-ttl': 3000 },
    role: 'main',
  });
  assert.is(c.routes.c?.deliveryLimit, undefined);
  assert.is(c.routes.c?.deadLetter, undefined);
  assert.is(c.routes.c?.retry, undefined);
});

test('a quorum queue without dead-letter keeps an explicit delivery limit, and sets none by default', () => {
  const c = compile({ a: { deliveryLimit: 7 }, b: {} });
  assert.equal(c.q('a')?.arguments, { 'x-queue-type': 'quorum', 'x-delivery-limit': 7 });
  assert.is(c.routes.a?.deliveryLimit, 7);
  assert.equal(c.q('b')?.arguments, { 'x-queue-type': 'quorum' });
  assert.is(c.routes.b?.deliveryLimit, undefined);
});

test('quorum dead-lettering: a set delivery limit wins over the default; the side queues are quorum and durable', () => {
  const c = compile({ q: { deadLetter: true, deliveryLimit: 3, durable: false } });
  assert.equal(c.q('q')?.arguments, {
    'x-queue-type': 'quorum',
    'x-dead-letter-exchange': 'q.dlx',
    'x-dead-letter-strategy': 'at-least-once',
    'x-delivery-limit': 3,
    'x-overflow': 'reject-publish',
  });
  assert.is(c.routes.q?.deliveryLimit, 3);
  assert.equal(c.q('q.dead'), { name: 'q.dead', durable: true, arguments: { 'x-queue-type': 'quorum' }, role: 'dead', of: 'q' });
  assert.equal(c.q('q.dead.events'), { name: 'q.dead.events', durable: true, arguments: { 'x-queue-type': 'quorum' }, role: 'dead-events', of: 'q' });
  assert.ok(c.exchanges.some((e) => e.name === 'q.dlx' && e.type === 'fanout' && e.durable));
  assert.equal(
    c.bindings.filter((b) => b.exchange === 'q.dlx'),
    [
      { exchange: 'q.dlx', queue: 'q.dead', routingKey: '' },
      { exchange: 'q.dlx', queue: 'q.dead.events', routingKey: '' },
    ],
  );
  assert.equal(c.routes.q?.deadLetter, { exchange: 'q.dlx', queue: 'q.dead', routingKey: '', eventsQueue: 'q.dead.events' });
  assert.not.ok(c.warnings.some((w) => w.includes('at-most-once')));
});

test('an overflow other than reject-publish on quorum dead-lettering is kept, at-most-once, with a warning', () => {
  for (const overflow of ['drop-head', 'reject-publish-dlx'] as const) {
    const c = compile({ q: { deadLetter: true, overflow } });
    const args = c.q('q')?.arguments ?? {};
    assert.is(args['x-overflow'], overflow);
    assert.is(args['x-dead-letter-strategy'], undefined);
    assert.is(args['x-delivery-limit'], 10);
    assert.ok(
      c.warnings.some((w) => w.startsWith(`queues.q: overflow ${overflow} forces at-most-once dead-lettering`)),
      c.warnings.join('\n'),
    );
  }
});

test('classic dead-lettering: an exchange, no delivery limit, no overflow, classic side queues', () => {
  const c = compile({ c: { type: 'classic', deadLetter: true } });
  assert.equal(c.q('c')?.arguments, { 'x-queue-type': 'classic', 'x-dead-letter-exchange': 'c.dlx' });
  assert.equal(c.q('c.dead')?.arguments, { 'x-queue-type': 'classic' });
  assert.is(c.routes.c?.deliveryLimit, undefined);
});

test('deadLetter with events: false has no events queue; deadLetter: false is no dead-lettering', () => {
  const c = compile({ q: { deadLetter: { events: false } }, r: { deadLetter: false } });
  assert.is(c.q('q.dead.events'), undefined);
  assert.equal(c.routes.q?.deadLetter, { exchange: 'q.dlx', queue: 'q.dead', routingKey: '' });
  assert.equal(
    c.bindings.map((b) => b.queue),
    ['q.dead'],
  );
  assert.is(c.q('r.dead'), undefined);
  assert.is(c.routes.r?.deadLetter, undefined);
});

test('retry tiers: one TTL queue per delay, numbered from 1, routed by their own name back to the queue', () => {
  const c = compile({ q: { retry: { delays: [100, 2000], maxAttempts: 4 } }, k: { type: 'classic', retry: { delays: [50], maxAttempts: 2 } } });
  assert.ok(c.exchanges.some((e) => e.name === 'q.retry' && e.type === 'direct' && e.durable));
  assert.equal(c.routes.q?.retry, {
    exchange: 'q.retry',
    maxAttempts: 4,
    tiers: [
      { tier: 1, queue: 'q.retry.1', routingKey: 'q.retry.1', delayMs: 100 },
      { tier: 2, queue: 'q.retry.2', routingKey: 'q.retry.2', delayMs: 2000 },
    ],
  });
  assert.equal(c.q('q.retry.2'), {
    name: 'q.retry.2',
    durable: true,
    arguments: {
      'x-queue-type': 'quorum',
      'x-message-ttl': 2000,
      'x-dead-letter-exchange': '',
      'x-dead-letter-routing-key': 'q',
      'x-overflow': 'reject-publish',
      'x-dead-letter-strategy': 'at-least-once',
    },
    role: 'retry',
    of: 'q',
  });
  assert.equal(c.q('k.retry.1')?.arguments, { 'x-queue-type': 'classic', 'x-message-ttl': 50, 'x-dead-letter-exchange': '', 'x-dead-letter-routing-key': 'k' });
  assert.equal(
    c.bindings.filter((b) => b.exchange === 'q.retry'),
    [
      { exchange: 'q.retry', queue: 'q.retry.1', routingKey: 'q.retry.1' },
      { exchange: 'q.retry', queue: 'q.retry.2', routingKey: 'q.retry.2' },
    ],
  );
});

test('bindings: a queue publishes through its first own binding, else through the first top-level one', () => {
  const c = compile(
    {
      one: { bind: { exchange: 'ex', routingKey: 'a' } },
      many: {
        bind: [
          { exchange: 'ex', routingKey: 'b1' },
          { exchange: 'ex', routingKey: 'b2' },
        ],
      },
      none: {},
    },
    [
      { exchange: 'ex', queue: 'none', routingKey: 'n1' },
      { exchange: 'ex', queue: 'none', routingKey: 'n2' },
      { exchange: 'ex', queue: 'many', routingKey: 'late' },
    ],
  );
  assert.equal(c.routes.one?.publish, { exchange: 'ex', routingKey: 'a' });
  assert.equal(c.routes.many?.publish, { exchange: 'ex', routingKey: 'b1' });
  assert.equal(c.routes.none?.publish, { exchange: 'ex', routingKey: 'n1' });
  assert.equal(
    c.bindings.map((b) => `${b.queue}:${b.routingKey}`),
    ['one:a', 'many:b1', 'many:b2', 'none:n1', 'none:n2', 'many:late'],
  );
});

test('routesFor names the queues the topology has when asked for another', () => {
  const c = compile({ a: {}, b: {} });
  assert.is(routesFor(c, 'a').queue, 'a');
  assert.is(routesFor(c, 'a').type, 'quorum');
  assert.throws(
    () => routesFor(c, 'x'),
    (e: Error) => e.message === 'queue "x" is not in the topology (it declares: a, b)',
  );
  assert.throws(
    () => routesFor(compile({}), 'x'),
    (e: Error) => e.message === 'queue "x" is not in the topology (it declares: no queues)',
  );
});

test.run();
