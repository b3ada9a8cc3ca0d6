// test-lane: side (a lane of its own beside main, chaos and network: private nodes on ports 5771+; see scripts/test.js)
// test-timeout-ms: 900000
import { test } from 'uvu';
import { expectLoss } from '../helpers/chaos-selfcheck.ts';

/**
 * The chaos suite must be able to fail: kill-broker against a deliberately unsafe topology
 * (classic, non-durable queues) has to report the loss and exit non-zero (partition's self-check
 * is chaos-selfcheck.test.ts, beside the other namespaced scenarios). Slow workers keep a backlog
 * in the queue when the broker dies, so there is something to lose. The clients give up on a
 * request after 15 s instead of 60 (`--retry-window`): what they retry then cannot be accepted
 * anyway, and the run waits for every one of them before it drains.
 */
test('kill-broker on classic non-durable queues reports lost requests and exits non-zero', async () => {
  // Ports of its own: the chaos lane may be running the suite's kill-broker (5711) at the same time.
  await expectLoss('kill-broker', ['--base-port', '5771', '--retry-window', '15'], 220_000);
});

test.run();
