// test-timeout-ms: 180000
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { LocalRabbitNode, portAnswers, RABBIT_BIN } from '../../core/index.ts';

/**
 * A private RabbitMQ node WITHOUT the management plugin (rabbitmq-local.md's layout, empty
 * enabled_plugins): what a newcomer's or a production broker without `rabbitmq_management` looks
 * like. topology plan/apply must converge on it, and bench must say what is missing.
 */
const root = new URL('../..', import.meta.url).pathname;
const base = mkdtempSync(join(tmpdir(), 'warren-nomgmt-'));
let port = 5747;
let node: LocalRabbitNode;
let url = '';

function run(args: string[], env: Record<string, string> = {}) {
  const r = spawnSync(process.execPath, args, {
    cwd: root,
    // No AMQP_MANAGEMENT_URL: the default (AMQP port + 10000) has nothing listening.
    env: { ...process.env, AMQP_URL: url, AMQP_MANAGEMENT_URL: '', LOG_LEVEL: 'warn', ...env },
    encoding: 'utf8',
    timeout: 60_000,
  });
  return { code: r.status, out: r.stdout, err: r.stderr };
}
const topology = (args: string[], env?: Record<string, string>) => run(['bin/warren.js', 'topology', ...args], env);

test.before(async () => {
  while (await portAnswers(port)) port++;
  const nodeName = `warren-nomgmt-${process.pid}@localhost`;
  node = new LocalRabbitNode({ nodeName, amqpPort: port, baseDir: base });
  mkdirSync(base, { recursive: true });
  writeFileSync(join(base, 'enabled_plugins'), '[].\n');
  writeFileSync(join(base, 'rabbitmq.conf'), `listeners.tcp.1 = 127.0.0.1:${port}\nloopback_users = none\n`);
  await new Promise<void>((resolve, reject) => {
    const child = spawn(join(RABBIT_BIN, 'rabbitmq-server'), ['-detached'], {
      env: {
        ...process.env,
        RABBITMQ_NODENAME: nodeName,
        RABBITMQ_DIST_PORT: String(port + 20000),
        RABBITMQ_MNESIA_BASE: join(base, 'mnesia'),
        RABBITMQ_LOG_BASE: join(base, 'log'),
        RABBITMQ_CONFIG_FILE: join(base, 'rabbitmq'),
        RABBITMQ_ENABLED_PLUGINS_FILE: join(base, 'enabled_plugins'),
        RABBITMQ_PID_FILE: node.pidFile,
      },
      stdio: 'ignore',
    });
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`rabbitmq-server -detached exited ${code}`))));
  });
  await node.waitUntilUp(60_000);
  url = `amqp://guest:guest@127.0.0.1:${port}`;
  assert.not.ok(await portAnswers(port + 10000), 'the node has no management listener');
});

test.after(async () => {
  await node?.stop();
  rmSync(base, { recursive: true, force: true });
});

test('apply, then plan, converge without the management plugin (exit 0, bindings exist, not checked)', () => {
  const first = topology(['plan']);
  assert.is(first.code, 2, first.out + first.err);
  const apply = topology(['apply']);
  assert.is(apply.code, 0, apply.out + apply.err);
  assert.match(apply.out, /\(RabbitMQ 3\.\d+\.\d+\)/);
  const plan = topology(['plan']);
  assert.is(plan.code, 0, plan.out + plan.err);
  assert.match(plan.out, /= exists\s+binding\s+processing -> processing\.results \(key result\) \(not checked: management API unavailable\)/);
  assert.match(plan.out, /0 to create, 0 differ/);
});

test('a vhost that does not exist is named, with what creates it, instead of a frame error', () => {
  const plan = topology(['plan'], { AMQP_URL: `${url}/nowhere` });
  assert.is(plan.code, 1, plan.out + plan.err);
  assert.match(plan.err, /cannot connect to amqp:\/\/guest:\*+@127\.0\.0\.1:\d+\/nowhere: the broker refused vhost "nowhere"/);
  assert.match(plan.err, /rabbitmqctl add_vhost/);
  assert.not.match(plan.err, /ConnectionOpenOk/);
});

test('npm run bench on a broker without the plugin says what is missing', () => {
  const r = run(['--import', 'tsx', 'bench/run.ts', '--quick']);
  assert.is(r.code, 1, r.err);
  assert.match(r.err, /needs the RabbitMQ management API/);
  assert.match(r.err, /rabbitmq-plugins enable rabbitmq_management/);
  assert.not.match(r.err, /ConnectionOpenOk/);
});

test.run();
