import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { compileTopology, diffArguments, fmt, formatPlan, type LiveState, planTopology } from '../../topology/index.ts';
import type { Topology } from '../../topology/load.ts';

/**
 * The plan diff item by item: what differs on exchanges and queues, how numbers and the implied
 * queue type compare, which extras are reported, what a broker without the management API
 * allows, and the text `topology plan` prints.
 */
type QueueIn = Partial<Topology['queues'][string]>;
function compiled(queues: Record<string, QueueIn>, exchanges: Record<string, 'direct' | 'fanout' | 'topic'> = {}) {
  const topo: Topology = {
    exchanges: Object.fromEntries(Object.entries(exchanges).map(([n, type]) => [n, { type, durable: true, file: 't.yaml' }])),
    queues: Object.fromEntries(Object.entries(queues).map(([n, q]) => [n, { type: 'classic', durable: true, file: 't.yaml', ...q }])),
    bindings: [],
    files: ['t.yaml'],
  } as Topology;
  return compileTopology(topo);
}
const live = (l: Partial<LiveState>): LiveState => ({ detailed: true, exchanges: [], queues: [], bindings: [], ...l });
const jobs = compiled({ jobs: { bind: { exchange: 'work', routingKey: 'job' } } }, { work: 'direct' });
const matching = (): LiveState =>
  live({
    exchanges: [{ name: 'work', type: 'direct', durable: true }],
    queues: [{ name: 'jobs', durable: true, arguments: { 'x-queue-type': 'classic' } }],
    bindings: [{ exchange: 'work', queue: 'jobs', routingKey: 'job' }],
  });

test('an exchange of another type or durability differs, type first', () => {
  const l = matching();
  l.exchanges = [{ name: 'work', type: 'fanout', durable: false }];
  const item = planTopology(jobs, l).items.find((i) => i.kind === 'exchange');
  assert.is(item?.action, 'differs');
  assert.equal(item?.diffs, [
    { argument: 'type', live: 'fanout', desired: 'direct' },
    { argument: 'durable', live: false, desired: true },
  ]);
});

test('a queue of another durability differs, durability listed before the arguments', () => {
  const l = matching();
  l.queues = [{ name: 'jobs', durable: false, arguments: { 'x-queue-type': 'classic', 'x-max-length': 5 } }];
  const plan = planTopology(jobs, l);
  assert.equal(plan.items.find((i) => i.kind === 'queue')?.diffs, [
    { argument: 'durable', live: false, desired: true },
    { argument: 'x-max-length', live: 5, desired: undefined },
  ]);
  assert.is(plan.pending, true);
});

test('numbers compare by value (the management API may give strings); absent is not zero', () => {
  const c = compiled({ q: { maxLength: 100 } });
  const args = (a: Record<string, unknown>) => planTopology(c, live({ queues: [{ name: 'q', durable: true, arguments: a }] })).items[0];
  assert.is(args({ 'x-queue-type': 'classic', 'x-max-length': '100' })?.action, 'unchanged');
  assert.is(args({ 'x-queue-type': 'classic', 'x-max-length': 100 })?.action, 'unchanged');
  assert.is(args({ 'x-queue-type': 'classic', 'x-max-length': 99 })?.action, 'differs');
  assert.is(args({ 'x-queue-type': 'classic', 'x-max-length': 'many' })?.action, 'differs');
  assert.is(args({ 'x-queue-type': 'classic' })?.action, 'differs');
  assert.is(args({ 'x-queue-type': 'quorum', 'x-max-length': 100 })?.action, 'differs', 'a classic queue is not a quorum one');
  assert.is(args({ 'x-max-length': 100 })?.action, 'unchanged', 'no x-queue-type means classic');
});

test('only a number on either side compares by value; strings compare as written', () => {
  assert.equal(diffArguments({ 'x-max-length': 100 }, { 'x-max-length': '100' }), []);
  assert.equal(diffArguments({ 'x-a': '5' }, { 'x-a': '05' }), [{ argument: 'x-a', live: '5', desired: '05' }]);
  // Only x-queue-type has an implied value: another argument absent on the broker differs.
  assert.equal(diffArguments({}, { 'x-overflow': 'classic' }), [{ argument: 'x-overflow', live: undefined, desired: 'classic' }]);
});

test('a broker that matches has nothing pending; extras alone leave nothing pending either', () => {
  assert.is(planTopology(jobs, matching()).pending, false);
  const l = matching();
  l.queues.push({ name: 'legacy', durable: true, arguments: {} });
  const plan = planTopology(jobs, l);
  assert.is(plan.pending, false);
  assert.equal(
    plan.items.filter((i) => i.action === 'extra').map((i) => i.name),
    ['legacy'],
  );
});

test('extras: foreign exchanges, but not the default or amq.* ones; bindings only where they touch ours', () => {
  const l = matching();
  l.exchanges.push(
    { name: '', type: 'direct', durable: true },
    { name: 'amq.topic', type: 'topic', durable: true },
    { name: 'other', type: 'topic', durable: true },
  );
  l.queues.push({ name: 'elsewhere', durable: true, arguments: {} });
  l.bindings.push(
    { exchange: 'work', queue: 'elsewhere', routingKey: 'x' },
    { exchange: 'other', queue: 'jobs', routingKey: '' },
    { exchange: 'other', queue: 'elsewhere', routingKey: 'y' },
  );
  const extras = planTopology(jobs, l)
    .items.filter((i) => i.action === 'extra')
    .map((i) => `${i.kind} ${i.name}`);
  assert.equal(extras, ['exchange other', 'queue elsewhere', 'binding work -> elsewhere (key x)', 'binding other -> jobs (no key)']);
});

test('without the management API, what exists is "exists" (not compared) and nothing is called extra', () => {
  const plan = planTopology(jobs, {
    ...matching(),
    detailed: false,
    exchanges: [{ name: 'work', type: 'fanout', durable: false }],
    queues: [
      { name: 'jobs', durable: false, arguments: {} },
      { name: 'legacy', durable: true, arguments: {} },
    ],
  });
  const byKind = (k: string) => plan.items.find((i) => i.kind === k);
  assert.is(byKind('exchange')?.action, 'exists');
  assert.is(byKind('queue')?.action, 'exists');
  assert.not.ok(plan.items.some((i) => i.action === 'extra' || i.diffs));
  const empty = planTopology(jobs, live({ detailed: false }));
  assert.ok(empty.pending);
  assert.equal(
    empty.items.filter((i) => i.kind !== 'binding').map((i) => `${i.kind} ${i.name} ${i.action}`),
    ['exchange work create', 'queue jobs create'],
  );
});

test('formatPlan: one line per item, the differences under it, and a summary', () => {
  const l = matching();
  l.queues = [{ name: 'jobs', durable: true, arguments: { 'x-queue-type': 'classic', 'x-max-length': 5 } }];
  l.bindings = [];
  l.queues.push({ name: 'legacy', durable: true, arguments: {} });
  assert.is(
    formatPlan(planTopology(jobs, l), 'v1'),
    [
      '= unchanged     exchange work',
      '~ differs       queue    jobs',
      '                        x-max-length: 5 -> (unset)',
      '+ create        binding  work -> jobs (key job)',
      '? not in files  queue    legacy',
      '',
      'vhost v1: 1 to create, 1 differ, 1 unchanged, 1 on the broker but not in the files',
    ].join('\n'),
  );
});

test('formatPlan says which items were not compared, and counts them as unchanged', () => {
  const text = formatPlan(planTopology(jobs, { ...matching(), detailed: false }), 'v2');
  assert.ok(text.includes('= exists        queue    jobs (arguments not checked: management API unavailable)'), text);
  assert.ok(text.includes('= exists        exchange work (arguments not checked: management API unavailable)'), text);
  assert.ok(/vhost v2: \d+ to create, 0 differ, [23] unchanged, 0 on the broker but not in the files$/.test(text), text);
  assert.is(fmt(undefined), '(unset)');
  assert.is(fmt('quorum'), '"quorum"');
  assert.is(fmt(10), '10');
});

test.run();
