import type { BrokerCluster } from './broker-cluster.ts';
import type { Ledger } from './ledger.ts';
import type { LinkProxy } from './link-proxy.ts';
import type { LoadDriver } from './load-driver.ts';
import type { NetnsCluster } from './netns-cluster.ts';
import type { QueueWatch } from './queue-watch.ts';
import type { ReplicaWatch } from './replica-watch.ts';
import type { FaultRecord } from './report.ts';
import type { ClientPlacement, WarrenSystem } from './system.ts';

/**
 * The names the harness needs from the shipped contract (topology/processing.yaml and the chaos
 * fixtures share them): in one place, since chaos/ treats Warren as a black box.
 */
export const NAMES = {
  exchange: 'processing',
  requestKey: 'request',
  resultKey: 'result',
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
  /** How long a client keeps retrying one request (503, refused or reset) before it gives up. */
  retryWindowS: number;
  /** Every Nth load request is poison ("fail:..."); 0 for none. */
  poisonEvery: number;
  /** AMQP heartbeat asked by the clients (`?heartbeat=` on their URLs); undefined keeps Warren's default. */
  heartbeatS?: number;
  /** The API's API_PUBLISH_TIMEOUT_MS; undefined keeps its default. */
  publishTimeoutMs?: number;
  /** Fail the run when the longest window without a 202 exceeds this; undefined only reports it. */
  maxBlindS?: number;
}

/** A private network for the nodes (netns scenarios); see chaos/netns.ts for the names it makes. */
export interface NetworkSpec {
  /** 1-3 letters: namespaces wch-<id>-<n>, bridge wchb-<id>. */
  id: string;
  /** 10.247.<subnet>.0/24. */
  subnet: number;
  /** Erlang net_ticktime of the nodes. */
  netTicktimeS: number;
}

/** What a scenario gets to decide where its clients connect, once the cluster is up. */
export interface PlacementContext {
  cluster: NetnsCluster;
  /** Index of the node leading the main queue. */
  leader: number;
  settings: ScenarioSettings;
  /** Proxies the scenario creates go here: the harness closes them, and ctx.links hands them back. */
  links: Map<string, LinkProxy>;
  /** `?heartbeat=N` when the settings ask for one, else ''. */
  query: string;
}

export type Check = { ok: boolean; detail: string };

export interface Scenario {
  name: string;
  summary: string;
  /** 1: a single node; 3: a cluster (quorum queues replicated). */
  nodes: 1 | 3;
  /** Nodes in network namespaces of their own instead of loopback ports (basePort is then unused). */
  network?: NetworkSpec;
  /** Which node each client connects to (netns scenarios); default: every client gets every node. */
  place?(p: PlacementContext): Promise<ClientPlacement>;
  /** Also run the total-queue check (a tap on the results route). */
  totalQueue?: boolean;
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
  readonly nodes: BrokerCluster;
  /** The namespaced cluster of a netns scenario; undefined otherwise. */
  readonly net: NetnsCluster | undefined;
  /** The scenario's link proxies, by the name it gave them. */
  readonly links: ReadonlyMap<string, LinkProxy>;
  /** Where the clients were placed (netns scenarios). */
  readonly placement: ClientPlacement | undefined;
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

/** The namespaced cluster, or a clear error for a scenario that needs one and was not given it. */
export function netOf(ctx: ChaosContext): NetnsCluster {
  if (!ctx.net) throw new Error('this scenario needs its nodes in network namespaces (Scenario.network)');
  return ctx.net;
}
