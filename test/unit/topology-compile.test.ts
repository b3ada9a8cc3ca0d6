import { readFileSync } from 'node:fs';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { compileTopology, DEFAULT_TOPOLOGY, diffArguments, type LiveState, parseTopology, planTopology, routesFor } from '../../topology/index.ts';

const compiled = compileTopology(parseTopology([{ file: 'processing.yaml', text: readFileSync(DEFAULT_TOPOLOGY, 'utf8') }]));
const queue = (name: string) => compiled.queues.find((q) => q.name === name);

test('the main queue gets its limits, delivery limit and at-least-once dead-lettering', () => {
  assert.equal(queue('processing.requests')?.arguments, {
    'x-queue-type': 'quorum',
    'x-max-length': 100000,
    'x-overflow': 'reject-publish',
    'x-delivery-limit': 10,
    'x-dead-letter-exchange': 'processing.requests.dlx',
    'x-dead-letter-strategy': 'at-least-once',
  });
});

test('one TTL queue per delay dead-letters back to the main queue', () => {
  const tiers = [1, 2, 3].map((n) => queue(`processing.requests.retry.${n}`));
  assert.equal(
    tiers.map((t) => t?.arguments['x-message-ttl']),
    [1000, 10_000, 60_000],
  );
  for (const t of tiers) {
    assert.is(t?.arguments['x-dead-letter-exchange'], '');
    assert.is(t?.arguments['x-dead-letter-routing-key'], 'processing.requests');
    assert.is(t?.arguments['x-dead-letter-strategy'], 'at-least-once');
    assert.is(t?.role, 'retry');
  }
  assert.ok(
    compiled.bindings.some(
      (b) => b.exchange === 'processing.requests.retry' && b.queue === 'processing.requests.retry.2' && b.routingKey === 'processing.requests.retry.2',
    ),
  );
});

test('routes give services every name they need', () => {
  const r = routesFor(compiled, 'processing.requests');
  assert.equal(r.publish, { exchange: 'processing', routingKey: 'request' });
  assert.is(r.retry?.maxAttempts, 4);
  assert.equal(
    r.retry?.tiers.map((t) => [t.tier, t.queue, t.delayMs]),
    [
      [1, 'processing.requests.retry.1', 1000],
      [2, 'processing.requests.retry.2', 10_000],
      [3, 'processing.requests.retry.3', 60_000],
    ],
  );
  assert.equal(r.deadLetter, {
    exchange: 'processing.requests.dlx',
    queue: 'processing.requests.dead',
    routingKey: '',
    eventsQueue: 'processing.requests.dead.events',
  });
  assert.is(r.deliveryLimit, 10);
  assert.equal(routesFor(compiled, 'processing.results').publish, { exchange: 'processing', routingKey: 'result' });
  assert.throws(() => routesFor(compiled, 'nope'), /not in the topology \(it declares: processing\.requests, processing\.results\)/);
});

test('a classic queue without dead-letter compiles to plain arguments', () => {
  const c = compileTopology(
    parseTopology([{ file: 'x.yaml', text: 'queues:\n  q: { type: classic, durable: false, maxLength: 5, overflow: reject-publish }\n' }]),
  );
  assert.equal(c.queues, [
    { name: 'q', durable: false, role: 'main', arguments: { 'x-queue-type': 'classic', 'x-max-length': 5, 'x-overflow': 'reject-publish' } },
  ]);
});

test('drop-head overflow with a dead-letter warns that dead-lettering is at-most-once', () => {
  const c = compileTopology(parseTopology([{ file: 'x.yaml', text: 'queues:\n  q: { overflow: drop-head, deadLetter: true }\n' }]));
  assert.is(c.queues.find((q) => q.name === 'q')?.arguments['x-dead-letter-strategy'], undefined);
  assert.match(c.warnings[0] ?? '', /at-most-once/);
});

function liveOf(c: typeof compiled): LiveState {
  return {
    detailed: true,
    exchanges: c.exchanges.map((e) => ({ name: e.name, type: e.type, durable: e.durable })),
    queues: c.queues.map((q) => ({ name: q.name, durable: q.durable, arguments: { ...q.arguments } })),
    bindings: c.bindings.map((b) => ({ ...b })),
  };
}

test('plan: a broker that matches has nothing pending', () => {
  const plan = planTopology(compiled, liveOf(compiled));
  assert.is(plan.pending, false);
  assert.ok(plan.items.every((i) => i.action === 'unchanged'));
});

test('plan: an empty broker needs everything created', () => {
  const plan = planTopology(compiled, { detailed: true, exchanges: [], queues: [], bindings: [] });
  assert.is(plan.pending, true);
  assert.is(plan.items.filter((i) => i.action === 'create').length, compiled.exchanges.length + compiled.queues.length + compiled.bindings.length);
});

test('plan: a changed argument shows live and desired values; extras are listed', () => {
  const live = liveOf(compiled);
  const main = live.queues.find((q) => q.name === 'processing.requests');
  if (!main) throw new Error('fixture');
  main.arguments['x-max-length'] = 500;
  delete main.arguments['x-delivery-limit'];
  live.queues.push({ name: 'legacy', durable: true, arguments: {} });
  live.exchanges.push({ name: 'amq.direct', type: 'direct', durable: true });
  const plan = planTopology(compiled, live);
  assert.is(plan.pending, true);
  const item = plan.items.find((i) => i.name === 'processing.requests');
  assert.is(item?.action, 'differs');
  assert.equal(item?.diffs, [
    { argument: 'x-delivery-limit', live: undefined, desired: 10 },
    { argument: 'x-max-length', live: 500, desired: 100000 },
  ]);
  assert.equal(
    plan.items.filter((i) => i.action === 'extra').map((i) => i.name),
    ['legacy'],
  );
});

test('diffArguments treats a missing x-queue-type as classic', () => {
  assert.equal(diffArguments({}, { 'x-queue-type': 'classic' }), []);
  assert.equal(diffArguments({}, { 'x-queue-type': 'quorum' }), [{ argument: 'x-queue-type', live: undefined, desired: 'quorum' }]);
});

test.run();
