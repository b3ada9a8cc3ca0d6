import amqplib from 'amqplib';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { applyTopology, loadCompiledTopology } from '../../topology/index.ts';
import { createTestVhost, type TestVhost, waitFor, within } from '../helpers/broker.ts';
import { killAll, ROOT, startWarren } from '../helpers/warren-process.ts';

// A replica killed from outside after it did real work (OOM killer, node drain) restarts at the
// initial delay each time; only replicas that die without settling anything back off.
const TOPOLOGY = `${ROOT}test/fixtures/worker-topology.yaml`;
let vh: TestVhost;

test.before(async () => {
  vh = await within(10_000, 'vhost', createTestVhost('supervisor'));
  await applyTopology({ amqpUrl: vh.url, compiled: loadCompiledTopology(TOPOLOGY) });
});
test.after(async () => {
  killAll();
  await vh?.cleanup();
});

interface Line {
  msg?: string;
  pid?: number;
  replica?: number;
  delayMs?: number;
}

test('a working replica killed three times in a row restarts at the initial delay each time', async () => {
  const sup = startWarren(['worker', '--replicas', '2', '--concurrency', '2'], { AMQP_URL: vh.url, TOPOLOGY, DEMO_DELAY_MS: '0', LOG_LEVEL: 'info' });
  const lines = () =>
    sup
      .output()
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Line);
  const conn = await amqplib.connect(vh.url);
  try {
    const ch = await conn.createConfirmChannel();
    for (let round = 0; round < 3; round++) {
      const pid = await waitFor('replica 0 started', () => lines().filter((l) => l.msg === 'replica started' && l.replica === 0)[round]?.pid, 20_000);
      await waitFor('replica consuming', () => (lines().some((l) => l.msg === 'consuming' && l.pid === pid) ? true : undefined), 20_000);
      // Work for the replicas (enough that replica 0 gets some), then let it report a settle.
      for (let i = 0; i < 10; i++) {
        const id = `sup-${round}-${i}`;
        ch.publish('processing', 'request', Buffer.from(JSON.stringify({ requestId: id, data: id })), { persistent: true, messageId: id });
      }
      await ch.waitForConfirms();
      await waitFor('message processed', () => (lines().some((l) => l.msg === 'message processed' && l.pid === pid) ? true : undefined), 20_000);
      // The replica reports its first settle over IPC on a poll: kill it only once the supervisor has it.
      await waitFor(
        'supervisor told that replica 0 settles messages',
        () => (lines().some((l) => l.msg === 'replica is settling messages' && l.pid === pid) ? true : undefined),
        20_000,
      );
      process.kill(pid, 'SIGKILL');
      const exit = await waitFor('restart scheduled', () => lines().filter((l) => l.msg === 'replica exited; restarting' && l.replica === 0)[round], 20_000);
      assert.is(exit.delayMs, 500, `restart ${round + 1} of a working replica is not delayed`);
    }
  } finally {
    await conn.close();
    await sup.stop();
  }
});

test.run();
