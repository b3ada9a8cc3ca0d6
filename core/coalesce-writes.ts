import type { Writable } from 'node:stream';

/**
 * Makes the frames amqplib writes in one turn of the event loop leave in one write. amqplib
 * writes each frame to the socket by itself (its muxer calls `write` per frame): a producer's
 * publishes, a worker's acks and results, each a write system call and, with TCP_NODELAY, a TCP
 * segment of its own, which the broker then reads one by one. Here the socket is corked at the
 * first write of a turn and uncorked on the next tick (Node's documented `cork`/`uncork` pattern),
 * so what was written meanwhile goes out as one `writev`: measured in the peers bench, the
 * producer's write calls fell from 1.0 to 0.03 a job. Nothing waits longer than the current turn.
 * Returns false (and changes nothing) for a connection whose socket it cannot find.
 */
export function coalesceWrites(connection: unknown): boolean {
  const stream = socketOf(connection);
  if (!stream) return false;
  const write = stream.write;
  let corked = false;
  const uncork = () => {
    corked = false;
    stream.uncork();
  };
  stream.write = function coalescedWrite(this: Writable, ...args: unknown[]): boolean {
    if (!corked && !stream.destroyed) {
      corked = true;
      stream.cork();
      process.nextTick(uncork);
    }
    return (write as (...a: unknown[]) => boolean).apply(this, args);
  } as Writable['write'];
  return true;
}

/** amqplib's ChannelModel (what amqp-connection-manager's `connect` event carries) -> its socket. */
function socketOf(connection: unknown): Writable | undefined {
  const stream = (connection as { connection?: { stream?: unknown } } | undefined)?.connection?.stream;
  if (!stream || typeof stream !== 'object') return undefined;
  const s = stream as Writable;
  return typeof s.write === 'function' && typeof s.cork === 'function' && typeof s.uncork === 'function' ? s : undefined;
}
