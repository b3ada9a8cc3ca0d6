import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { LocalRabbitNode, ManagementClient, portAnswers } from '../core/index.ts';
import type { BrokerCluster } from './broker-cluster.ts';

export interface RabbitNodesOptions {
  /** Node names are `<prefix>-<n>@localhost`. */
  prefix: string;
  /** AMQP ports basePort .. basePort+size-1; management +10000, distribution +20000 (rabbitmq-local.md). */
  basePort: number;
  size: number;
  /** Each node keeps its data under <baseDir>/n<i>; restarting with the same dir keeps durable queues. */
  baseDir: string;
  log?: (msg: string) => void;
  /** Told the VM pid of every node started (for cleanup after a harness crash). */
  onNodeStarted?: (pid: number | undefined) => void;
}

/** How long the harness's own steps (topology, leader lookups) wait for a management API to answer. */
export const MANAGEMENT_WAIT_MS = 20_000;

interface MgmtNode {
  name: string;
  running: boolean;
}

/** One private node, or a cluster of private nodes, on loopback ports of its own. */
export class RabbitNodes implements BrokerCluster {
  readonly nodes: LocalRabbitNode[];
  private readonly log: (msg: string) => void;

  constructor(readonly options: RabbitNodesOptions) {
    this.log = options.log ?? (() => {});
    const names = Array.from({ length: options.size }, (_, i) => `${options.prefix}-${i + 1}@localhost`);
    // A cluster forms at boot (classic_config peer discovery): the first node starts alone and the
    // others join it as they boot, without a stop_app/join_cluster/start_app round each (~10 s
    // apiece here, three CLI runs of an Erlang VM). The first is up before the others start, so
    // they need no random delay to avoid two of them forming clusters of their own.
    const peers =
      options.size > 1
        ? [
            'cluster_formation.peer_discovery_backend = classic_config',
            ...names.map((n, k) => `cluster_formation.classic_config.nodes.${k + 1} = ${n}`),
            'cluster_formation.randomized_startup_delay_range.min = 0',
            'cluster_formation.randomized_startup_delay_range.max = 1',
          ]
        : [];
    this.nodes = names.map(
      (nodeName, i) => new LocalRabbitNode({ nodeName, amqpPort: options.basePort + i, baseDir: join(options.baseDir, `n${i + 1}`), extraConfig: peers }),
    );
  }

  get amqpUrls(): string[] {
    return this.nodes.map((n) => n.url);
  }

  get nodeNames(): string[] {
    return this.nodes.map((n) => n.options.nodeName);
  }

  async liveUrl(): Promise<{ amqpUrl: string; managementUrl: string }> {
    const m = await this.management(MANAGEMENT_WAIT_MS);
    return { amqpUrl: this.nodes.find((n) => n.managementUrl === m.baseUrl)?.url ?? this.amqpUrls[0]!, managementUrl: m.baseUrl };
  }

  node(i: number): LocalRabbitNode {
    const n = this.nodes[i];
    if (!n) throw new Error(`no node ${i} (cluster of ${this.nodes.length})`);
    return n;
  }

  /** Fails fast, naming the port, when a leftover node or another run holds one of ours. */
  async assertPortsFree(): Promise<void> {
    for (const n of this.nodes) {
      for (const port of [n.options.amqpPort, n.options.managementPort, n.options.distPort]) {
        if (await portAnswers(port)) {
          throw new Error(`port ${port} (for ${n.options.nodeName}) is already in use: another chaos run or a leftover node. Stop it first.`);
        }
      }
    }
  }

  /**
   * Starts every node not already answering; for more than one, the first alone, then the others,
   * which join it at boot. A node that is still not clustered then (a cluster made before peer
   * discovery was configured) is joined by hand. About 20-25 s for three here.
   */
  async start(): Promise<void> {
    const [first, ...rest] = this.nodes;
    if (!first) return;
    const startIfDown = async (n: LocalRabbitNode) => {
      if (await portAnswers(n.options.amqpPort)) return;
      await n.start(180_000);
      this.options.onNodeStarted?.(n.pid());
    };
    if (existsSync(join(first.options.baseDir, 'mnesia'))) {
      // Nodes that were clustered before wait at boot for their peers: start them together.
      await Promise.all(this.nodes.map(startIfDown));
    } else {
      // A fresh first node creates ~/.erlang.cookie when missing; the others must read the same one.
      await startIfDown(first);
      await Promise.all(rest.map(startIfDown));
    }
    for (const n of rest) {
      if (await this.isClustered(n)) continue;
      this.log(`joining ${n.options.nodeName} to ${first.options.nodeName}`);
      await n.ctl(['stop_app']);
      await n.ctl(['join_cluster', first.options.nodeName], 60_000);
      await n.ctl(['start_app'], 120_000);
    }
    await this.waitAllRunning();
  }

  /** SIGKILL: the node's VM dies without warning. */
  async kill(i: number): Promise<void> {
    const n = this.node(i);
    const pid = n.pid();
    n.kill();
    if (pid !== undefined) await waitGone(pid, 15_000);
  }

  /** Starts a node again with the same name and data, then waits until the cluster sees it running. */
  async restart(i: number): Promise<void> {
    await this.node(i).start(120_000);
    this.options.onNodeStarted?.(this.node(i).pid());
    await this.waitAllRunning();
  }

  /** A clean stop (rabbitmqctl stop), waiting for the VM to exit. */
  async stopNode(i: number): Promise<void> {
    const n = this.node(i);
    const pid = n.pid();
    await n.stop();
    if (pid !== undefined && !(await waitGone(pid, 30_000))) await this.kill(i);
  }

  /** Stops every node (clean stop when `graceful`, else SIGKILL) and optionally removes their data. */
  async stopAll(options: { graceful: boolean; removeData: boolean }): Promise<void> {
    await Promise.all(
      this.nodes.map(async (n, i) => {
        if (options.graceful && (await portAnswers(n.options.amqpPort))) await this.stopNode(i).catch(() => this.kill(i));
        else await this.kill(i);
      }),
    );
    if (options.removeData && existsSync(this.options.baseDir)) rmSync(this.options.baseDir, { recursive: true, force: true });
  }

  /**
   * A management client on the first node that answers (nodes come and go during chaos), asking
   * every node again for up to `waitMs`: a node just restarted on a loaded machine may take more
   * than one round of `/api/overview` (2 s each) to answer.
   */
  management(waitMs = 0): Promise<ManagementClient> {
    const clients = () => this.nodes.map((n) => new ManagementClient({ amqpUrl: n.url, managementUrl: n.managementUrl }));
    return firstAnswering(clients, waitMs, 'no node of the cluster answers on its management port');
  }

  /** The node name leading a quorum queue, from the management API (`leader`). */
  async leaderOf(queue: string, vhost = '/'): Promise<string> {
    const m = await this.management(MANAGEMENT_WAIT_MS);
    const q = await m.get<{ leader?: string }>(m.path('queues', vhost, queue));
    if (!q?.leader) throw new Error(`queue ${queue} has no leader (missing, or not a quorum queue)`);
    return q.leader;
  }

  indexOf(nodeName: string): number {
    const i = this.nodes.findIndex((n) => n.options.nodeName === nodeName);
    if (i < 0) throw new Error(`${nodeName} is not one of ours`);
    return i;
  }

  /** Waits until every member of a quorum queue is online again (so the next fault keeps a majority). */
  async waitQueueMembersOnline(queue: string, timeoutMs = 60_000, vhost = '/'): Promise<void> {
    await waitUntil(`all members of ${queue} online`, timeoutMs, async () => {
      const m = await this.management();
      const q = await m.get<{ members?: string[]; online?: string[] }>(m.path('queues', vhost, queue));
      return q?.members !== undefined && q.online !== undefined && q.members.length === this.nodes.length && q.online.length === q.members.length;
    });
  }

  async waitAllRunning(timeoutMs = 120_000): Promise<void> {
    await waitUntil(`all ${this.nodes.length} nodes running`, timeoutMs, async () => {
      const m = await this.management();
      const nodes = (await m.get<MgmtNode[]>('/api/nodes?columns=name,running')) ?? [];
      return this.nodes.every((n) => nodes.some((x) => x.name === n.options.nodeName && x.running));
    });
  }

  private async isClustered(n: LocalRabbitNode): Promise<boolean> {
    const first = this.nodes[0];
    if (!first || n === first) return true;
    const status = await n.ctl(['cluster_status', '--formatter', 'json']);
    const parsed = JSON.parse(status) as { disk_nodes?: string[]; running_nodes?: string[] };
    return (parsed.disk_nodes ?? []).includes(first.options.nodeName);
  }
}

/**
 * The first management API of `clients()` that answers, asked in order; every `clients()` again
 * each 500 ms for up to `waitMs` (the candidates may change between rounds, e.g. with a cut).
 */
export async function firstAnswering(clients: () => ManagementClient[], waitMs: number, failure: string): Promise<ManagementClient> {
  const deadline = Date.now() + waitMs;
  for (;;) {
    for (const m of clients()) if (await m.available()) return m;
    if (Date.now() >= deadline) throw new Error(failure);
    await sleep(500);
  }
}

export async function waitUntil(what: string, timeoutMs: number, check: () => Promise<boolean>, stopped?: () => boolean): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    if (stopped?.()) throw new Error(`stopped while waiting for ${what}`);
    try {
      if (await check()) return;
    } catch (err) {
      last = (err as Error).message;
    }
    await sleep(500);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? ` (last error: ${last})` : ''}`);
}

/** Polls until a pid is gone; false on timeout. */
export async function waitGone(pid: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!existsSync(`/proc/${pid}`)) return true;
    await sleep(100);
  }
  return false;
}
