import type { Channel } from 'amqplib';
import { ChannelHolder } from '../../amqp/index.ts';
import type { AmqpConnectionManager, Logger } from '../../core/index.ts';

/** Routed nowhere: the default exchange drops it (no queue has this name, and it is not mandatory). */
const PROBE_ROUTING_KEY = 'warren.alarm-probe.unrouted';

/**
 * Finds out that the broker has a resource alarm before a request does. RabbitMQ (3.10 measured)
 * sends `connection.blocked` to a connection only once it publishes under the alarm, so an API
 * that has not published since the alarm went up would still call itself ready. This probe owns a
 * connection of its own and publishes an empty, unroutable, transient message on it every
 * `everyMs` while unblocked; when the broker blocks it, `blocked` turns true until the broker
 * unblocks it (core's connection logs both). Blocking this connection costs the API nothing: its
 * publishes go on another one.
 */
export class AlarmProbe {
  private readonly slot: ChannelHolder<Channel>;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    connection: AmqpConnectionManager,
    logger: Logger,
    private readonly everyMs = 2000,
  ) {
    this.slot = new ChannelHolder<Channel>({ connection, name: 'alarm-probe', create: (m) => m.createChannel(), logger });
  }

  /** True while the broker blocks the probe's connection (a memory or disk alarm). */
  get blocked(): boolean {
    return this.slot.blocked;
  }

  start(): void {
    this.slot.start();
    this.timer = setInterval(() => this.probe(), this.everyMs);
    this.timer.unref();
  }

  /** Not awaited: under an alarm the broker reads nothing from this connection, so a channel
   * close would wait for the alarm to clear; closing the connection ends it. */
  stop(): void {
    clearInterval(this.timer);
    void this.slot.close();
  }

  private probe(): void {
    // While blocked, nothing more: the broker reads nothing from this connection until it unblocks.
    const ch = this.slot.current;
    if (this.slot.blocked || !ch) return;
    try {
      ch.publish('', PROBE_ROUTING_KEY, Buffer.alloc(0), { persistent: false });
    } catch {
      // The channel closed under us; the slot opens another.
    }
  }
}
