import { readFileSync } from 'node:fs';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { adaptToBroker, frameMaxHint, parseBrokerVersion } from '../../topology/broker-version.ts';
import { compileTopology, DEFAULT_TOPOLOGY, type LiveState, parseTopology, planTopology } from '../../topology/index.ts';

// RabbitMQ 4.x cannot be installed on the machine Warren is built on: these tests are the check
// of Warren's 4.x decisions (README, "RabbitMQ versions").
const compiled = compileTopology(parseTopology([{ file: 'processing.yaml', text: readFileSync(DEFAULT_TOPOLOGY, 'utf8') }]));
const limitOf = (c: typeof compiled, name: string) => c.queues.find((q) => q.name === name)?.arguments['x-delivery-limit'];

test('versions from server properties', () => {
  assert.equal(parseBrokerVersion('3.10.8'), { major: 3, minor: 10, patch: 8, text: '3.10.8' });
  assert.equal(parseBrokerVersion('4.1.0-rc.1'), { major: 4, minor: 1, patch: 0, text: '4.1.0-rc.1' });
  assert.equal(parseBrokerVersion('4.2')?.minor, 2);
  assert.is(parseBrokerVersion('unknown'), undefined);
  assert.is(parseBrokerVersion(undefined), undefined);
});

test('3.x and unknown versions: declarations unchanged, never -1 (3.10 drops a message at its first requeue under -1)', () => {
  for (const v of ['3.10.8', '3.13.7', undefined]) {
    const a = adaptToBroker(compiled, v === undefined ? undefined : parseBrokerVersion(v));
    assert.is(a.compiled, compiled);
    assert.equal(a.notes, []);
    for (const q of a.compiled.queues) assert.is.not(q.arguments['x-delivery-limit'], -1, q.name);
  }
});

test('4.0+: every quorum queue gets an explicit delivery limit; queues without a dead-letter target get -1 (cannot drop)', () => {
  const { compiled: c, notes } = adaptToBroker(compiled, parseBrokerVersion('4.0.5'));
  assert.is(limitOf(c, 'processing.requests'), 10, 'the main queue keeps its own limit: it has a dead-letter target');
  for (const side of [
    'processing.requests.dead',
    'processing.requests.dead.events',
    'processing.requests.retry.1',
    'processing.requests.retry.2',
    'processing.requests.retry.3',
    'processing.results',
  ]) {
    assert.is(limitOf(c, side), -1, side);
  }
  for (const q of c.queues) assert.ok(q.arguments['x-delivery-limit'] !== undefined, `${q.name} has an explicit delivery limit`);
  assert.is(notes.length, 1);
  assert.match(notes[0] ?? '', /RabbitMQ 4\.0\.5: quorum queues without a delivery limit get 20 from the broker and drop/);
  assert.match(notes[0] ?? '', /processing\.results/);
  assert.match(notes[0] ?? '', /set_policy .*delivery-limit/);
  assert.is(limitOf(compiled, 'processing.results'), undefined, 'the input is not mutated');
});

test('4.3+: a note that reject and crashes count toward the limit, nack does not', () => {
  assert.equal(adaptToBroker(compiled, parseBrokerVersion('4.2.1')).notes.length, 1);
  const notes = adaptToBroker(compiled, parseBrokerVersion('4.3.0')).notes;
  assert.is(notes.length, 2);
  assert.match(notes[1] ?? '', /basic\.reject and consumer crashes count toward x-delivery-limit, basic\.nack with requeue does not; /);
  assert.match(
    notes[1] ?? '',
    /failed delivery with reject \(counted\) and a shutdown's with nack \(not counted\), so the limits of processing\.requests count/,
  );
});

test('classic queues are left alone on 4.x (no delivery limit exists for them)', () => {
  const c = compileTopology(parseTopology([{ file: 'c.yaml', text: 'queues:\n  q: { type: classic }\n' }]));
  assert.equal(adaptToBroker(c, parseBrokerVersion('4.1.0')).notes, []);
});

test('plan on 4.x: a queue declared on 3.x without a limit differs on x-delivery-limit, and the plan carries the notes', () => {
  const live: LiveState = {
    detailed: true,
    brokerVersion: '4.1.2',
    exchanges: compiled.exchanges.map((e) => ({ name: e.name, type: e.type, durable: e.durable })),
    queues: compiled.queues.map((q) => ({ name: q.name, durable: q.durable, arguments: q.arguments })),
    bindings: compiled.bindings.map((b) => ({ ...b })),
  };
  const plan = planTopology(compiled, live);
  assert.is(plan.brokerVersion, '4.1.2');
  assert.ok(plan.pending);
  const results = plan.items.find((i) => i.kind === 'queue' && i.name === 'processing.results');
  assert.is(results?.action, 'differs');
  assert.equal(results?.diffs, [{ argument: 'x-delivery-limit', live: undefined, desired: -1 }]);
  assert.is(results?.queue?.arguments['x-delivery-limit'], -1, 'apply declares what the plan shows');
  assert.is(plan.notes.length, 1);
  const same = planTopology(compiled, { ...live, brokerVersion: '3.10.8' });
  assert.not.ok(same.pending, 'the same broker state is up to date on 3.x');
});

test('4.1 refuses frame_max below 8192: a URL asking for less is named when the connection fails', () => {
  assert.match(frameMaxHint('amqp://u:p@h:5672/v?frameMax=4096') ?? '', /frameMax=4096; RabbitMQ 4\.1 and later refuse a frame_max below 8192/);
  assert.is(frameMaxHint('amqp://u:p@h:5672/v?frameMax=131072'), undefined);
  assert.is(frameMaxHint('amqp://u:p@h:5672/v'), undefined);
  assert.not.match(frameMaxHint('amqp://u:secret@h/?frameMax=1') ?? '', /secret/);
});

test.run();
