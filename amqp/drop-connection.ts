import type { ChannelModel } from 'amqplib';
import type { AmqpConnectionManager, Logger } from '../core/index.ts';

/** What amqplib's ChannelModel keeps of its socket (Connection.stream, a net.Socket or TLS socket). */
type WithSocket = ChannelModel & { connection?: { stream?: { destroy(err?: Error): void } } };

/**
 * Drops the manager's current connection at once by destroying its socket; the manager then
 * reconnects to the next URL of its list. A clean close would wait for the broker's CloseOk, which a
 * node cut off without a TCP reset never sends (amqp-connection-manager's reconnect() awaits it), and
 * heartbeats would notice only after two missed intervals.
 */
export function dropConnection(manager: AmqpConnectionManager, reason: string, logger: Logger): void {
  const socket = (manager.connection as WithSocket | undefined)?.connection?.stream;
  if (!socket) return;
  logger.warn({ reason }, 'dropping the broker connection');
  socket.destroy(new Error(`connection dropped: ${reason}`));
}

export interface DropIfSilentOptions {
  /** How long a channel open may take before the link counts as silent (default 2000). */
  probeMs?: number;
  /** Runs just before the drop, with nothing awaited in between (ConfirmPublisher's giveUp). */
  beforeDrop?: () => void;
  /**
   * Runs when the broker answers the probe (the connection is kept): the owner opens a new
   * channel for the next publishes (ChannelHolder.renew). A channel that started publishing to a
   * quorum queue while its leader was being replaced can wait for the old leader until that node
   * comes back (seen in pause-node: 10 s), while a channel opened later finds the new leader.
   */
  onAnswered?: () => void;
}

/**
 * Drops the connection only if the broker does not answer a channel open within `probeMs`. No
 * confirm for a while is what a cut-off node looks like, and also what a quorum queue
 * electing a new leader looks like: the node still answers there, and dropping a healthy
 * connection would only send the publisher round the URL list, perhaps to the cut-off node.
 */
export async function dropIfSilent(manager: AmqpConnectionManager, reason: string, logger: Logger, options: DropIfSilentOptions = {}): Promise<void> {
  const { probeMs = 2000, beforeDrop, onAnswered } = options;
  const model = manager.connection;
  if (!model) return;
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), probeMs);
  });
  const probe = model.createChannel().then(
    async (ch) => {
      ch.on('error', () => undefined);
      await ch.close().catch(() => undefined);
      return true;
    },
    () => false,
  );
  const answered = await Promise.race([probe, late]);
  clearTimeout(timer);
  if (answered) {
    logger.info({ reason }, 'the broker still answers on this connection (its confirms are late, not lost); keeping it, next publishes on a new channel');
    onAnswered?.();
    return;
  }
  // A reconnect during the probe already replaced the silent connection: leave the new one be.
  if (manager.connection !== model) return;
  beforeDrop?.();
  dropConnection(manager, reason, logger);
}
