import type { Channel, ConsumeMessage } from 'amqplib';
import { type AmqpConnectionManager, isPermanent, type Logger } from '../../core/index.ts';
import { ChannelSlot } from './channel-slot.ts';

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
 * Consumes one queue with manual acks and a bounded prefetch; acks each message only after its
 * handler committed. A delivery tag belongs to the channel it came on: once that channel is gone
 * (reconnect), acking it on the new channel would be a protocol error closing the channel, so the
 * ack is skipped and the broker redelivers (the store's upserts make the repeat harmless).
 */
export class QueueConsumer {
  private readonly opts: QueueConsumerOptions;
  private readonly log: Logger;
  private readonly slot: ChannelSlot<Channel>;
  private readonly tags = new WeakMap<Channel, string>();
  private readonly inFlight = new Set<Promise<void>>();
  private readonly stopping = new AbortController();

  constructor(options: QueueConsumerOptions) {
    this.opts = options;
    this.log = options.logger.child({ component: 'consumer', queue: options.queue });
    this.slot = new ChannelSlot<Channel>({
      connection: options.connection,
      name: `consume ${options.queue}`,
      create: (model) => model.createChannel(),
      setup: (ch) => this.setup(ch),
      logger: options.logger,
      ...(options.retryMs !== undefined ? { retryMs: options.retryMs } : {}),
    });
  }

  /** True while a channel is consuming. */
  get consuming(): boolean {
    return this.slot.current !== undefined;
  }

  start(): void {
    this.slot.start();
  }

  /** Stops taking deliveries, lets in-flight commits finish and ack, then closes the channel. */
  async stop(): Promise<void> {
    this.stopping.abort();
    const ch = this.slot.current;
    const tag = ch ? this.tags.get(ch) : undefined;
    if (ch && tag) await ch.cancel(tag).catch((err: unknown) => this.log.debug({ err }, 'cancel failed'));
    await Promise.allSettled([...this.inFlight]);
    // A round trip before closing: on RabbitMQ 3.10 quorum queues, acks written just before
    // channel.close are partly dropped under load (measured), so stored results would come back.
    if (ch) await ch.checkQueue(this.opts.queue).catch((err: unknown) => this.log.debug({ err }, 'ack barrier skipped'));
    await this.slot.close();
  }

  private async setup(ch: Channel): Promise<void> {
    await ch.prefetch(this.opts.prefetch);
    const { consumerTag } = await ch.consume(this.opts.queue, (msg) => this.onMessage(ch, msg), { noAck: false });
    this.tags.set(ch, consumerTag);
    this.log.info({ prefetch: this.opts.prefetch }, 'consuming');
  }

  private onMessage(ch: Channel, msg: ConsumeMessage | null): void {
    if (msg === null) {
      // The broker cancelled the consumer (queue deleted): drop the channel, the slot retries.
      this.log.warn('consumer cancelled by the broker; retrying');
      ch.close().catch((err: unknown) => this.log.debug({ err }, 'channel close failed'));
      return;
    }
    const p = this.process(ch, msg);
    this.inFlight.add(p);
    p.catch((err: unknown) => this.log.error({ err }, 'message handling failed')).finally(() => this.inFlight.delete(p));
  }

  private async process(ch: Channel, msg: ConsumeMessage): Promise<void> {
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
    this.ack(ch, msg);
  }

  private ack(ch: Channel, msg: ConsumeMessage): void {
    if (this.slot.current !== ch) {
      this.log.debug({ deliveryTag: msg.fields.deliveryTag }, 'channel replaced since delivery; ack skipped, the broker redelivers');
      return;
    }
    try {
      ch.ack(msg);
    } catch (err) {
      this.log.debug({ err }, 'ack failed; the broker redelivers');
    }
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
