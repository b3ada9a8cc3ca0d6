import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { BlindWindow } from './blind-window.ts';
import type { Reconciliation } from './reconcile.ts';
import type { TotalQueue } from './total-queue.ts';

/** One injected fault and how long the system took to serve a fresh request end to end after it. */
export interface FaultRecord {
  fault: string;
  /** Seconds from the start of the load. */
  atSeconds: number;
  /** How long the harness kept the component down (0 for a kill the system must absorb alone). */
  downSeconds: number;
  /** From the fault to the first request submitted after it that ended done; null if none did in time. */
  recoverySeconds: number | null;
  detail?: Record<string, unknown>;
}

/** The report of one run: the ledger's reconciliation and what the harness saw around it. */
export interface ChaosReport extends Reconciliation {
  scenario: string;
  ok: boolean;
  quick: boolean;
  startedAt: string;
  finishedAt: string;
  wallSeconds: number;
  settings: Record<string, unknown>;
  /** Redeliveries the broker counted (management API message_stats.redeliver, summed over queues and resets). */
  duplicates: number;
  recoverySeconds: (number | null)[];
  faults: FaultRecord[];
  peakQueueDepth: number;
  queues: Record<string, { peak: number; redelivered: number }>;
  drainSeconds: number | null;
  load: { started: number; shed: number; retryCauses: Record<string, number>; refusals: Record<string, number> };
  processes: { apiStarts: number; workerStarts: number; unexpectedExits: string[]; workerReplicaRestarts: number };
  /** 202 answers received (retries and probes included). */
  answers202: number;
  /** The longest stretch of the load without a single 202, and what was going on in it. */
  blindWindow?: BlindWindow;
  /** The Jepsen-style total-queue check (scenarios with Scenario.totalQueue). */
  totalQueue?: TotalQueue;
  /** Netns scenarios: how the cluster handles partitions and where the clients connect. */
  network?: { partitionHandling: string; netTicktimeS: number; placement: string; leaderAtStart: string };
  /** Scenario-specific checks beyond the ledger (e.g. no crash loop); any false fails the run. */
  checks: Record<string, { ok: boolean; detail: string }>;
  errors: string[];
  logTail: Record<string, string[]>;
}

/** Writes chaos/reports/<scenario>-<time>.json (or into `dir`) and returns its path. */
export function writeReport(report: ChaosReport, dir: string): string {
  mkdirSync(dir, { recursive: true });
  const stamp = report.startedAt.replace(/[:.]/g, '-');
  const file = join(dir, `${report.scenario}-${stamp}.json`);
  writeFileSync(file, `${JSON.stringify(report, null, 2)}\n`);
  return file;
}

/** The one line a human (or CI log) reads. */
export function summaryLine(r: ChaosReport, file?: string): string {
  const rec = r.recoverySeconds.map((s) => (s === null ? 'none' : s.toFixed(1))).join(',');
  const failed = Object.entries(r.checks)
    .filter(([, c]) => !c.ok)
    .map(([k]) => k);
  return [
    `${r.scenario}: ${r.ok ? 'PASS' : 'FAIL'}`,
    `accepted=${r.accepted} retried=${r.rejectedThenRetried} done=${r.done} dead=${r.dead} lost=${r.lost} stuck=${r.stuck}`,
    r.unverified ? `unverified=${r.unverified}` : '',
    r.totalQueue ? `unexpected=${r.totalQueue.unexpected} duplicated=${r.totalQueue.duplicated}` : '',
    `duplicates=${r.duplicates} recovery=[${rec}]s peakDepth=${r.peakQueueDepth}`,
    r.blindWindow ? `no202=${r.blindWindow.seconds}s` : '',
    `wall=${r.wallSeconds.toFixed(0)}s`,
    failed.length ? `failed-checks=${failed.join(',')}` : '',
    r.errors.length ? `error="${r.errors[0]?.slice(0, 160)}"` : '',
    file ? `(${file})` : '',
  ]
    .filter(Boolean)
    .join(' ');
}
