import type amqplib from 'amqplib';
import type { Logger } from '../../core/index.ts';

/**
 * Publishes replayed dead letters one at a time, `mandatory`, with a confirm. A message no queue
 * takes (its origin queue was deleted or renamed) comes back as basic.return before the broker's
 * confirm, which alone would read as success: without `mandatory` the default exchange drops it
 * and confirms anyway, and acking the dead letter then loses it. One publish in flight at a time
 * makes the return unambiguous: it belongs to the publish awaiting its confirm.
 */
export class ReplayPublisher {
  private returned = false;

  private constructor(private readonly ch: amqplib.ConfirmChannel) {
    ch.on('return', () => {
      this.returned = true;
    });
  }

  static async open(conn: amqplib.ChannelModel, logger: Logger): Promise<ReplayPublisher> {
    const ch = await conn.createConfirmChannel();
    ch.on('error', (err: Error) => logger.warn({ err: { message: err.message } }, 'replay channel closed by the broker'));
    return new ReplayPublisher(ch);
  }

  /** Resolves true once the broker confirmed a routed copy, false when it came back unroutable. */
  async publish(queue: string, content: Buffer, options: amqplib.Options.Publish): Promise<boolean> {
    this.returned = false;
    await new Promise<void>((resolve, reject) => {
      this.ch.sendToQueue(queue, content, { ...options, mandatory: true }, (err) =>
        err ? reject(new Error(`the broker did not confirm the replay to "${queue}"`, { cause: err })) : resolve(),
      );
    });
    return !this.returned;
  }

  close(): Promise<void> {
    return this.ch.close().catch(() => undefined);
  }
}
