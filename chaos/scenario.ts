import type { Ledger } from './ledger.ts';
import type { LoadDriver } from './load-driver.ts';
import type { QueueWatch } from './queue-watch.ts';
import type { RabbitNodes } from './rabbit-nodes.ts';
import type { ReplicaWatch } from './replica-watch.ts';
import type { FaultRecord } from './report.ts';
import type { WarrenSystem } from './system.ts';

/**
 * The names the harness needs from the shipped contract (topology/processing.yaml and the chaos
 * fixtures share them): in one place, since chaos/ treats Warren as a black box.
 */
export const NAMES = {
  exchange: 'processing',
  requestKey: 'request',
  requests: 'processing.requests',
  dead: 'processing.requests.dead',
} as const;

export interface ScenarioSettings {
  quick: boolean;
  /** Seconds of load (extended while the faults are still being injected). */
  durationS: number;
  /** New requests per second. */
  rate: number;
  replicas: number;
  concurrency: number;
  demoDelayMs: number;
  topology: string;
  /** How long the drain may wait for every promised request to be final. */
  drainTimeoutS: number;
  /** Every Nth load request is poison ("fail:..."); 0 for none. */
  poisonEvery: number;
}

export type Check = { ok: boolean; detail: string };

export interface Scenario {
  name: string;
  summary: string;
  /** 1: a single node; 3: a cluster (quorum queues replicated). */
  nodes: 1 | 3;
  /** AMQP port of the first node; unique per scenario so runs cannot collide. */
  basePort: number;
  defaults(quick: boolean): Partial<ScenarioSettings>;
  /** Runs alongside the load: waits, injects the faults through ctx.fault, returns when done. */
  inject(ctx: ChaosContext): Promise<void>;
  /** Checks beyond the ledger, after the drain. */
  check?(ctx: ChaosContext): Promise<Record<string, Check>>;
}

export interface ChaosContext {
  readonly settings: ScenarioSettings;
  readonly nodes: RabbitNodes;
  readonly system: WarrenSystem;
  readonly ledger: Ledger;
  readonly load: LoadDriver;
  readonly watch: QueueWatch;
  readonly replicas: ReplicaWatch;
  readonly faults: FaultRecord[];
  /** Unique per run; every key and requestId of the run starts with it. */
  readonly prefix: string;
  log(msg: string): void;
  /** Sleeps; rejects when the run is interrupted. */
  sleep(ms: number): Promise<void>;
  /** Seconds since the load started. */
  elapsedS(): number;
  /**
   * Injects a fault, then (in parallel with `restore`) submits fresh probe requests until one ends
   * done: the recovery time. Records the fault in the report.
   */
  fault(name: string, inject: () => Promise<void>, restore?: () => Promise<void>, detail?: Record<string, unknown>): Promise<FaultRecord>;
}
