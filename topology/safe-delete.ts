import type amqplib from 'amqplib';
import type { BindingDecl } from './compile.ts';

/** The little of an AMQP connection the deletes below use (a scripted fake in unit tests). */
export interface ChannelSource {
  createChannel(): Promise<amqplib.Channel>;
}

export interface SafeDelete {
  queue: string;
  quorum: boolean;
  /** The queue's bindings from named exchanges: taken away before the check, put back on refusal. */
  bindings: readonly BindingDecl[];
  /**
   * Queues that dead-letter into this one through the default exchange (its retry tiers): they
   * cannot be unbound, so they must be empty too, or an expiring copy finds no queue.
   */
  feeders?: readonly string[];
}

/**
 * Deletes a queue only while it holds nothing, without a window in which a publisher's message
 * can land between "it is empty" and the delete (a confirmed message deleted with its queue is
 * lost). Returns why it refused, or undefined once deleted.
 *
 * Classic queues: one `queue.delete` with if-empty and if-unused, which the broker checks and
 * applies atomically. Quorum queues answer NOT_IMPLEMENTED to those flags, so their bindings go
 * first: from then on a publish through an exchange is unroutable (Warren publishes mandatory, so
 * the publisher hears it and answers 503 or retries) and cannot add to the queue between the check
 * and the delete. What the check reads: ready messages and consumers (unacknowledged messages
 * exist only with a consumer). A publish straight to the queue through the default exchange
 * cannot be held off this way; in Warren only the queue's own retry tiers do that (expired copies
 * coming back): they are checked first (`feeders`), and with no consumer on the queue no new copy
 * enters them.
 */
export async function deleteQueueSafely(conn: ChannelSource, target: SafeDelete): Promise<string | undefined> {
  for (const feeder of target.feeders ?? []) {
    const { messageCount } = await withChannel(conn, (ch) => ch.checkQueue(feeder));
    if (messageCount > 0) return `its retry queue ${feeder} holds ${messageCount} message(s) that expire back into it`;
  }
  if (!target.quorum) {
    const refusal = await holdsSomething(conn, target.queue);
    if (refusal) return refusal;
    try {
      await withChannel(conn, (ch) => ch.deleteQueue(target.queue, { ifEmpty: true, ifUnused: true }));
      return undefined;
    } catch (err) {
      if ((err as { code?: unknown }).code === 406)
        return 'a message or a consumer arrived while it was being deleted (the broker refused the if-empty delete)';
      throw err;
    }
  }
  for (const b of target.bindings) await withChannel(conn, (ch) => ch.unbindQueue(b.queue, b.exchange, b.routingKey));
  try {
    const refusal = await holdsSomething(conn, target.queue);
    if (refusal) {
      await rebind(conn, target.bindings);
      return refusal;
    }
    await withChannel(conn, (ch) => ch.deleteQueue(target.queue));
    return undefined;
  } catch (err) {
    await rebind(conn, target.bindings).catch(() => {});
    throw err;
  }
}

async function holdsSomething(conn: ChannelSource, queue: string): Promise<string | undefined> {
  const { messageCount, consumerCount } = await withChannel(conn, (ch) => ch.checkQueue(queue));
  if (messageCount === 0 && consumerCount === 0) return undefined;
  return `it holds ${messageCount} message(s) and has ${consumerCount} consumer(s)`;
}

async function rebind(conn: ChannelSource, bindings: readonly BindingDecl[]): Promise<void> {
  for (const b of bindings) await withChannel(conn, (ch) => ch.bindQueue(b.queue, b.exchange, b.routingKey));
}

/** A channel per operation: a refused declare closes its channel (406 PRECONDITION_FAILED). */
export async function withChannel<T>(conn: ChannelSource, fn: (ch: amqplib.Channel) => Promise<T>): Promise<T> {
  const ch = await conn.createChannel();
  ch.on('error', () => {});
  try {
    return await fn(ch);
  } finally {
    await ch.close().catch(() => {});
  }
}
