import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { ManagementClient, portAnswers, RABBIT_BIN } from '../core/index.ts';
import type { BrokerCluster } from './broker-cluster.ts';
import { assertNetworkTools, createNetwork, destroyNetwork, dropBetween, healNode, layoutPresent, type NetLayout } from './netns.ts';
import { firstAnswering, MANAGEMENT_WAIT_MS, waitGone, waitUntil } from './rabbit-nodes.ts';

export const AMQP_PORT = 5672;
export const MANAGEMENT_PORT = 15672;

/**
 * RabbitMQ's advice for quorum queues: a node that finds itself in a minority stops serving
 * clients until it rejoins, so no client keeps publishing into (or consuming from) a node that
 * cannot reach a quorum. (autoheal would let the minority keep accepting until the heal.)
 */
export const PARTITION_HANDLING = 'pause_minority';

export interface NetnsClusterOptions {
  layout: NetLayout;
  /** Node data, logs, configs and the shared Erlang cookie go here. */
  baseDir: string;
  /** Erlang's net_ticktime: a peer silent for about this long is declared down (0.75x-1.25x). */
  netTicktimeS: number;
  log?: (msg: string) => void;
  onNodeStarted?: (pid: number | undefined) => void;
}

interface MgmtNode {
  name: string;
  running: boolean;
  partitions?: string[];
}

/**
 * Three RabbitMQ nodes, each in a network namespace of its own with its own address, epmd and
 * the standard ports, clustered at boot (classic config peer discovery) with one cookie and
 * `cluster_partition_handling = pause_minority`. Faults are real network faults: DROP rules
 * inside a namespace, SIGSTOP of a node's VM. The harness talks to the nodes only through their
 * addresses (AMQP, management API): `rabbitmqctl` from the host cannot reach them reliably.
 */
export class NetnsCluster implements BrokerCluster {
  private readonly log: (msg: string) => void;
  /** Nodes the harness cut off: their management API may hang or tell a minority's story. */
  private readonly isolated = new Set<number>();
  /** Set by stopAll: waits in progress (a start, a heal) give up instead of polling a removed network. */
  private stopped = false;
  private readonly isStopped = () => this.stopped;

  constructor(readonly o: NetnsClusterOptions) {
    this.log = o.log ?? (() => {});
  }

  get layout(): NetLayout {
    return this.o.layout;
  }

  get amqpUrls(): string[] {
    return this.layout.indexes.map((i) => this.amqpUrl(i));
  }

  get nodeNames(): string[] {
    return this.layout.indexes.map((i) => `rabbit@${this.layout.namespace(i)}`);
  }

  amqpUrl(i: number, query = ''): string {
    return `amqp://guest:guest@${this.layout.address(i)}:${AMQP_PORT}${query}`;
  }

  managementUrl(i: number): string {
    return `http://${this.layout.address(i)}:${MANAGEMENT_PORT}`;
  }

  private dir(i: number): string {
    return join(this.o.baseDir, `n${i + 1}`);
  }

  private pid(i: number): number | undefined {
    try {
      const n = Number(readFileSync(join(this.dir(i), 'pid'), 'utf8').trim());
      return Number.isInteger(n) && n > 0 ? n : undefined;
    } catch {
      return undefined;
    }
  }

  async assertPortsFree(): Promise<void> {
    await assertNetworkTools();
    if (layoutPresent(this.layout)) {
      throw new Error(
        `network ${this.layout.bridge} / ${this.layout.namespace(0)} already exists: another run of this scenario, or a leftover (\`npm run chaos -- cleanup\` removes it)`,
      );
    }
  }

  /** Builds the network, then starts the first node and the others once it answers (they join it at boot). */
  async start(): Promise<void> {
    await createNetwork(this.layout);
    const home = join(this.o.baseDir, 'home');
    mkdirSync(home, { recursive: true });
    const cookie = join(home, '.erlang.cookie');
    if (!existsSync(cookie)) {
      writeFileSync(cookie, randomBytes(24).toString('hex'));
      chmodSync(cookie, 0o400);
    }
    // Debian's rabbitmq-env.conf pins epmd and distribution to 127.0.0.1: nodes would not see each other.
    writeFileSync(join(this.o.baseDir, 'rabbitmq-env.conf'), '');
    const [first, ...rest] = this.layout.indexes;
    await this.startNode(first ?? 0);
    await Promise.all(rest.map((i) => this.startNode(i)));
    await this.waitHealed(180_000);
  }

  private async startNode(i: number, timeoutMs = 120_000): Promise<void> {
    const d = this.dir(i);
    mkdirSync(d, { recursive: true });
    writeFileSync(join(d, 'enabled_plugins'), '[rabbitmq_management].\n');
    const peers = this.nodeNames.map((n, k) => `cluster_formation.classic_config.nodes.${k + 1} = ${n}`);
    writeFileSync(
      join(d, 'rabbitmq.conf'),
      [
        `listeners.tcp.1 = 0.0.0.0:${AMQP_PORT}`,
        `management.tcp.port = ${MANAGEMENT_PORT}`,
        // Clients come from the bridge address, not loopback.
        'loopback_users = none',
        `cluster_partition_handling = ${PARTITION_HANDLING}`,
        'cluster_formation.peer_discovery_backend = classic_config',
        ...peers,
        // The first node is up before the others start, so they need no random delay to avoid a race.
        'cluster_formation.randomized_startup_delay_range.min = 0',
        'cluster_formation.randomized_startup_delay_range.max = 1',
        '',
      ].join('\n'),
    );
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      HOME: join(this.o.baseDir, 'home'),
      RABBITMQ_CONF_ENV_FILE: join(this.o.baseDir, 'rabbitmq-env.conf'),
      RABBITMQ_NODENAME: this.nodeNames[i],
      RABBITMQ_DIST_PORT: '25672',
      RABBITMQ_MNESIA_BASE: join(d, 'mnesia'),
      RABBITMQ_LOG_BASE: join(d, 'log'),
      RABBITMQ_CONFIG_FILE: join(d, 'rabbitmq'),
      RABBITMQ_ENABLED_PLUGINS_FILE: join(d, 'enabled_plugins'),
      RABBITMQ_PID_FILE: join(d, 'pid'),
      RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS: `-kernel net_ticktime ${this.o.netTicktimeS}`,
    };
    rmSync(join(d, 'pid'), { force: true });
    await new Promise<void>((resolve, reject) => {
      const child = spawn('ip', ['netns', 'exec', this.layout.namespace(i), join(RABBIT_BIN, 'rabbitmq-server'), '-detached'], { env, stdio: 'ignore' });
      child.on('error', reject);
      child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`rabbitmq-server -detached in ${this.layout.namespace(i)} exited ${code}`))));
    });
    const deadline = Date.now() + timeoutMs;
    while (!(await portAnswers(AMQP_PORT, this.layout.address(i)))) {
      if (this.stopped) throw new Error(`cluster stopped while ${this.nodeNames[i]} was starting`);
      if (Date.now() > deadline) throw new Error(`${this.nodeNames[i]} did not accept AMQP within ${timeoutMs} ms (logs: ${join(d, 'log')})`);
      await sleep(250);
    }
    this.o.onNodeStarted?.(this.pid(i));
    this.log(`${this.nodeNames[i]} up at ${this.layout.address(i)}`);
  }

  async kill(i: number): Promise<void> {
    const pid = this.pid(i);
    if (pid === undefined) return;
    this.signal(i, 'SIGKILL');
    await waitGone(pid, 15_000);
  }

  async restart(i: number): Promise<void> {
    await this.startNode(i);
    await this.waitHealed();
  }

  /**
   * Waits for the cluster to heal by itself; past `selfHealMs`, restarts node i (the one the fault
   * hit) as an operator would, and waits again. Says which it was, for the report.
   */
  async healOrRestart(i: number, selfHealMs: number): Promise<{ selfHealed: boolean; notHealedBecause?: string }> {
    try {
      await this.waitHealed(selfHealMs);
      return { selfHealed: true };
    } catch (err) {
      this.log(`not healed on its own within ${selfHealMs / 1000} s (${(err as Error).message}); restarting ${this.nodeNames[i]} as an operator would`);
      await this.restartPartitioned(i);
      return { selfHealed: false, notHealedBecause: (err as Error).message };
    }
  }

  /**
   * What an operator does with a node that stays partitioned: restart it (same name and data), so
   * it rejoins the majority. Used only after the cluster failed to heal on its own.
   */
  async restartPartitioned(i: number): Promise<void> {
    await this.kill(i);
    this.isolated.delete(i);
    await this.restart(i);
  }

  async stopNode(i: number): Promise<void> {
    const pid = this.pid(i);
    // Erlang/OTP stops the node cleanly on SIGTERM (init:stop).
    this.signal(i, 'SIGTERM');
    if (pid !== undefined && !(await waitGone(pid, 30_000))) await this.kill(i);
  }

  /** SIGSTOP / SIGCONT / SIGKILL / SIGTERM to node i's VM. */
  signal(i: number, sig: NodeJS.Signals): void {
    const pid = this.pid(i);
    if (pid === undefined) throw new Error(`${this.nodeNames[i]} has no pid file`);
    process.kill(pid, sig);
  }

  /** Tears the whole network down: every process in the namespaces, the links, the host names. */
  async stopAll(options: { graceful: boolean; removeData: boolean }): Promise<void> {
    this.stopped = true;
    // A stopped VM ignores SIGTERM until continued; SIGKILL in destroyNetwork needs no continue.
    if (options.graceful) await Promise.all(this.layout.indexes.map((i) => this.stopNode(i).catch(() => undefined)));
    const removed = destroyNetwork(this.layout);
    if (removed.length) this.log(`removed ${removed.join(', ')}`);
    if (options.removeData && existsSync(this.o.baseDir)) rmSync(this.o.baseDir, { recursive: true, force: true });
  }

  /**
   * Cuts node i off from the other nodes, and with `fromClients` also the AMQP link between it and
   * the host's clients (silently: its connections get no reset, no FIN).
   */
  async isolate(i: number, options: { fromClients: boolean }): Promise<void> {
    const others = this.layout.indexes.filter((k) => k !== i).map((k) => this.layout.address(k));
    this.isolated.add(i);
    await dropBetween(this.layout, i, others);
    if (options.fromClients) await dropBetween(this.layout, i, [this.layout.hostAddress], AMQP_PORT);
  }

  async healAll(): Promise<void> {
    for (const i of this.layout.indexes) await healNode(this.layout, i);
    this.isolated.clear();
  }

  /** Marks a node the management reads should avoid (a paused VM answers nothing). */
  avoid(i: number, on: boolean): void {
    if (on) this.isolated.add(i);
    else this.isolated.delete(i);
  }

  /** As RabbitNodes.management: the first node outside the cut that answers, asking again for up to `waitMs`. */
  management(waitMs = 0): Promise<ManagementClient> {
    const clients = () =>
      this.layout.indexes
        .filter((i) => !this.isolated.has(i))
        .map((i) => new ManagementClient({ amqpUrl: this.amqpUrl(i), managementUrl: this.managementUrl(i) }));
    return firstAnswering(clients, waitMs, 'no node outside the cut answers on its management port');
  }

  async liveUrl(): Promise<{ amqpUrl: string; managementUrl: string }> {
    const m = await this.management(MANAGEMENT_WAIT_MS);
    const i = this.layout.indexes.find((k) => this.managementUrl(k) === m.baseUrl) ?? 0;
    return { amqpUrl: this.amqpUrl(i), managementUrl: m.baseUrl };
  }

  async leaderOf(queue: string, vhost = '/'): Promise<string> {
    const m = await this.management();
    // A classic queue (the unsafe self-check's) has a home node instead of a leader.
    const q = await m.get<{ leader?: string; node?: string }>(m.path('queues', vhost, queue));
    const leader = q?.leader ?? q?.node;
    if (!leader) throw new Error(`queue ${queue} is missing`);
    return leader;
  }

  indexOf(nodeName: string): number {
    const i = this.nodeNames.indexOf(nodeName);
    if (i < 0) throw new Error(`${nodeName} is not one of ours`);
    return i;
  }

  async waitQueueMembersOnline(queue: string, timeoutMs = 90_000, vhost = '/'): Promise<void> {
    await waitUntil(
      `all members of ${queue} online`,
      timeoutMs,
      async () => {
        const m = await this.management();
        const q = await m.get<{ members?: string[]; online?: string[] }>(m.path('queues', vhost, queue));
        // A classic queue (the unsafe self-check's) has no members to wait for, and may be gone.
        if (q?.members === undefined) return true;
        return q.members.length === this.nodeNames.length && q.online?.length === q.members.length;
      },
      this.isStopped,
    );
  }

  /**
   * Every node running, answering its own management API and reporting no partition: the cluster
   * healed. A rejoin was once seen to hang for more than 50 s here, so the next fault waits for this.
   */
  async waitHealed(timeoutMs = 120_000): Promise<void> {
    await waitUntil(
      'the cluster to heal (all nodes running, no partitions)',
      timeoutMs,
      async () => {
        for (const i of this.layout.indexes) {
          const m = new ManagementClient({ amqpUrl: this.amqpUrl(i), managementUrl: this.managementUrl(i) });
          const nodes = (await m.get<MgmtNode[]>('/api/nodes?columns=name,running,partitions', 3000)) ?? [];
          const ok = this.nodeNames.every((n) => nodes.some((x) => x.name === n && x.running && (x.partitions ?? []).length === 0));
          // Thrown, not returned: waitUntil names the last error, so a timeout says what was wrong.
          if (!ok)
            throw new Error(
              `${this.nodeNames[i]} sees ${nodes.map((x) => `${x.name}${x.running ? '' : ' down'}${x.partitions?.length ? ` partitioned from ${x.partitions.join('+')}` : ''}`).join(', ')}`,
            );
        }
        return true;
      },
      this.isStopped,
    );
  }
}
