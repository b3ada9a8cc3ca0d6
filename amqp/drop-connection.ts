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
