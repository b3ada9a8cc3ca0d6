import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { portAnswers } from '../core/index.ts';
import { RabbitNodes } from './rabbit-nodes.ts';

/** The developer's local cluster (rabbitmq-local.md's layout): AMQP 5701-5703, management +10000. */
export const LOCAL_CLUSTER = { prefix: 'warren', basePort: 5701, size: 3 } as const;

export interface LocalClusterOptions {
  /** State (node data and logs) lives under <root>/.warren/cluster. */
  root: string;
  log: (msg: string) => void;
}

function cluster(o: LocalClusterOptions): RabbitNodes {
  return new RabbitNodes({ ...LOCAL_CLUSTER, baseDir: join(o.root, '.warren', 'cluster'), log: o.log });
}

/** What to export to use the cluster. */
export function clusterEnv(nodes: RabbitNodes): string {
  return [`AMQP_URL=${nodes.amqpUrls.join(',')}`, `AMQP_MANAGEMENT_URL=${nodes.node(0).managementUrl}`].join('\n');
}

/** Starts (or completes) the local three-node cluster; idempotent. Returns the env lines to use it. */
export async function clusterUp(o: LocalClusterOptions): Promise<string> {
  const nodes = cluster(o);
  for (const n of nodes.nodes) {
    // A port held by something that is not our node would make the cluster half ours.
    if (!(await portAnswers(n.options.amqpPort)) && (await portAnswers(n.options.managementPort))) {
      throw new Error(`port ${n.options.managementPort} is in use by something else; ${n.options.nodeName} cannot start`);
    }
  }
  o.log(`starting ${nodes.nodes.map((n) => n.options.nodeName).join(', ')} (state in ${nodes.options.baseDir}; about 30 s the first time)`);
  await nodes.start();
  return clusterEnv(nodes);
}

/** Stops the local cluster cleanly; `purge` also deletes its state. */
export async function clusterDown(o: LocalClusterOptions & { purge: boolean }): Promise<void> {
  const nodes = cluster(o);
  // The last node stopped is the one that remembers the cluster best; stop the first one last.
  for (let i = nodes.nodes.length - 1; i >= 0; i--) {
    if (await portAnswers(nodes.node(i).options.amqpPort)) {
      o.log(`stopping ${nodes.node(i).options.nodeName}`);
      await nodes.stopNode(i);
    }
  }
  if (o.purge && existsSync(nodes.options.baseDir)) rmSync(nodes.options.baseDir, { recursive: true, force: true });
}

/** One line per node: up or down. */
export async function clusterStatus(o: LocalClusterOptions): Promise<{ lines: string[]; up: number; env: string }> {
  const nodes = cluster(o);
  const lines: string[] = [];
  let up = 0;
  for (const n of nodes.nodes) {
    const ok = await portAnswers(n.options.amqpPort);
    if (ok) up += 1;
    lines.push(`${n.options.nodeName}  amqp ${n.options.amqpPort}  management ${n.managementUrl}  ${ok ? 'up' : 'down'}`);
  }
  return { lines, up, env: clusterEnv(nodes) };
}
