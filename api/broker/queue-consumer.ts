import type { ConsumeMessage } from 'amqplib';
import { Consumer, type Delivery } from '../../amqp/index.ts';
import { type AmqpConnectionManager, isPermanent, type Logger } from '../../core/index.ts';

export interface QueueConsumerOptions {
  connection: AmqpConnectionManager;
  queue: string;
  prefetch: number;
  /**
   * Stores what a message says. Resolving means committed: the message is acked. Throwing a
   * PermanentError means it can never be stored: it is acked too (the handler logged why). Any
   * other error is retried with backoff while the message stays unacked.
   */
  handle: (msg: ConsumeMessage) => Promise<void>;
  logger: Logger;
  retryMs?: number;
}

const MAX_BACKOFF_MS = 5000;

/**
 * The API's consumer of results and dead events: acks each message only after its handler
 * committed, on the shared consumer (acks go to the delivering channel or not at all; the broker
 * redelivers, and the store's upserts make the repeat harmless).
 */
export class QueueConsumer {
  private readonly opts: QueueConsumerOptions;
  private readonly log: Logger;
  private readonly consumer: Consumer;
  private readonly inFlight = new Set<Promise<void>>();
  private readonly stopping = new AbortController();

  constructor(options: QueueConsumerOptions) {
    this.opts = options;
    this.log = options.logger.child({ component: 'consumer', queue: options.queue });
    this.consumer = new Consumer({
      connection: options.connection,
      queue: options.queue,
      prefetch: options.prefetch,
      logger: options.logger,
      onDelivery: (d) => this.onDelivery(d),
      ...(options.retryMs !== undefined ? { retryMs: options.retryMs } : {}),
    });
  }

  /** True while a channel is consuming. */
  get consuming(): boolean {
    return this.consumer.consuming;
  }

  start(): void {
    this.consumer.start();
  }

  /** Stops taking deliveries, lets in-flight commits finish and ack, then closes the channel. */
  async stop(): Promise<void> {
    this.stopping.abort();
    await this.consumer.cancel();
    await Promise.allSettled([...this.inFlight]);
    await this.consumer.close();
  }

  private onDelivery(delivery: Delivery): void {
    const p = this.process(delivery);
    this.inFlight.add(p);
    p.catch((err: unknown) => this.log.error({ err }, 'message handling failed')).finally(() => this.inFlight.delete(p));
  }

  private async process(delivery: Delivery): Promise<void> {
    const msg = delivery.message;
    let delay = this.opts.retryMs ?? 200;
    for (;;) {
      try {
        await this.opts.handle(msg);
        break;
      } catch (err) {
        if (isPermanent(err)) break;
        // Left unacked on stop: the broker redelivers it to the next consumer.
        if (this.stopping.signal.aborted) return;
        this.log.warn({ err, deliveryTag: msg.fields.deliveryTag }, 'store commit failed; retrying');
        await sleep(delay, this.stopping.signal);
        if (this.stopping.signal.aborted) return;
        delay = Math.min(delay * 2, MAX_BACKOFF_MS);
      }
    }
    if (!this.consumer.ack(delivery))
      this.log.debug({ deliveryTag: msg.fields.deliveryTag }, 'channel replaced since delivery; ack skipped, the broker redelivers');
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}
