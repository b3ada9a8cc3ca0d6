import { spawnSync } from 'node:child_process';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { testBroker } from '../helpers/broker.ts';

const root = new URL('../..', import.meta.url).pathname;

test('npm run bench without a management API says what is missing and how to enable it, without a stack', async () => {
  const broker = await testBroker();
  // Port 1 on loopback refuses connections: a broker whose management plugin is off looks the same.
  const r = spawnSync(process.execPath, ['--import', 'tsx', 'bench/run.ts', '--quick'], {
    cwd: root,
    env: { ...process.env, AMQP_URL: broker.url, AMQP_MANAGEMENT_URL: 'http://127.0.0.1:1' },
    encoding: 'utf8',
    timeout: 60_000,
  });
  assert.is(r.status, 1, `exit code (stderr: ${r.stderr})`);
  assert.match(r.stderr, /needs the RabbitMQ management API/);
  assert.match(r.stderr, /rabbitmq-plugins enable rabbitmq_management/);
  assert.match(r.stderr, /AMQP_MANAGEMENT_URL/);
  assert.not.match(r.stderr, /ConnectionOpenOk|\n\s+at /, 'no amqplib frame error, no stack');
});

test.run();
