import type { Channel } from 'amqplib';
import type { AmqpConnectionManager, Logger } from '../core/index.ts';

/**
 * Brings a channel back after the broker closed it while the connection stayed up.
 *
 * amqp-connection-manager recreates a ChannelWrapper's channel only when the connection
 * reconnects; a channel closed by a channel-level error (404 on a passive declare or a publish to
 * a missing exchange, 406 on an unknown delivery tag) stays dead and every publish or consume on
 * the wrapper waits forever.
 * https://github.com/jwalton/node-amqp-connection-manager/issues/347
 * The way out with its public API is `reconnect()`: a new connection runs every setup again.
 * It is done after a delay that doubles while closes keep coming, so a persistent fault (a
 * deleted exchange) does not turn into a reconnect storm.
 */
export class ChannelRecovery {
  private readonly log: Logger;
  private timer: NodeJS.Timeout | undefined;
  private disposed = false;
  private recentForced = 0;
  private lastForcedAt = 0;

  constructor(
    private readonly manager: AmqpConnectionManager,
    logger: Logger,
    channelName: string,
    private readonly baseDelayMs = 1000,
    private readonly maxDelayMs = 30_000,
  ) {
    this.log = logger.child({ component: 'channel-recovery', channel: channelName });
  }

  /**
   * Call from the channel's 'close' event. `stillCurrent` says whether the wrapper still holds this
   * channel (a reconnect in the meantime has already replaced it).
   */
  channelClosed(channel: Channel, stillCurrent: () => boolean): void {
    if (this.disposed || this.timer) return;
    if (Date.now() - this.lastForcedAt > 60_000) this.recentForced = 0;
    const delayMs = Math.min(this.baseDelayMs * 2 ** this.recentForced, this.maxDelayMs);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      // The channel belonged to a connection that is gone: the manager reconnects on its own and
      // the wrapper gets a fresh channel then. Only a channel closed on a live connection is stuck.
      if (this.disposed || !stillCurrent() || this.manager.connection?.connection !== channel.connection) return;
      this.recentForced += 1;
      this.lastForcedAt = Date.now();
      this.log.warn({ delayMs }, 'channel closed by the broker; reconnecting to recreate it');
      try {
        this.manager.reconnect();
      } catch (err) {
        // reconnect() throws only after close(): the process is shutting down.
        this.log.debug({ err }, 'reconnect refused; connection closing');
      }
    }, delayMs);
    this.timer.unref();
  }

  dispose(): void {
    this.disposed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }
}
