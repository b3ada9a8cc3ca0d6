import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { type ChaosReport, SCENARIOS } from '../../chaos/index.ts';
import { runWarren } from '../helpers/warren-process.ts';

/**
 * The quick version of every chaos scenario, one CLI run each (as `npm run chaos -- <name> --quick`):
 * exit 0, and a report saying nothing was lost or stuck. About 6-7 minutes in all on two cores;
 * the runner gives this file 15 minutes (the marker below).
 */
// test-lane: chaos (runs beside the other files; see scripts/test.js)
// test-timeout-ms: 900000
const reportDir = mkdtempSync(join(tmpdir(), 'warren-chaos-quick-'));

test.after(() => rmSync(reportDir, { recursive: true, force: true }));

// The netns scenarios (partition, pause-node, slow-link) have their own file: chaos-network.test.ts.
for (const scenario of SCENARIOS.filter((s) => s.network === undefined)) {
  test(`${scenario.name} --quick loses nothing and leaves nothing stuck`, async () => {
    const run = await runWarren(['chaos', scenario.name, '--quick', '--report-dir', reportDir], { FORCE_COLOR: '0' }, 240_000, { interruptFirst: true });
    const files = readdirSync(reportDir).filter((f) => f.startsWith(`${scenario.name}-`) && f.endsWith('.json'));
    assert.is(files.length, 1, `one ${scenario.name} report expected; output:\n${run.output}`);
    const report = JSON.parse(readFileSync(join(reportDir, files[0] as string), 'utf8')) as ChaosReport;
    const summary = run.output.split('\n').find((l) => l.startsWith(`${scenario.name}: `)) ?? '(no summary line)';
    // The one-line summaries are what a CI log reader wants to see, pass or fail.
    console.log(`\n  ${summary}`);
    assert.equal(report.errors, [], `harness errors: ${report.errors.join('\n')}`);
    assert.ok(report.accepted > 0, `nothing accepted: ${summary}`);
    assert.is(report.lost, 0, `lost: ${summary}\n${JSON.stringify(report.problems.slice(0, 5), null, 2)}`);
    assert.is(report.stuck, 0, `stuck: ${summary}\n${JSON.stringify(report.problems.slice(0, 5), null, 2)}`);
    assert.is(run.code, 0, `exit ${run.code}: ${summary}\n${JSON.stringify(report.checks)}`);
  });
}

test.run();
