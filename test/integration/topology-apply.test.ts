import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import amqplib from 'amqplib';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { applyTopology, compileTopology, DEFAULT_TOPOLOGY, loadTopology } from '../../topology/index.ts';
import { createTestVhost, type TestVhost, within } from '../helpers/broker.ts';

const root = new URL('../..', import.meta.url).pathname;
let vh: TestVhost;
const dir = mkdtempSync(join(tmpdir(), 'warren-topo-'));

interface MgmtQueue {
  name: string;
  arguments: Record<string, unknown>;
  durable: boolean;
}

async function liveQueues(): Promise<Map<string, MgmtQueue>> {
  const qs = (await vh.mgmt.get<MgmtQueue[]>(`${vh.mgmt.path('queues', vh.vhost)}?columns=name,arguments,durable`)) ?? [];
  return new Map(qs.map((q) => [q.name, q]));
}

function cli(args: string[], env: Record<string, string> = {}) {
  const r = spawnSync(process.execPath, ['bin/warren.js', 'topology', ...args], {
    cwd: root,
    env: { ...process.env, AMQP_URL: vh.url, AMQP_MANAGEMENT_URL: vh.managementUrl ?? '', LOG_LEVEL: 'warn', ...env },
    encoding: 'utf8',
    timeout: 30_000,
  });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

test.before(async () => {
  vh = await within(10_000, 'create vhost', createTestVhost('topology'));
  if (!vh.managementUrl) delete process.env.AMQP_MANAGEMENT_URL;
});
test.after(async () => {
  await vh?.cleanup();
});

test('an invalid file declares nothing and names the file, key and expectation', () => {
  const bad = join(dir, 'bad.yaml');
  writeFileSync(bad, readFileSync(DEFAULT_TOPOLOGY, 'utf8').replace('[1s, 10s, 1m]', '[1s, -3, 1m]'));
  const r = cli(['apply', '--file', bad]);
  assert.is(r.code, 1, r.err);
  assert.match(r.err, /invalid topology; nothing was declared/);
  assert.match(r.err, /bad\.yaml: queues\.processing\.requests\.retry\.delays\[1\]: expected a duration/);
  return liveQueues().then((qs) => assert.is(qs.size, 0, 'no queue may exist after a rejected file'));
});

test('plan on an empty vhost exits 2 with everything to create', () => {
  const r = cli(['plan']);
  assert.is(r.code, 2, r.err);
  assert.match(r.out, /\+ create\s+queue\s+processing\.requests\n/);
  assert.match(r.out, /10 to create|17 to create/);
});

test('apply (npm run topology:apply) creates main, retry and dead-letter queues with their arguments', async () => {
  const r = cli(['apply']);
  assert.is(r.code, 0, r.err);
  const qs = await liveQueues();
  assert.equal([...qs.keys()].sort(), [
    'processing.requests',
    'processing.requests.dead',
    'processing.requests.dead.events',
    'processing.requests.retry.1',
    'processing.requests.retry.2',
    'processing.requests.retry.3',
    'processing.results',
  ]);
  const main = qs.get('processing.requests')?.arguments;
  assert.is(main?.['x-queue-type'], 'quorum');
  assert.is(main?.['x-delivery-limit'], 10);
  assert.is(main?.['x-max-length'], 100000);
  assert.is(main?.['x-dead-letter-exchange'], 'processing.requests.dlx');
  assert.is(main?.['x-dead-letter-strategy'], 'at-least-once');
  const tier2 = qs.get('processing.requests.retry.2')?.arguments;
  assert.is(tier2?.['x-message-ttl'], 10_000);
  assert.is(tier2?.['x-dead-letter-exchange'], '');
  assert.is(tier2?.['x-dead-letter-routing-key'], 'processing.requests');
  const bindings = (await vh.mgmt.get<Array<{ source: string; destination: string; routing_key: string }>>(vh.mgmt.path('bindings', vh.vhost))) ?? [];
  assert.ok(bindings.some((b) => b.source === 'processing' && b.destination === 'processing.requests' && b.routing_key === 'request'));
  assert.ok(bindings.some((b) => b.source === 'processing.requests.dlx' && b.destination === 'processing.requests.dead'));
});

test('apply twice is idempotent and plan then exits 0', () => {
  const again = cli(['apply']);
  assert.is(again.code, 0, again.err);
  assert.match(again.out, /nothing to do/);
  assert.not.match(again.out, /created/);
  const plan = cli(['plan']);
  assert.is(plan.code, 0, plan.out + plan.err);
  assert.match(plan.out, /0 to create, 0 differ/);
});

test('plan after apply exits 0 without the management API too (bindings: exist, not checked)', () => {
  // Port 1 refuses connections: the same as a broker without the rabbitmq_management plugin.
  const noMgmt = { AMQP_MANAGEMENT_URL: 'http://127.0.0.1:1' };
  const plan = cli(['plan'], noMgmt);
  assert.is(plan.code, 0, plan.out + plan.err);
  assert.match(plan.out, /= exists\s+binding\s+processing -> processing\.requests \(key request\) \(not checked: management API unavailable\)/);
  assert.match(plan.out, /RabbitMQ 3\.\d+\.\d+, vhost .*: 0 to create, 0 differ/);
  const apply = cli(['apply'], noMgmt);
  assert.is(apply.code, 0, apply.err);
  assert.is(cli(['plan'], noMgmt).code, 0, 'plan still converges after an apply without the management API');
  assert.is(cli(['plan']).code, 0, 'and with it');
});

test('plan without the management API still reports a missing queue, and its bindings, to create', async () => {
  await vh.mgmt.delete(vh.mgmt.path('queues', vh.vhost, 'processing.requests.dead.events'));
  const plan = cli(['plan'], { AMQP_MANAGEMENT_URL: 'http://127.0.0.1:1' });
  assert.is(plan.code, 2, plan.out + plan.err);
  assert.match(plan.out, /\+ create\s+queue\s+processing\.requests\.dead\.events\n/);
  assert.match(plan.out, /\+ create\s+binding\s+processing\.requests\.dlx -> processing\.requests\.dead\.events/);
  assert.is(cli(['apply']).code, 0);
});

test('a changed argument shows in plan, apply refuses it with the way out, --recreate fixes an empty queue', () => {
  const changed = join(dir, 'changed.yaml');
  writeFileSync(changed, readFileSync(DEFAULT_TOPOLOGY, 'utf8').replace('maxLength: 100000', 'maxLength: 5000'));
  const plan = cli(['plan', '--file', changed]);
  assert.is(plan.code, 2);
  assert.match(plan.out, /~ differs\s+queue\s+processing\.requests\n\s+x-max-length: 100000 -> 5000/);
  const apply = cli(['apply', '--file', changed]);
  assert.is(apply.code, 1);
  assert.match(apply.err, /queue processing\.requests: x-max-length: live 100000, desired 5000\. RabbitMQ cannot change queue arguments in place/);
  assert.match(apply.err, /--recreate processing\.requests/);
  const fixed = cli(['apply', '--file', changed, '--recreate', 'processing.requests']);
  assert.is(fixed.code, 0, fixed.err);
  assert.match(fixed.out, /recreated queue processing\.requests/);
  assert.is(cli(['plan', '--file', changed]).code, 0);
});

test('plan lists what is on the broker but not in the files; apply keeps it unless --prune', async () => {
  const compiled = compileTopology(loadTopology(DEFAULT_TOPOLOGY));
  const only = {
    ...compiled,
    queues: compiled.queues.filter((q) => q.name !== 'processing.results'),
    bindings: compiled.bindings.filter((b) => b.queue !== 'processing.results'),
  };
  const kept = await applyTopology({ amqpUrl: vh.url, managementUrl: vh.managementUrl, compiled: only });
  assert.ok(kept.plan.items.some((i) => i.action === 'extra' && i.name === 'processing.results'));
  assert.ok((await liveQueues()).has('processing.results'));
  const pruned = await applyTopology({ amqpUrl: vh.url, managementUrl: vh.managementUrl, compiled: only, prune: true });
  assert.ok(pruned.applied.includes('deleted queue processing.results'));
  assert.not.ok((await liveQueues()).has('processing.results'));
});

test('--prune keeps queues that hold messages (quorum and classic), names them and says how to force', async () => {
  const conn = await amqplib.connect(vh.url);
  try {
    const ch = await conn.createConfirmChannel();
    await ch.assertQueue('stray.quorum', { durable: true, arguments: { 'x-queue-type': 'quorum' } });
    await ch.assertQueue('stray.classic', { durable: true });
    await ch.assertQueue('stray.empty', { durable: true });
    await ch.bindQueue('stray.quorum', 'processing', 'stray');
    ch.publish('processing', 'stray', Buffer.from('keep me'), { persistent: true });
    ch.sendToQueue('stray.classic', Buffer.from('keep me too'), { persistent: true });
    await ch.waitForConfirms();
  } finally {
    await conn.close();
  }
  // The files as the tests above left the broker (processing.requests at maxLength 5000).
  const files = ['--file', join(dir, 'changed.yaml')];
  const pruned = cli(['apply', '--prune', ...files]);
  assert.is(pruned.code, 1, pruned.out + pruned.err);
  assert.match(pruned.err, /queue stray\.quorum: it holds 1 message\(s\) and has 0 consumer\(s\); kept\. .*warren topology apply --prune --force/);
  assert.match(pruned.err, /queue stray\.classic: it holds 1 message\(s\)/);
  assert.match(pruned.out, /deleted queue stray\.empty/);
  const qs = await liveQueues();
  assert.ok(qs.has('stray.quorum') && qs.has('stray.classic'), 'queues holding messages survive --prune');
  assert.not.ok(qs.has('stray.empty'), 'an empty queue not in the files is pruned');
  const bindings = (await vh.mgmt.get<Array<{ source: string; destination: string }>>(vh.mgmt.path('bindings', vh.vhost))) ?? [];
  assert.ok(
    bindings.some((b) => b.source === 'processing' && b.destination === 'stray.quorum'),
    'a kept queue keeps its binding',
  );
  const forced = cli(['apply', '--prune', '--force', ...files]);
  assert.is(forced.code, 0, forced.out + forced.err);
  const after = await liveQueues();
  assert.not.ok(after.has('stray.quorum') || after.has('stray.classic'), '--force deletes them with their messages');
});

test.run();
