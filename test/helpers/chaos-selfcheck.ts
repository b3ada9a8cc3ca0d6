import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as assert from 'uvu/assert';
import type { ChaosReport } from '../../chaos/index.ts';
import { runWarren } from './warren-process.ts';

/**
 * Runs `warren chaos <scenario> --quick` against the deliberately unsafe topology (classic,
 * non-durable queues; slow workers, `delayMs` a job, one handler slot each, two replicas) with
 * `args` on top, and
 * checks that it failed as a self-check must: a non-zero exit, one report, no harness errors,
 * something accepted and something lost, and the FAIL summary line. The loss must show as lost
 * requests, not as a harness that crashed or proved nothing. Returns the report.
 */
export async function expectLoss(scenario: string, args: readonly string[], timeoutMs: number, delayMs = 300): Promise<ChaosReport> {
  const reportDir = mkdtempSync(join(tmpdir(), `warren-chaos-selfcheck-${scenario}-`));
  try {
    const all = [scenario, '--quick', '--topology', 'test/fixtures/chaos-unsafe-topology.yaml', '--rate', '10', '--delay-ms', String(delayMs), ...args];
    const run = await runWarren(['chaos', ...all, '--concurrency', '1', '--replicas', '2', '--report-dir', reportDir], { FORCE_COLOR: '0' }, timeoutMs, {
      interruptFirst: true,
    });
    assert.is.not(run.code, 0, `expected a failing exit code; output:\n${run.output}`);
    const files = readdirSync(reportDir).filter((f) => f.startsWith(`${scenario}-`) && f.endsWith('.json'));
    assert.is(files.length, 1, `one report expected in ${reportDir}; output:\n${run.output}`);
    const report = JSON.parse(readFileSync(join(reportDir, files[0] as string), 'utf8')) as ChaosReport;
    assert.equal(report.errors, [], `harness errors: ${report.errors.join('\n')}`);
    assert.ok(report.accepted > 0, 'nothing was accepted');
    assert.ok(report.lost > 0, `expected lost > 0, got ${report.lost} (accepted ${report.accepted}, done ${report.done}, stuck ${report.stuck})`);
    assert.is(report.ok, false);
    assert.match(run.output, new RegExp(`${scenario}: FAIL .*lost=[1-9]`));
    return report;
  } finally {
    rmSync(reportDir, { recursive: true, force: true });
  }
}
