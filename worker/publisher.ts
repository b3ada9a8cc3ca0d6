import type { ChannelWrapper } from 'amqp-connection-manager';
import type { Channel, ConfirmChannel } from 'amqplib';
import { type AmqpConnectionManager, type Logger, type PublishMetrics, PublishNotConfirmedError, type PublishOutcome } from '../core/index.ts';
import { ChannelRecovery } from './channel-recovery.ts';
import type { Envelope } from './envelopes.ts';

const routeKey = (exchange: string, routingKey: string) => `${exchange}\n${routingKey}`;

/**
 * Publishes with publisher confirms. `publish` resolves only when the broker has confirmed the
 * message (basic.ack; a basic.nack, a return, a closed channel or the deadline reject it), which
 * is the moment the consumed message it replaces may be acked.
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
  /** Publishes awaiting their confirm, in the order they were sent. */
  private readonly pending = new Map<number, { deadline: number; fail: (err: PublishNotConfirmedError) => void; exchange: string }>();
  private sequence = 0;
  private sweeper: NodeJS.Timeout | undefined;

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
  publish(envelope: Envelope): Promise<void> {
    const metrics = this.metrics;
    const startedAt = metrics ? metrics.published() : 0;
    const ch = this.current as ConfirmChannel | undefined;
    if (!ch || this.closing) return this.failed(new PublishNotConfirmedError('closed', 'no open publish channel (reconnecting)'), startedAt);
    return new Promise<void>((resolve, reject) => {
      const id = ++this.sequence;
      const fail = (err: PublishNotConfirmedError) => {
        if (!this.pending.delete(id)) return;
        metrics?.settled(err.reason as PublishOutcome, startedAt);
        reject(err);
      };
      this.pending.set(id, { deadline: performance.now() + this.timeoutMs, fail, exchange: envelope.exchange });
      this.armDeadlines();
      try {
        // Mandatory (set by the envelope builders): a copy that no queue takes (a binding deleted
        // by hand) is confirmed by the broker all the same; without the return it would be acked
        // away and lost.
        ch.publish(envelope.exchange, envelope.routingKey, envelope.content, envelope.options, (err: unknown) => {
          // amqplib calls back with an error for a basic.nack and for a channel that closed first.
          if (err) {
            fail(new PublishNotConfirmedError(this.closing ? 'closed' : 'nack', `publish to exchange "${envelope.exchange}" not confirmed`, { cause: err }));
            return;
          }
          if (this.returned.size > 0 && this.takeReturn(envelope)) {
            fail(
              new PublishNotConfirmedError(
                'unroutable',
                `no queue is bound to exchange "${envelope.exchange}" for routing key "${envelope.routingKey}" (run npm run topology:apply)`,
              ),
            );
            return;
          }
          if (!this.pending.delete(id)) return;
          metrics?.settled('ack', startedAt);
          resolve();
        });
      } catch (err) {
        fail(new PublishNotConfirmedError('closed', 'publish channel closed', { cause: err }));
      }
    });
  }

  private failed(err: PublishNotConfirmedError, startedAt: number): Promise<never> {
    this.metrics?.settled(err.reason as PublishOutcome, startedAt);
    return Promise.reject(err);
  }

  /** True (and one return consumed) when the broker returned a message on this route. */
  private takeReturn(envelope: Envelope): boolean {
    const route = routeKey(envelope.exchange, envelope.routingKey);
    const returns = this.returned.get(route);
    if (!returns) return false;
    if (returns > 1) this.returned.set(route, returns - 1);
    else this.returned.delete(route);
    return true;
  }

  /**
   * One timer for every publish's deadline rather than one per publish (a timer per message was
   * a measurable share of a worker's CPU): pending publishes are in start order, so each sweep
   * stops at the first one not yet due. Deadlines are kept to within a tenth of the timeout.
   */
  private armDeadlines(): void {
    if (this.sweeper) return;
    const every = Math.max(20, Math.min(1000, Math.floor(this.timeoutMs / 10)));
    this.sweeper = setInterval(() => {
      const now = performance.now();
      for (const [, p] of this.pending) {
        if (p.deadline > now) break;
        p.fail(new PublishNotConfirmedError('timeout', `publish to exchange "${p.exchange}" not confirmed within ${this.timeoutMs} ms`));
      }
      if (this.pending.size === 0) {
        clearInterval(this.sweeper);
        this.sweeper = undefined;
      }
    }, every);
    this.sweeper.unref();
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
