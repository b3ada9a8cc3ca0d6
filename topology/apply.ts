import amqplib from 'amqplib';
import { credentialsOf, type Logger, ManagementClient } from '../core/index.ts';
import type { CompiledTopology } from './compile.ts';
import { readLiveState } from './live.ts';
import { fmt, type Plan, type PlanItem, planTopology } from './plan.ts';

export interface ApplyOptions {
  amqpUrl: string;
  managementUrl?: string | undefined;
  compiled: CompiledTopology;
  /** Delete what is on the broker but not in the files. */
  prune?: boolean;
  /** Queues to delete and declare anew when their arguments differ (only when empty). */
  recreate?: readonly string[];
  logger?: Logger;
}

export interface ApplyResult {
  plan: Plan;
  applied: string[];
  conflicts: string[];
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
  const result: ApplyResult = { plan, applied: [], conflicts: [] };
  const recreate = new Set(options.recreate ?? []);

  const conn = await amqplib.connect(options.amqpUrl);
  conn.on('error', () => {});
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
            await deleteIfIdle(conn, item.name);
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
          await prune(conn, item);
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

/**
 * Quorum queues refuse `if-empty` deletion (NOT_IMPLEMENTED), so emptiness is checked with a
 * passive declare: no ready message and no consumer (so nothing unacknowledged either).
 */
async function deleteIfIdle(conn: amqplib.ChannelModel, queue: string): Promise<void> {
  const { messageCount, consumerCount } = await withChannel(conn, (ch) => ch.checkQueue(queue));
  if (messageCount > 0 || consumerCount > 0) {
    throw new Error(
      `refusing to recreate ${queue}: it holds ${messageCount} message(s) and has ${consumerCount} consumer(s); drain it and stop its consumers first`,
    );
  }
  await withChannel(conn, (ch) => ch.deleteQueue(queue));
}

async function prune(conn: amqplib.ChannelModel, item: PlanItem): Promise<void> {
  await withChannel(conn, async (ch) => {
    if (item.kind === 'queue') await ch.deleteQueue(item.name);
    else if (item.kind === 'exchange') await ch.deleteExchange(item.name);
    else if (item.binding) await ch.unbindQueue(item.binding.queue, item.binding.exchange, item.binding.routingKey);
  });
}

/** A channel per operation: a refused declare closes its channel (406 PRECONDITION_FAILED). */
async function withChannel<T>(conn: amqplib.ChannelModel, fn: (ch: amqplib.Channel) => Promise<T>): Promise<T> {
  const ch = await conn.createChannel();
  ch.on('error', () => {});
  try {
    return await fn(ch);
  } finally {
    await ch.close().catch(() => {});
  }
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
