// test-lane: network (after chaos-network.test.ts: both build the partition scenario's namespaces, id p; see scripts/test.js)
// test-timeout-ms: 900000
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { expectLoss } from '../helpers/chaos-selfcheck.ts';

/**
 * The chaos suite must be able to fail: partition, on its namespaced cluster, against a
 * deliberately unsafe topology (classic, non-durable queues) has to report the loss and exit
 * non-zero (kill-broker's self-check is chaos-selfcheck-kill-broker.test.ts, in a lane of its
 * own). The clients give up on a request after 15 s instead of 60 (`--retry-window`): what they
 * retry then cannot be accepted anyway, and the run waits for every one of them before it drains.
 */
test('partition on classic non-durable queues reports lost requests and exits non-zero', async () => {
  // The queues live on the node the topology was applied to: the leader the first cut isolates.
  // pause_minority stops it; its transient queues go with everything in them. The requests sent
  // after that never end, so the recovery probes would wait the whole drain timeout (60 s): 15 s.
  // The drain itself ends as soon as the broker holds nothing, whatever its timeout.
  // Workers at 1 s a job (2 a second in all, against 10 offered), so requests wait in the queue
  // when the cut comes: at 300 ms (6.7 a second) a run where the cut came ~2 s into the load had
  // every accepted request processed or in a worker's prefetch (23 accepted, 23 results in the
  // tap), so the total-queue check, which counts requests never processed, saw nothing lost while
  // the run's own reconciliation reported lost requests (CI on f113bc6, 2026-12-05).
  const report = await expectLoss('partition', ['--retry-window', '15', '--drain-timeout', '15'], 420_000, 1000);
  assert.ok((report.totalQueue?.lost ?? 0) > 0, `the total-queue check must see the loss too: ${JSON.stringify(report.totalQueue)}`);
});

test.run();
