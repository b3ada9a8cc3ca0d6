// test-lane: network (the cluster-in-namespaces scenarios; a third lane beside main and chaos, see scripts/test.js)
// test-timeout-ms: 1200000
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { type ChaosReport, SCENARIOS } from '../../chaos/index.ts';
import { runWarren } from '../helpers/warren-process.ts';

/**
 * The quick versions of the network scenarios (nodes in network namespaces of their own), one CLI
 * run each as `npm run chaos -- <name> --quick`: exit 0, nothing lost, stuck or unexpected in the
 * ledger nor in the total-queue check, the longest window without a 202 reported, and nothing
 * left behind (namespaces, bridge, /etc/hosts lines). Each run takes 2-4 minutes on two busy cores.
 */
const reportDir = mkdtempSync(join(tmpdir(), 'warren-chaos-network-'));

test.after(() => rmSync(reportDir, { recursive: true, force: true }));

const leftovers = (): string[] => {
  const ns = execFileSync('ip', ['netns', 'list'])
    .toString()
    .split('\n')
    .filter((l) => l.startsWith('wch-'));
  const links = execFileSync('ip', ['-o', 'link'])
    .toString()
    .split('\n')
    .filter((l) => / wch/.test(l));
  const hosts = readFileSync('/etc/hosts', 'utf8')
    .split('\n')
    .filter((l) => l.includes('# warren-chaos'));
  return [...ns, ...links, ...hosts];
};

for (const scenario of SCENARIOS.filter((s) => s.network !== undefined)) {
  test(`${scenario.name} --quick: nothing lost, stuck or unexpected; blind window reported; network removed`, async () => {
    const run = await runWarren(['chaos', scenario.name, '--quick', '--report-dir', reportDir], { FORCE_COLOR: '0' }, 420_000, { interruptFirst: true });
    const files = readdirSync(reportDir).filter((f) => f.startsWith(`${scenario.name}-`) && f.endsWith('.json'));
    assert.is(files.length, 1, `one ${scenario.name} report expected; output:\n${run.output}`);
    const report = JSON.parse(readFileSync(join(reportDir, files[0] as string), 'utf8')) as ChaosReport;
    const summary = run.output.split('\n').find((l) => l.startsWith(`${scenario.name}: `)) ?? '(no summary line)';
    console.log(`\n  ${summary}`);
    const w = report.blindWindow;
    if (w) {
      // What the window was made of, in the test's output: the cluster's failover (from the nodes'
      // logs) and, past the 10 s target, the API's own account of it.
      const share = w.afterLeaderS === undefined ? '' : `; ${w.afterLeaderS} s of it after processing.requests had a new leader`;
      const lines = [...(w.brokerLog ?? []), ...(w.seconds > 10 ? w.apiLog : [])];
      console.log(`  no 202 for ${w.seconds} s (at ${w.fromS}-${w.toS} s)${share}${lines.map((l) => `\n    ${l}`).join('')}`);
    }
    assert.equal(leftovers(), [], 'the run must remove its namespaces, links and /etc/hosts lines');
    assert.equal(report.errors, [], `harness errors: ${report.errors.join('\n')}`);
    assert.ok(report.accepted > 0, `nothing accepted: ${summary}`);
    assert.ok(report.blindWindow !== undefined && report.blindWindow.seconds > 0, 'the longest window without a 202 is reported');
    assert.ok(report.totalQueue !== undefined, 'the total-queue check ran');
    assert.is(report.totalQueue?.accepted, report.accepted, 'the total-queue check covers every accepted requestId');
    assert.is(report.lost, 0, `lost: ${summary}\n${JSON.stringify(report.problems.slice(0, 5), null, 2)}`);
    assert.is(report.stuck, 0, `stuck: ${summary}`);
    assert.is(report.totalQueue?.lost, 0, `total-queue lost: ${JSON.stringify(report.totalQueue?.lostIds)}`);
    assert.is(report.totalQueue?.unexpected, 0, `unexpected outcomes: ${JSON.stringify(report.totalQueue)}`);
    assert.is(run.code, 0, `exit ${run.code}: ${summary}\n${JSON.stringify(report.checks)}`);
  });
}

test.run();
