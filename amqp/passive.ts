import type { Channel, ChannelModel } from 'amqplib';

/**
 * Runs a passive declare on a throwaway channel: a 404 answer closes the channel it was asked on,
 * so it must not be a channel anything else depends on. Resolves false on 404; other errors throw.
 */
export async function exists(connection: ChannelModel, check: (ch: Channel) => Promise<unknown>): Promise<boolean> {
  const ch = await connection.createChannel();
  let closed = false;
  ch.on('close', () => {
    closed = true;
  });
  // The 404 arrives both as this 'error' event and as the rejected promise below, where it is
  // handled; without a listener amqplib would throw it out of its frame handler.
  ch.on('error', () => undefined);
  try {
    await check(ch);
    return true;
  } catch (err) {
    if ((err as { code?: unknown }).code === 404) return false;
    throw err;
  } finally {
    if (!closed) await ch.close().catch(() => undefined);
  }
}
