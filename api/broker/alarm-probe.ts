import type { Channel } from 'amqplib';
import type { AmqpConnectionManager, Logger } from '../../core/index.ts';

/** Routed nowhere: the default exchange drops it (no queue has this name, and it is not mandatory). */
const PROBE_ROUTING_KEY = 'warren.alarm-probe.unrouted';

/**
 * Finds out that the broker has a resource alarm before a request does. RabbitMQ (3.10 measured)
 * sends `connection.blocked` to a connection only once it publishes under the alarm, so an API
 * that has not published since the alarm went up would still call itself ready. This probe owns a
 * connection of its own and publishes an empty, unroutable, transient message on it every
 * `everyMs` while unblocked; when the broker blocks it, `blocked` turns true until the broker
 * unblocks it. Blocking this connection costs the API nothing: its publishes go on another one.
 */
export class AlarmProbe {
  private blockedFlag = false;
  private channel: Channel | undefined;
  private timer: NodeJS.Timeout | undefined;
  private readonly log: Logger;
  private readonly onConnect = () => void this.open();
  private readonly onDisconnect = () => {
    this.channel = undefined;
    this.blockedFlag = false;
  };
  private readonly onBlocked = ({ reason }: { reason?: string }) => {
    if (!this.blockedFlag) this.log.warn({ reason }, 'broker resource alarm: publishes are blocked');
    this.blockedFlag = true;
  };
  private readonly onUnblocked = () => {
    if (this.blockedFlag) this.log.info('broker resource alarm cleared');
    this.blockedFlag = false;
  };

  constructor(
    private readonly connection: AmqpConnectionManager,
    logger: Logger,
    private readonly everyMs = 2000,
  ) {
    this.log = logger.child({ component: 'alarm-probe' });
  }

  /** True while the broker blocks the probe's connection (a memory or disk alarm). */
  get blocked(): boolean {
    return this.blockedFlag;
  }

  start(): void {
    const c = this.connection;
    c.on('connect', this.onConnect);
    c.on('disconnect', this.onDisconnect);
    c.on('blocked', this.onBlocked);
    c.on('unblocked', this.onUnblocked);
    if (c.connection) void this.open();
    this.timer = setInterval(() => this.probe(), this.everyMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    const c = this.connection;
    c.removeListener('connect', this.onConnect);
    c.removeListener('disconnect', this.onDisconnect);
    c.removeListener('blocked', this.onBlocked);
    c.removeListener('unblocked', this.onUnblocked);
    this.channel = undefined;
  }

  private async open(): Promise<void> {
    const model = this.connection.connection;
    if (!model) return;
    try {
      const ch = await model.createChannel();
      ch.on('error', (err: Error) => this.log.debug({ err }, 'probe channel error'));
      ch.on('close', () => {
        if (this.channel === ch) this.channel = undefined;
      });
      this.channel = ch;
    } catch (err) {
      this.log.debug({ err }, 'probe channel not opened; next connect tries again');
    }
  }

  private probe(): void {
    // While blocked, nothing more: the broker reads nothing from this connection until it unblocks.
    if (this.blockedFlag) return;
    if (!this.channel) {
      void this.open();
      return;
    }
    try {
      this.channel.publish('', PROBE_ROUTING_KEY, Buffer.alloc(0), { persistent: false });
    } catch (err) {
      this.log.debug({ err }, 'probe publish skipped');
      this.channel = undefined;
    }
  }
}
