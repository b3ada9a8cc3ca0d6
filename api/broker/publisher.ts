import type { ConfirmChannel, Message } from 'amqplib';
import { type Logger, type PublishMetrics, PublishNotConfirmedError, type PublishOutcome, type RequestMessage, startProducerSpan } from '../../core/index.ts';

const DEFAULT_MAX_IN_FLIGHT_BYTES = 64 * 1024 * 1024;

/** What the HTTP layer needs: publish one request, resolved only once the broker confirmed it. */
export interface RequestPublisher {
  publish(message: RequestMessage, options?: { headers?: Record<string, string> }): Promise<void>;
}

/** Where the publisher gets its channel; a ChannelSlot in production, a fake in unit tests. */
export interface ConfirmChannelSource {
  readonly current: ConfirmChannel | undefined;
  readonly blocked: boolean;
  /** Told when the broker blocks the connection; optional (fakes in unit tests leave it out). */
  addBlockedListener?(listener: () => void): void;
}

export interface ConfirmPublisherOptions {
  channels: ConfirmChannelSource;
  route: { exchange: string; routingKey: string };
  timeoutMs: number;
  /** Unconfirmed publishes allowed at once; past it, publish fails at once (window-full). */
  maxInFlight: number;
  /** The same bound in body bytes (default 64 MiB): a thousand 1 MB bodies are too much memory. */
  maxInFlightBytes?: number;
  logger: Logger;
  metrics?: PublishMetrics;
}

/**
 * Publishes requests on a confirm channel with a bounded window and a deadline, and never
 * buffers: with no channel, a blocked connection or a full window, it fails at once so the API
 * answers 503 instead of queueing in memory.
 *
 * A publish that timed out may still be confirmed later (the broker was only slow). The client
 * was told 503 and retries under a new requestId (or the same one with an Idempotency-Key): at
 * worst the work runs twice, and the store keeps one row per requestId.
 */
export class ConfirmPublisher implements RequestPublisher {
  private inFlight = 0;
  private inFlightBytes = 0;
  private readonly opts: ConfirmPublisherOptions;
  private readonly log: Logger;
  /** Message ids the broker returned as unroutable, per channel (a return precedes its ack). */
  private readonly returned = new WeakMap<ConfirmChannel, Set<string>>();
  /** Publishes awaiting their confirm, by the function that settles each. */
  private readonly pending = new Set<(err: PublishNotConfirmedError) => void>();

  constructor(options: ConfirmPublisherOptions) {
    this.opts = options;
    this.log = options.logger.child({ component: 'publisher' });
    options.channels.addBlockedListener?.(() => this.failPending());
  }

  /**
   * RabbitMQ blocks a connection under a resource alarm only once it publishes, and holds that
   * publish, unconfirmed, until the alarm clears: without this, the first requests after an alarm
   * would wait for the publish timeout. They fail now (503 BROKER_BLOCKED); like a timed-out
   * publish, such a message may still reach the queue once the alarm clears.
   */
  private failPending(): void {
    if (this.pending.size === 0) return;
    const err = new PublishNotConfirmedError('blocked', 'the broker blocked the connection before confirming the publish');
    for (const fail of [...this.pending]) fail(err);
  }

  /** Publishes sent and not yet confirmed, nacked or failed by a channel close. */
  get unconfirmed(): number {
    return this.inFlight;
  }

  publish(message: RequestMessage, options?: { headers?: Record<string, string> }): Promise<void> {
    const { channels, route, timeoutMs, maxInFlight } = this.opts;
    const ch = channels.current;
    if (!ch) return Promise.reject(new PublishNotConfirmedError('closed', 'no broker connection'));
    if (channels.blocked) return Promise.reject(new PublishNotConfirmedError('blocked', 'the broker blocked the connection'));
    if (this.inFlight >= maxInFlight) return Promise.reject(new PublishNotConfirmedError('window-full', `${maxInFlight} publishes await confirmation`));
    const content = Buffer.from(JSON.stringify({ requestId: message.requestId, data: message.data, acceptedAt: Date.now() }));
    const size = content.length;
    if (this.inFlight > 0 && this.inFlightBytes + size > (this.opts.maxInFlightBytes ?? DEFAULT_MAX_IN_FLIGHT_BYTES)) {
      return Promise.reject(new PublishNotConfirmedError('window-full', 'too many bytes await confirmation'));
    }
    const returned = this.returnedSet(ch);
    const { requestId } = message;
    const metrics = this.opts.metrics;
    const startedAt = metrics?.published() ?? 0;
    const span = startProducerSpan(route.exchange, route.routingKey, requestId, options?.headers);
    const headers = span?.headers ?? options?.headers;

    return new Promise<void>((resolve, reject) => {
      let settled = false;
      const settle = (err?: PublishNotConfirmedError) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        this.pending.delete(settle);
        metrics?.settled(err ? (err.reason as PublishOutcome) : 'ack', startedAt);
        span?.end(err);
        if (err) reject(err);
        else resolve();
      };
      const timer = setTimeout(() => settle(new PublishNotConfirmedError('timeout', `no confirm within ${timeoutMs} ms`)), timeoutMs);
      this.pending.add(settle);
      this.inFlight += 1;
      this.inFlightBytes += size;
      const onConfirm = (err: unknown) => {
        this.inFlight -= 1;
        this.inFlightBytes -= size;
        const late = settled;
        if (err) {
          // amqplib fails pending confirms with the same kind of Error for a nack and for a
          // channel close, and runs those callbacks inside the channel's 'close' handlers; by
          // the next microtask our slot has dropped a closed channel, which tells them apart.
          queueMicrotask(() => {
            const reason = channels.current === ch ? 'nack' : 'closed';
            settle(
              new PublishNotConfirmedError(reason, reason === 'nack' ? 'the broker nacked the publish' : 'the channel closed before the confirm', {
                cause: err,
              }),
            );
          });
          return;
        }
        if (returned.delete(requestId)) {
          settle(new PublishNotConfirmedError('unroutable', 'the message was unroutable (no queue bound for its routing key)'));
          return;
        }
        if (late) this.log.warn({ requestId }, 'publish confirmed after its timeout; a retry may duplicate it');
        settle();
      };
      try {
        ch.publish(
          route.exchange,
          route.routingKey,
          content,
          {
            persistent: true,
            mandatory: true,
            messageId: requestId,
            correlationId: requestId,
            contentType: 'application/json',
            timestamp: Math.floor(Date.now() / 1000),
            appId: 'warren-api',
            ...(headers ? { headers } : {}),
          },
          onConfirm,
        );
      } catch (err) {
        // amqplib throws synchronously when the channel is already closed.
        this.inFlight -= 1;
        this.inFlightBytes -= size;
        settle(new PublishNotConfirmedError('closed', 'the channel is closed', { cause: err }));
      }
    });
  }

  private returnedSet(ch: ConfirmChannel): Set<string> {
    let set = this.returned.get(ch);
    if (!set) {
      const s = new Set<string>();
      set = s;
      this.returned.set(ch, s);
      ch.on('return', (msg: Message) => {
        const id = msg.properties.messageId;
        if (typeof id === 'string') s.add(id);
      });
    }
    return set;
  }
}
