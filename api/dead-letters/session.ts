import amqplib from 'amqplib';
import type { Logger } from '../../core/index.ts';
import { type DeadLetter, decodeDeadLetter } from './dead-letter.ts';
import { classifyBrokerError, DeadLetterOperationError } from './errors.ts';

export interface DeadLetterSource {
  origin: string;
  deadQueue: string;
  deliveryLimit?: number | undefined;
}

export interface HeldMessage {
  msg: amqplib.ConsumeMessage;
  dl: DeadLetter;
}

/** The most messages one operation holds at once (unacknowledged, in memory). */
export const MAX_BROWSE = 50_000;

/** How long a read waits for the next message before it takes what it has (a queue being written). */
const IDLE_GAP_MS = 1000;

/**
 * Holds every message of a dead-letter queue unacknowledged (up to MAX_BROWSE), lets `work` ack
 * some, then closes the channel so the broker returns the rest in their order. RabbitMQ has no
 * peek, so this is how a message is read without removing it.
 *
 * Every connection and channel gets an 'error' listener: amqplib emits a channel closed by the
 * broker (a 404 on a queue that is gone, say) as an 'error' event, which, unheard, would throw
 * out of the event loop and take the API down. The failure is answered instead, as a
 * DeadLetterOperationError naming the queue.
 */
export async function withHeldMessages(
  amqpUrl: string,
  src: DeadLetterSource,
  logger: Logger,
  work: (msgs: HeldMessage[], conn: amqplib.ChannelModel, ch: amqplib.Channel) => Promise<amqplib.ConsumeMessage[]>,
): Promise<void> {
  const queue = src.deadQueue;
  const log = logger.child({ component: 'dead-letters', queue });
  let conn: amqplib.ChannelModel;
  try {
    conn = await amqplib.connect(amqpUrl, { clientProperties: { connection_name: 'warren dead-letter session' } });
  } catch (err) {
    throw new DeadLetterOperationError(503, 'BROKER_UNAVAILABLE', `the broker is unreachable, so "${queue}" cannot be read: ${(err as Error).message}`, {
      cause: err,
    });
  }
  conn.on('error', (err: Error) => log.warn({ err: { message: err.message } }, 'dead-letter session connection error'));
  try {
    const ch = await conn.createChannel();
    ch.on('error', (err: Error) => log.warn({ err: { message: err.message } }, 'dead-letter session channel closed by the broker'));
    const msgs = await readAll(ch, src);
    const acked = await work(msgs, conn, ch);
    // A synchronous round trip on this channel before closing it: measured on RabbitMQ 3.10
    // quorum queues, acks written just before channel.close are partly dropped under load and
    // the "removed" messages come back (34 of 300 acks applied); after a round trip, all are.
    if (acked.length > 0) await ch.checkQueue(queue);
    await ch.close();
    if (msgs.length > acked.length) await untilReturned(conn, queue, msgs.length - acked.length);
  } catch (err) {
    throw classifyBrokerError(err, queue);
  } finally {
    await conn.close().catch(() => undefined);
  }
}

/**
 * Waits (bounded) until the messages a closed channel held are ready again. A quorum queue
 * requeues them after the close returns, not before: a session that starts at once (the purge
 * right after its export) would otherwise count them out and miss them. Gives up quietly at the
 * deadline: nothing is lost either way, the next session just sees fewer.
 */
async function untilReturned(conn: amqplib.ChannelModel, queue: string, held: number, ms = 3000): Promise<void> {
  const ch = await conn.createChannel();
  ch.on('error', () => undefined);
  try {
    const deadline = Date.now() + ms;
    while (Date.now() < deadline) {
      if ((await ch.checkQueue(queue)).messageCount >= held) return;
      await new Promise((r) => setTimeout(r, 20));
    }
  } finally {
    await ch.close().catch(() => undefined);
  }
}

async function readAll(ch: amqplib.Channel, src: DeadLetterSource): Promise<HeldMessage[]> {
  const queue = src.deadQueue;
  const { messageCount } = await ch.checkQueue(queue);
  const want = Math.min(messageCount, MAX_BROWSE);
  const msgs: HeldMessage[] = [];
  if (want === 0) return msgs;
  await ch.prefetch(want);
  let resolveAll: () => void = () => undefined;
  const all = new Promise<void>((r) => {
    resolveAll = r;
  });
  // Messages published while we read are not waited for; an idle gap ends the read.
  let idle: NodeJS.Timeout | undefined;
  const armIdle = () => {
    clearTimeout(idle);
    idle = setTimeout(resolveAll, IDLE_GAP_MS);
  };
  armIdle();
  const closed = () => resolveAll();
  ch.once('close', closed);
  const { consumerTag } = await ch.consume(queue, (msg) => {
    if (!msg) return;
    msgs.push({ msg, dl: decodeDeadLetter(msg, src.origin, src.deliveryLimit) });
    if (msgs.length >= want) resolveAll();
    else armIdle();
  });
  await all;
  clearTimeout(idle);
  ch.off('close', closed);
  await ch.cancel(consumerTag);
  return msgs;
}
