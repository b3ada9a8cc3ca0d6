// test-lane: network (after chaos-network.test.ts: both build the partition scenario's namespaces, id p; see scripts/test.js)
// test-timeout-ms: 900000
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { ChaosReport } from '../../chaos/index.ts';
import { runWarren } from '../helpers/warren-process.ts';

/**
 * The chaos suite must be able to fail: partition, on its namespaced cluster, against a
 * deliberately unsafe topology (classic, non-durable queues) has to report the loss and exit
 * non-zero (kill-broker's self-check is chaos-selfcheck-kill-broker.test.ts, in a lane of its
 * own). The clients give up on a request after 15 s instead of 60 (`--retry-window`): what they
 * retry then cannot be accepted anyway, and the run waits for every one of them before it drains.
 */
const reportDir = mkdtempSync(join(tmpdir(), 'warren-chaos-selfcheck-'));

test.after(() => rmSync(reportDir, { recursive: true, force: true }));

test('partition on classic non-durable queues reports lost requests and exits non-zero', async () => {
  // The queues live on the node the topology was applied to: the leader the first cut isolates.
  // pause_minority stops it; its transient queues go with everything in them. The requests sent
  // after that never end, so the recovery probes would wait the whole drain timeout (60 s): 15 s.
  // The drain itself ends as soon as the broker holds nothing, whatever its timeout.
  const args = ['partition', '--quick', '--topology', 'test/fixtures/chaos-unsafe-topology.yaml', '--rate', '10', '--delay-ms', '300'];
  args.push('--retry-window', '15', '--drain-timeout', '15');
  const run = await runWarren(['chaos', ...args, '--concurrency', '1', '--replicas', '2', '--report-dir', reportDir], { FORCE_COLOR: '0' }, 420_000, {
    interruptFirst: true,
  });
  assert.is.not(run.code, 0, `expected a failing exit code; output:\n${run.output}`);
  const files = readdirSync(reportDir).filter((f) => f.startsWith('partition-') && f.endsWith('.json'));
  assert.is(files.length, 1, `one report expected in ${reportDir}; output:\n${run.output}`);
  const report = JSON.parse(readFileSync(join(reportDir, files[0] as string), 'utf8')) as ChaosReport;
  assert.equal(report.errors, [], `harness errors: ${report.errors.join('\n')}`);
  assert.ok(report.accepted > 0, 'nothing was accepted');
  assert.ok(report.lost > 0, `expected lost > 0, got ${report.lost} (accepted ${report.accepted}, done ${report.done}, stuck ${report.stuck})`);
  assert.ok((report.totalQueue?.lost ?? 0) > 0, `the total-queue check must see the loss too: ${JSON.stringify(report.totalQueue)}`);
  assert.is(report.ok, false);
  assert.match(run.output, /partition: FAIL .*lost=[1-9]/);
});

test.run();
