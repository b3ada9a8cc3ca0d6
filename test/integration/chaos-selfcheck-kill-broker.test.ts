// test-lane: side (a lane of its own beside main, chaos and network: private nodes on ports 5771+; see scripts/test.js)
// test-timeout-ms: 900000
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { ChaosReport } from '../../chaos/index.ts';
import { runWarren } from '../helpers/warren-process.ts';

/**
 * The chaos suite must be able to fail: kill-broker against a deliberately unsafe topology
 * (classic, non-durable queues) has to report the loss and exit non-zero (partition's self-check
 * is chaos-selfcheck.test.ts, beside the other namespaced scenarios). Slow workers keep a backlog
 * in the queue when the broker dies, so there is something to lose. The clients give up on a
 * request after 15 s instead of 60 (`--retry-window`): what they retry then cannot be accepted
 * anyway, and the run waits for every one of them before it drains.
 */
const reportDir = mkdtempSync(join(tmpdir(), 'warren-chaos-selfcheck-kb-'));

test.after(() => rmSync(reportDir, { recursive: true, force: true }));

test('kill-broker on classic non-durable queues reports lost requests and exits non-zero', async () => {
  // Ports of its own: the chaos lane may be running the suite's kill-broker (5711) at the same time.
  const args = ['kill-broker', '--quick', '--base-port', '5771', '--topology', 'test/fixtures/chaos-unsafe-topology.yaml', '--rate', '10', '--delay-ms', '300'];
  args.push('--retry-window', '15');
  const run = await runWarren(['chaos', ...args, '--concurrency', '1', '--replicas', '2', '--report-dir', reportDir], { FORCE_COLOR: '0' }, 220_000, {
    interruptFirst: true,
  });
  assert.is.not(run.code, 0, `expected a failing exit code; output:\n${run.output}`);
  const files = readdirSync(reportDir).filter((f) => f.startsWith('kill-broker-') && f.endsWith('.json'));
  assert.is(files.length, 1, `one report expected in ${reportDir}; output:\n${run.output}`);
  const report = JSON.parse(readFileSync(join(reportDir, files[0] as string), 'utf8')) as ChaosReport;
  // The loss must show as lost requests, not as a harness that crashed or proved nothing.
  assert.equal(report.errors, [], `harness errors: ${report.errors.join('\n')}`);
  assert.ok(report.accepted > 0, 'nothing was accepted');
  assert.ok(report.lost > 0, `expected lost > 0, got ${report.lost} (accepted ${report.accepted}, done ${report.done}, stuck ${report.stuck})`);
  assert.is(report.ok, false);
  assert.match(run.output, /kill-broker: FAIL .*lost=[1-9]/);
});

test.run();
