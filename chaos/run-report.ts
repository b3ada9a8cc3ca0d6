import { logTail } from './processes.ts';
import type { QueueWatch } from './queue-watch.ts';
import { emptyReconciliation } from './reconcile.ts';
import type { ChaosReport } from './report.ts';
import type { ScenarioSettings } from './scenario.ts';
import type { WarrenSystem } from './system.ts';

/** A report with nothing counted yet: what a run that fails before the load still writes. */
export function emptyReport(scenario: string, settings: ScenarioSettings, started: number): ChaosReport {
  return {
    scenario,
    ok: false,
    quick: settings.quick,
    startedAt: new Date(started).toISOString(),
    finishedAt: '',
    wallSeconds: 0,
    settings: { ...settings },
    ...emptyReconciliation(),
    duplicates: 0,
    answers202: 0,
    recoverySeconds: [],
    faults: [],
    peakQueueDepth: 0,
    queues: {},
    drainSeconds: null,
    load: { started: 0, shed: 0, retryCauses: {}, refusals: {} },
    processes: { apiStarts: 0, workerStarts: 0, unexpectedExits: [], workerReplicaRestarts: 0 },
    checks: {},
    errors: [],
    logTail: {},
  };
}

export function queueSummary(watch: QueueWatch): ChaosReport['queues'] {
  return Object.fromEntries([...watch.queues].map(([name, s]) => [name, { peak: s.peak, redelivered: s.redelivered }]));
}

/** Warnings and errors (pino levels 40+) from the API and worker logs, for a failed run's report. */
export function logTails(system: WarrenSystem): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const p of [system.api, ...system.workerGroups]) {
    const serious = logTail(p.spec.logFile, 15, /"level":(40|50|60)/);
    out[p.spec.name] = serious.length > 0 ? serious : logTail(p.spec.logFile, 15);
  }
  return out;
}
