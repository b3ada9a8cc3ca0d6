import { setTimeout as sleep } from 'node:timers/promises';
import type { Channel, ConsumeMessage } from 'amqplib';
import type { AmqpConnectionManager, Logger } from '../core/index.ts';
import { ackBarrier } from './ack-barrier.ts';
import { bounded } from './bounded.ts';
import { ChannelHolder } from './channel-holder.ts';
import { exists } from './passive.ts';

/**
 * A message together with the channel that delivered it. A delivery tag means something only on
 * its own channel: after a reconnect, acking it on the new channel would close that channel with
 * PRECONDITION_FAILED (unknown delivery tag). So acks go to `source`, and not at all once it has
 * closed: the broker then redelivers the message (a duplicate, never a loss).
 */
export interface Delivery {
  readonly message: ConsumeMessage;
  readonly source: DeliverySource;
}

export interface DeliverySource {
  readonly channel: Channel;
  /** Bumped for every channel the consumer sets up (for logs). */
  readonly generation: number;
  open: boolean;
  consumerTag: string | undefined;
  /**
   * Delivery tags received and not yet acked or nacked, in delivery order (a Set iterates in
   * insertion order, and the broker numbers deliveries upwards): at most the prefetch.
   */
  readonly unsettled: Set<number>;
  /** Acks decided and not yet sent (see Consumer.ack). */
  acks: ConsumeMessage[];
  flushScheduled: boolean;
}

export interface ConsumerOptions {
  connection: AmqpConnectionManager;
  queue: string;
  /** Messages in flight at most (basic.qos per consumer). */
  prefetch: number;
  onDelivery: (delivery: Delivery) => void;
  logger: Logger;
  /** First delay before a channel the broker closed is reopened (the holder's retryMs). */
  retryMs?: number;
}

/**
 * Consumes one queue with manual acks on a channel of its own (a ChannelHolder: a channel the
 * broker closes is reopened alone, the connection and other channels stay). The subscription is
 * made on every new channel, and re-made after a broker-sent cancel (queue deleted or moved) once a
 * passive check on a throwaway channel finds the queue again; consuming a missing queue would close
 * the channel the deliveries live on.
 */
export class Consumer {
  private readonly holder: ChannelHolder<Channel>;
  private readonly log: Logger;
  private source: DeliverySource | undefined;
  private readonly sources = new WeakSet<DeliverySource>();
  private generation = 0;
  private cancelled = false;
  /** Wakes the resubscribe loop's backoff sleep on cancel, so shutdown does not wait it out. */
  private readonly stopping = new AbortController();
  private readonly subscribed: Promise<void>;
  private markSubscribed: () => void = () => undefined;

  constructor(private readonly options: ConsumerOptions) {
    this.log = options.logger.child({ component: 'consumer', queue: options.queue });
    this.subscribed = new Promise((resolve) => {
      this.markSubscribed = resolve;
    });
    this.holder = new ChannelHolder<Channel>({
      connection: options.connection,
      name: `consume ${options.queue}`,
      create: (model) => model.createChannel(),
      setup: (ch) => this.setup(ch),
      logger: options.logger,
      ...(options.retryMs !== undefined ? { retryMs: options.retryMs } : {}),
    });
  }

  /** Opens the channel (now, or once the connection is up) and subscribes. */
  start(): void {
    this.holder.start();
  }

  /** Resolves when the first subscription is in place. */
  waitUntilConsuming(): Promise<void> {
    return this.subscribed;
  }

  /** True when this consumer delivered `delivery` (on any of its channels). */
  owns(delivery: Delivery): boolean {
    return this.sources.has(delivery.source);
  }

  /** True while a channel is subscribed. */
  get consuming(): boolean {
    const s = this.source;
    return s?.open === true && s.consumerTag !== undefined;
  }

  private async setup(channel: Channel): Promise<void> {
    this.generation += 1;
    const source: DeliverySource = {
      channel,
      generation: this.generation,
      open: true,
      consumerTag: undefined,
      unsettled: new Set(),
      acks: [],
      flushScheduled: false,
    };
    this.source = source;
    this.sources.add(source);
    channel.on('close', () => {
      source.open = false;
    });
    // Per consumer (global false): this is the in-flight bound, i.e. the concurrency.
    await channel.prefetch(this.options.prefetch, false);
    // Not awaited: a missing queue must not hold up the holder.
    this.subscribe(source).catch((err: unknown) => this.log.error({ err }, 'subscribing failed'));
  }

  private async subscribe(source: DeliverySource): Promise<void> {
    let delayMs = 250;
    let waiting = false;
    while (!this.cancelled && source.open && this.source === source) {
      try {
        const connection = this.options.connection.connection;
        if (!connection) throw new Error('not connected');
        if (!(await exists(connection, (ch) => ch.checkQueue(this.options.queue)))) throw new Error('queue not found');
        if (this.cancelled || !source.open) return;
        const { consumerTag } = await source.channel.consume(this.options.queue, (msg) => this.onMessage(source, msg), { noAck: false });
        source.consumerTag = consumerTag;
        this.log.info({ generation: source.generation, prefetch: this.options.prefetch }, waiting ? 'consumer resumed' : 'consuming');
        this.markSubscribed();
        return;
      } catch (err) {
        if (!waiting) this.log.warn({ err }, 'cannot consume yet; retrying');
        waiting = true;
        // Rejects (AbortError) on cancel; the loop condition then ends the loop.
        await sleep(delayMs, undefined, { signal: this.stopping.signal }).catch(() => undefined);
        delayMs = Math.min(delayMs * 2, 10_000);
      }
    }
  }

  private onMessage(source: DeliverySource, msg: ConsumeMessage | null): void {
    if (msg === null) {
      // basic.cancel from the broker: the queue was deleted, or moved off a failed node.
      source.consumerTag = undefined;
      if (this.cancelled) return;
      this.log.warn({ generation: source.generation }, 'broker cancelled the consumer; resubscribing');
      this.subscribe(source).catch((err: unknown) => this.log.error({ err }, 'subscribing failed'));
      return;
    }
    source.unsettled.add(msg.fields.deliveryTag);
    this.options.onDelivery({ message: msg, source });
  }

  /**
   * Acks on the delivering channel; false (and no ack) when that channel is gone.
   *
   * Acks are sent together once the current I/O turn is over (setImmediate): those below every
   * still-unsettled delivery as one `multiple` ack, the others one by one. Each basic.ack costs the
   * broker a quorum-queue command, so a no-op worker spent the broker's CPU on them (the broker
   * shares the machine): this is the same set of acks, sooner or later by under a millisecond. An
   * ack the closing channel swallows before it is sent means a redelivery, as any lost ack does.
   */
  ack(delivery: Delivery): boolean {
    const { source, message } = delivery;
    if (!this.claim(delivery)) return false;
    source.acks.push(message);
    if (!source.flushScheduled) {
      source.flushScheduled = true;
      setImmediate(() => this.flushAcks(source));
    }
    return true;
  }

  /**
   * Nacks on the delivering channel (requeue by default), at once; false when that channel is
   * gone. For requeues that are not the message's fault (a shutdown): RabbitMQ 4.3 does not count
   * basic.nack toward the delivery limit.
   */
  nack(delivery: Delivery, requeue = true): boolean {
    if (!this.claim(delivery)) return false;
    try {
      delivery.source.channel.nack(delivery.message, false, requeue);
      return true;
    } catch (err) {
      // amqplib throws IllegalOperationError when the channel closed in the meantime.
      this.log.debug({ err }, 'nack on a closed channel skipped');
      return false;
    }
  }

  /**
   * Rejects on the delivering channel (basic.reject), at once; false when that channel is gone.
   * Used to requeue a message whose own processing failed: RabbitMQ 4.3 counts basic.reject
   * toward a quorum queue's delivery limit and basic.nack not, so a message that keeps failing
   * this way still ends dead instead of looping. (3.10 to 4.2 count both.)
   */
  reject(delivery: Delivery, requeue = true): boolean {
    if (!this.claim(delivery)) return false;
    try {
      delivery.source.channel.reject(delivery.message, requeue);
      return true;
    } catch (err) {
      this.log.debug({ err }, 'reject on a closed channel skipped');
      return false;
    }
  }

  /** Takes the delivery out of the unsettled set; false if its channel is gone or it was settled. */
  private claim(delivery: Delivery): boolean {
    const { source } = delivery;
    // A tag settled twice is as fatal to the channel as an unknown one (406 PRECONDITION_FAILED).
    if (!source.open || source !== this.source) return false;
    return source.unsettled.delete(delivery.message.fields.deliveryTag);
  }

  private flushAcks(source: DeliverySource): void {
    source.flushScheduled = false;
    const acks = source.acks;
    if (acks.length === 0) return;
    source.acks = [];
    if (!source.open) {
      this.log.debug({ dropped: acks.length, generation: source.generation }, 'channel closed before its acks were sent; the broker redelivers');
      return;
    }
    // Every tag below the lowest unsettled one is settled: one multiple ack covers those in this
    // batch (the others were sent already), up to the highest of them.
    const lowest = source.unsettled.values().next();
    const floor = lowest.done ? Number.POSITIVE_INFINITY : lowest.value;
    let top: ConsumeMessage | undefined;
    try {
      for (const m of acks) {
        const tag = m.fields.deliveryTag;
        if (tag < floor) {
          if (!top || tag > top.fields.deliveryTag) top = m;
        } else source.channel.ack(m);
      }
      if (top) source.channel.ack(top, true);
    } catch (err) {
      this.log.debug({ err }, 'acks on a closed channel skipped; the broker redelivers');
    }
  }

  /** Stops deliveries (basic.cancel); messages already delivered stay ackable. */
  async cancel(): Promise<void> {
    this.cancelled = true;
    this.stopping.abort();
    const source = this.source;
    if (!source?.open || !source.consumerTag) return;
    // A channel that closed meanwhile has no consumer left to cancel; a silent node never answers.
    await bounded(source.channel.cancel(source.consumerTag), 'consumer cancel', this.log);
  }

  /** Sends the acks decided so far, waits until the broker has read them, and closes the channel. */
  async close(): Promise<void> {
    this.cancelled = true;
    this.stopping.abort();
    const source = this.source;
    if (source) {
      this.flushAcks(source);
      if (source.open) await ackBarrier(source.channel, this.options.queue, this.log);
    }
    await this.holder.close();
  }
}
