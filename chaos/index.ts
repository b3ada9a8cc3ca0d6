import { join } from 'node:path';
import { runScenario } from './harness.ts';
import { reapNetwork } from './leftovers.ts';
import { NetLayout } from './netns.ts';
import type { ChaosReport } from './report.ts';
import { writeReport } from './report.ts';
import type { Scenario, ScenarioSettings } from './scenario.ts';
import { killApi } from './scenarios/kill-api.ts';
import { killBroker } from './scenarios/kill-broker.ts';
import { killNode } from './scenarios/kill-node.ts';
import { killWorkers } from './scenarios/kill-workers.ts';
import { partition } from './scenarios/partition.ts';
import { pauseNode } from './scenarios/pause-node.ts';
import { poison } from './scenarios/poison.ts';
import { rollingRestart } from './scenarios/rolling-restart.ts';
import { slowLink } from './scenarios/slow-link.ts';

export { clusterDown, clusterStatus, clusterUp } from './local-cluster.ts';
export { PARTITION_HANDLING } from './netns-cluster.ts';
export { type ChaosReport, summaryLine } from './report.ts';
export type { Scenario, ScenarioSettings } from './scenario.ts';

/** In the order `all` runs them: single node first, clusters last. */
export const SCENARIOS: readonly Scenario[] = [killBroker, killWorkers, killApi, poison, killNode, rollingRestart, partition, pauseNode, slowLink];

export const DEFAULT_CHAOS_TOPOLOGY = 'test/fixtures/chaos-topology.yaml';

export type SettingsOverrides = Partial<
  Pick<
    ScenarioSettings,
    | 'durationS'
    | 'rate'
    | 'replicas'
    | 'concurrency'
    | 'demoDelayMs'
    | 'topology'
    | 'drainTimeoutS'
    | 'retryWindowS'
    | 'poisonEvery'
    | 'heartbeatS'
    | 'publishTimeoutMs'
    | 'maxBlindS'
  >
>;

/** The scenario's quick or long defaults, then the command line's overrides. */
export function resolveSettings(scenario: Scenario, quick: boolean, overrides: SettingsOverrides): ScenarioSettings {
  const base: ScenarioSettings = {
    quick,
    durationS: quick ? 20 : 120,
    rate: quick ? 20 : 50,
    replicas: 3,
    concurrency: 4,
    demoDelayMs: 20,
    topology: DEFAULT_CHAOS_TOPOLOGY,
    drainTimeoutS: quick ? 60 : 180,
    retryWindowS: 60,
    poisonEvery: 0,
  };
  const defined = Object.fromEntries(Object.entries(overrides).filter(([, v]) => v !== undefined));
  return { ...base, ...scenario.defaults(quick), ...defined };
}

export interface ChaosRunOptions {
  root: string;
  quick: boolean;
  overrides: SettingsOverrides;
  reportDir?: string;
  keep?: boolean;
  signal?: AbortSignal;
  log: (msg: string) => void;
  /** Called with each report once written (the CLI prints its summary line). */
  onReport?: (report: ChaosReport, file: string) => void;
}

/** Runs scenarios one after the other and writes each report. */
export async function runChaos(scenarios: readonly Scenario[], o: ChaosRunOptions): Promise<{ reports: ChaosReport[]; files: string[] }> {
  const reports: ChaosReport[] = [];
  const files: string[] = [];
  for (const sc of scenarios) {
    if (o.signal?.aborted) break;
    const report = await runScenario(sc, { root: o.root, settings: resolveSettings(sc, o.quick, o.overrides), keep: o.keep, signal: o.signal, log: o.log });
    const file = writeReport(report, o.reportDir ?? join(o.root, 'chaos', 'reports'));
    reports.push(report);
    files.push(file);
    o.onReport?.(report, file);
  }
  return { reports, files };
}

/** Removes the networks (namespaces, links, /etc/hosts lines) that crashed netns runs left, skipping live runs. */
export function cleanupNetworks(): string[] {
  return SCENARIOS.flatMap((sc) => (sc.network ? reapNetwork(sc.name, new NetLayout(sc.network.id, sc.network.subnet, sc.nodes)) : []));
}

export function findScenario(name: string): Scenario | undefined {
  return SCENARIOS.find((s) => s.name === name);
}
