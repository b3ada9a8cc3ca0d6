import type amqplib from 'amqplib';
import { credentialsOf, type Logger, ManagementClient } from '../core/index.ts';
import type { BindingDecl, CompiledTopology } from './compile.ts';
import { connectTopology, readLiveState } from './live.ts';
import { fmt, type LiveState, type Plan, type PlanItem, planTopology } from './plan.ts';
import { deleteQueueSafely, withChannel } from './safe-delete.ts';

export interface ApplyOptions {
  amqpUrl: string;
  managementUrl?: string | undefined;
  compiled: CompiledTopology;
  /** Delete what is on the broker but not in the files. */
  prune?: boolean;
  /** Queues to delete and declare anew when their arguments differ (only when empty). */
  recreate?: readonly string[];
  /** With `prune`: delete queues not in the files even when they hold messages. */
  force?: boolean;
  logger?: Logger;
}

export interface ApplyResult {
  plan: Plan;
  applied: string[];
  conflicts: string[];
  /** Queues `prune` kept because they hold messages or have consumers (each with the way to force). */
  refused: string[];
  failed?: { item: string; error: string };
}

/**
 * Applies a compiled topology: idempotent, creates what is missing, leaves what matches alone,
 * reports what RabbitMQ cannot change in place, and deletes only with `prune`.
 */
export async function applyTopology(options: ApplyOptions): Promise<ApplyResult> {
  await ensureVhost(options);
  const live = await readLiveState(options);
  const plan = planTopology(options.compiled, live);
  const result: ApplyResult = { plan, applied: [], conflicts: [], refused: [] };
  const recreate = new Set(options.recreate ?? []);
  const kept = new Set<string>();

  const conn = await connectTopology(options.amqpUrl);
  try {
    const ordered = [
      ...plan.items.filter((i) => i.kind === 'exchange'),
      ...plan.items.filter((i) => i.kind === 'queue'),
      ...plan.items.filter((i) => i.kind === 'binding'),
    ];
    for (const item of ordered) {
      const label = `${item.kind} ${item.name}`;
      try {
        if (item.action === 'differs') {
          if (item.kind === 'queue' && item.queue && recreate.has(item.name)) {
            const refusal = await deleteQueueSafely(conn, {
              queue: item.name,
              quorum: isQuorum(live, item.name),
              bindings: bindingsOf(live, item.name),
              feeders: feedersOf(options.compiled, live, item.name),
            });
            if (refusal) throw new Error(`refusing to recreate ${item.name}: ${refusal}; drain it and stop its consumers first`);
            await declare(conn, item);
            result.applied.push(`recreated ${label}`);
            // Deleting a queue deletes its bindings with it: declare them again.
            for (const b of options.compiled.bindings.filter((x) => x.queue === item.name)) {
              await declare(conn, { kind: 'binding', name: `${b.exchange} -> ${b.queue}`, action: 'create', binding: b });
            }
          } else {
            result.conflicts.push(describeConflict(item));
          }
        } else if (item.action === 'create' || item.action === 'exists') {
          await declare(conn, item);
          if (item.action === 'create') result.applied.push(`created ${label}`);
        } else if (item.action === 'extra' && options.prune) {
          if (item.kind === 'queue' && !options.force) {
            const refusal = await deleteQueueSafely(conn, { queue: item.name, quorum: isQuorum(live, item.name), bindings: bindingsOf(live, item.name) });
            if (refusal) {
              kept.add(item.name);
              result.refused.push(`queue ${item.name}: ${refusal}; kept. Drain it, or delete it with its messages: warren topology apply --prune --force`);
              continue;
            }
          } else if (item.binding && kept.has(item.binding.queue)) {
            continue; // a kept queue keeps its bindings: its messages' producers still reach it
          } else await prune(conn, item);
          result.applied.push(`deleted ${label}`);
        }
      } catch (err) {
        result.failed = { item: label, error: (err as Error).message };
        break;
      }
    }
  } finally {
    await conn.close().catch(() => {});
  }
  return result;
}

async function declare(conn: amqplib.ChannelModel, item: PlanItem): Promise<void> {
  await withChannel(conn, async (ch) => {
    if (item.exchange) await ch.assertExchange(item.exchange.name, item.exchange.type, { durable: item.exchange.durable });
    if (item.queue) await ch.assertQueue(item.queue.name, { durable: item.queue.durable, arguments: item.queue.arguments });
    if (item.binding) await ch.bindQueue(item.binding.queue, item.binding.exchange, item.binding.routingKey);
  });
}

/** The queue's retry tiers that exist on the broker: their expired copies come back to it. */
function feedersOf(compiled: CompiledTopology, live: LiveState, queue: string): string[] {
  const present = new Set(live.queues.map((q) => q.name));
  return (compiled.routes[queue]?.retry?.tiers ?? []).map((t) => t.queue).filter((q) => present.has(q));
}

function isQuorum(live: LiveState, queue: string): boolean {
  return live.queues.find((q) => q.name === queue)?.arguments['x-queue-type'] === 'quorum';
}

/** The queue's bindings from named exchanges, as the broker has them (the default exchange's cannot be removed). */
function bindingsOf(live: LiveState, queue: string): BindingDecl[] {
  return live.bindings.filter((b) => b.queue === queue && b.exchange !== '');
}

async function prune(conn: amqplib.ChannelModel, item: PlanItem): Promise<void> {
  await withChannel(conn, async (ch) => {
    if (item.kind === 'queue') await ch.deleteQueue(item.name);
    else if (item.kind === 'exchange') await ch.deleteExchange(item.name);
    else if (item.binding) await ch.unbindQueue(item.binding.queue, item.binding.exchange, item.binding.routingKey);
  });
}

function describeConflict(item: PlanItem): string {
  const args = (item.diffs ?? []).map((d) => `${d.argument}: live ${fmt(d.live)}, desired ${fmt(d.desired)}`).join('; ');
  if (item.kind === 'queue') {
    return (
      `queue ${item.name}: ${args}. RabbitMQ cannot change queue arguments in place. ` +
      `Way out: drain the queue, then run \`warren topology apply --recreate ${item.name}\` (deletes it only while empty and declares it anew); ` +
      'or move to a new queue name; or set the value with a policy (`rabbitmqctl set_policy`), which overrides without redeclaring.'
    );
  }
  return `exchange ${item.name}: ${args}. RabbitMQ cannot change an exchange's type or durability. Way out: delete the exchange (bindings go with it) and apply again, or use a new name.`;
}

/** Creates the URL's vhost (and grants the URL's user on it) when the management API can. */
async function ensureVhost(options: ApplyOptions): Promise<void> {
  const mgmt = new ManagementClient({ amqpUrl: options.amqpUrl, managementUrl: options.managementUrl });
  if (!(await mgmt.available())) return;
  const existing = await mgmt.get(mgmt.path('vhosts', mgmt.vhost));
  if (existing !== undefined) return;
  await mgmt.put(mgmt.path('vhosts', mgmt.vhost), {});
  const { username } = credentialsOf(options.amqpUrl);
  await mgmt.put(mgmt.path('permissions', mgmt.vhost, username), { configure: '.*', write: '.*', read: '.*' });
  options.logger?.info({ vhost: mgmt.vhost }, 'created vhost');
}
