import type { Channel } from 'amqplib';
import type { Logger } from '../core/index.ts';
import { bounded } from './bounded.ts';

/**
 * Waits until the broker has read everything written on `channel` before it: a round trip (a
 * passive queue check) after the last acks and before the channel closes. On RabbitMQ 3.10 quorum
 * queues, acks written just before channel.close are partly dropped under load (measured), and
 * the acked messages come back as duplicates. Never throws, and waits at most a few seconds: a
 * channel already gone needs no barrier, and a silent node never answers.
 */
export async function ackBarrier(channel: Channel, queue: string, logger: Logger): Promise<void> {
  await bounded(channel.checkQueue(queue), 'ack barrier', logger);
}
