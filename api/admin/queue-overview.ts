import type { ManagementClient, ManagementQueue } from '../../core/index.ts';
import type { CompiledTopology } from '../../topology/index.ts';

export interface QueueRow {
  name: string;
  role: string;
  /** The main queue a side queue serves (retry tier, dead letters, events). */
  of: string | undefined;
  exists: boolean;
  messages: number;
  ready: number;
  unacked: number;
  consumers: number;
  publishRate: number;
  deliverRate: number;
  ackRate: number;
  /** For a main queue with dead-lettering: the messages in its `.dead` queue. */
  dead: number | undefined;
}

/**
 * The queues of every job in the topology, as the management API sees them (depth, consumers,
 * rates). Read-only and cheap (one GET), so the console can poll it every few seconds.
 */
export async function queueOverview(mgmt: ManagementClient, compiled: CompiledTopology): Promise<QueueRow[]> {
  const live = await mgmt.get<ManagementQueue[]>(
    `${mgmt.path('queues', mgmt.vhost)}?columns=name,messages,messages_ready,messages_unacknowledged,consumers,message_stats`,
  );
  const byName = new Map((live ?? []).map((q) => [q.name, q]));
  const depth = (name: string | undefined) => (name ? (byName.get(name)?.messages ?? 0) : undefined);
  // Each job's main queue, then the queues that serve it (retry tiers, dead letters, events).
  const mains = compiled.queues.filter((q) => !q.of);
  const ordered = [
    ...mains.flatMap((m) => [m, ...compiled.queues.filter((q) => q.of === m.name)]),
    ...compiled.queues.filter((q) => q.of && !mains.some((m) => m.name === q.of)),
  ];
  return ordered.map((q) => {
    const l = byName.get(q.name);
    const route = compiled.routes[q.name];
    return {
      name: q.name,
      role: q.role,
      of: q.of,
      exists: Boolean(l),
      messages: l?.messages ?? 0,
      ready: l?.messages_ready ?? 0,
      unacked: l?.messages_unacknowledged ?? 0,
      consumers: l?.consumers ?? 0,
      publishRate: l?.message_stats?.publish_details?.rate ?? 0,
      deliverRate: l?.message_stats?.deliver_get_details?.rate ?? 0,
      ackRate: l?.message_stats?.ack_details?.rate ?? 0,
      dead: q.role === 'main' ? depth(route?.deadLetter?.queue) : undefined,
    };
  });
}
