import type { ChannelWrapper } from 'amqp-connection-manager';
import type { Channel, ConfirmChannel } from 'amqplib';
import { type AmqpConnectionManager, type Logger, type PublishMetrics, PublishNotConfirmedError, type PublishOutcome } from '../core/index.ts';
import { ChannelRecovery } from './channel-recovery.ts';
import type { Envelope } from './envelopes.ts';

const routeKey = (exchange: string, routingKey: string) => `${exchange}\n${routingKey}`;

/**
 * Publishes with publisher confirms. `publish` resolves only when the broker has confirmed the
 * message (a ChannelWrapper with confirm: true resolves on basic.ack and rejects on basic.nack),
 * which is the moment the consumed message it replaces may be acked.
 *
 * Its own channel, apart from the consumer's: a publish fault that closes this channel does not
 * void the delivery tags of the messages in flight.
 */
export class Publisher {
  private readonly wrapper: ChannelWrapper;
  private readonly recovery: ChannelRecovery;
  private readonly log: Logger;
  private current: Channel | undefined;
  private closing = false;
  /**
   * Routes (exchange + routing key) the broker returned messages on, counted: basic.return comes
   * before the basic.ack of the same publish, and whether a message routes depends only on its
   * route here (direct and fanout exchanges), so a return is matched to a publish by its route.
   */
  private readonly returned = new Map<string, number>();

  constructor(
    manager: AmqpConnectionManager,
    logger: Logger,
    private readonly timeoutMs = 30_000,
    private readonly metrics?: PublishMetrics,
  ) {
    this.log = logger.child({ component: 'publisher' });
    this.recovery = new ChannelRecovery(manager, logger, 'publish');
    this.wrapper = manager.createChannel({
      name: 'warren-worker-publish',
      confirm: true,
      setup: (channel: Channel) => this.setup(channel),
    });
    // Without a listener an 'error' event would throw inside the wrapper's reconnect code.
    this.wrapper.on('error', (err: Error) => this.log.warn({ err }, 'publish channel setup failed'));
  }

  private async setup(channel: Channel): Promise<void> {
    this.current = channel;
    channel.on('error', (err: Error) => this.log.warn({ err }, 'publish channel error'));
    channel.on('return', (msg: { fields: { exchange: string; routingKey: string } }) => {
      const route = routeKey(msg.fields.exchange, msg.fields.routingKey);
      this.returned.set(route, (this.returned.get(route) ?? 0) + 1);
    });
    channel.on('close', () => {
      if (!this.closing) this.recovery.channelClosed(channel, () => this.current === channel);
    });
  }

  /**
   * Resolves once the broker confirmed the message; rejects with PublishNotConfirmedError. It
   * publishes on the wrapper's current channel directly: the wrapper's own publish queues each
   * message behind a promise and a timer and pauses whenever the socket buffer is above its
   * high-water mark, which halved a worker's throughput (measured); without a channel it fails at
   * once, and the delivery it would replace is redelivered.
   */
  async publish(envelope: Envelope): Promise<void> {
    const startedAt = this.metrics?.published() ?? 0;
    try {
      await this.confirmed(envelope);
    } catch (err) {
      this.metrics?.settled(err instanceof PublishNotConfirmedError ? (err.reason as PublishOutcome) : 'closed', startedAt);
      throw err;
    }
    this.metrics?.settled('ack', startedAt);
  }

  private async confirmed(envelope: Envelope): Promise<void> {
    const ch = this.current as ConfirmChannel | undefined;
    if (!ch || this.closing) throw new PublishNotConfirmedError('closed', 'no open publish channel (reconnecting)');
    // Mandatory: a copy that no queue takes (a binding deleted by hand) is confirmed by the broker
    // all the same, so without the return it would be acked away and lost.
    const options = { ...envelope.options, mandatory: true };
    await new Promise<void>((resolve, reject) => {
      let settled = false;
      const timer = setTimeout(() => {
        settled = true;
        reject(new PublishNotConfirmedError('timeout', `publish to exchange "${envelope.exchange}" not confirmed within ${this.timeoutMs} ms`));
      }, this.timeoutMs);
      try {
        ch.publish(envelope.exchange, envelope.routingKey, envelope.content, options, (err: unknown) => {
          if (settled) return;
          settled = true;
          clearTimeout(timer);
          // amqplib calls back with an error for a basic.nack and for a channel that closed first.
          if (err)
            reject(new PublishNotConfirmedError(this.closing ? 'closed' : 'nack', `publish to exchange "${envelope.exchange}" not confirmed`, { cause: err }));
          else resolve();
        });
      } catch (err) {
        settled = true;
        clearTimeout(timer);
        reject(new PublishNotConfirmedError('closed', 'publish channel closed', { cause: err }));
      }
    });
    const route = routeKey(envelope.exchange, envelope.routingKey);
    const returns = this.returned.get(route);
    if (returns) {
      if (returns > 1) this.returned.set(route, returns - 1);
      else this.returned.delete(route);
      throw new PublishNotConfirmedError(
        'unroutable',
        `no queue is bound to exchange "${envelope.exchange}" for routing key "${envelope.routingKey}" (run npm run topology:apply)`,
      );
    }
  }

  /** Waits until the first channel is open (publishes queue inside the wrapper until then). */
  waitForConnect(): Promise<void> {
    return this.wrapper.waitForConnect();
  }

  /** Rejects whatever is still unconfirmed; their deliveries are not acked, so nothing is lost. */
  async close(): Promise<void> {
    this.closing = true;
    this.recovery.dispose();
    try {
      await this.wrapper.close();
    } catch (err) {
      this.log.debug({ err }, 'publish channel already closed');
    }
  }
}
