import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
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

function cli(args: string[]) {
  const r = spawnSync(process.execPath, ['bin/warren.js', 'topology', ...args], {
    cwd: root,
    env: { ...process.env, AMQP_URL: vh.url, AMQP_MANAGEMENT_URL: vh.managementUrl ?? '', LOG_LEVEL: 'warn' },
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

test.run();
