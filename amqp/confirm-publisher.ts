import type { ConfirmChannel, Message, Options } from 'amqplib';
import { type Logger, type PublishMetrics, PublishNotConfirmedError, type PublishOutcome } from '../core/index.ts';

/** One message to publish: where, the body, and its AMQP properties. */
export interface Envelope {
  exchange: string;
  routingKey: string;
  content: Buffer;
  options: Options.Publish;
}

/** Where the publisher gets its channel: a ChannelHolder in production, a fake in unit tests. */
export interface ConfirmChannelSource {
  readonly current: ConfirmChannel | undefined;
  readonly blocked: boolean;
  /** Told when the broker blocks the connection; optional (fakes in unit tests leave it out). */
  addBlockedListener?(listener: () => void): void;
}

export interface ConfirmPublisherOptions {
  channels: ConfirmChannelSource;
  /** How long a publish may wait for its confirm before it fails with reason `timeout`. */
  timeoutMs: number;
  /** Unconfirmed publishes allowed at once; past it, publish fails at once (`window-full`). Default: no bound. */
  maxInFlight?: number;
  /** The same bound in body bytes (default 64 MiB when maxInFlight is set). */
  maxInFlightBytes?: number;
  /**
   * Fail at once while the broker blocks the connection, and fail what awaits a confirm when it
   * blocks (the API and producers: a caller told "blocked" can go elsewhere). A worker keeps
   * waiting instead: its message stays unacked and safe, and failing would only spin it.
   */
  failWhenBlocked?: boolean;
  logger: Logger;
  metrics?: PublishMetrics;
  /**
   * Called when publishes have waited `silentAfterMs` and the broker answered nothing at all in that
   * time (counted from its last answer, or from the first of them when it had nothing to answer):
   * the link is silent (a node cut off without a TCP reset), not just slow. The owner drops
   * the connection so the next node in the URL list takes over, instead of waiting for heartbeats.
   * It calls `giveUp` just before it drops the connection: what was published on the silent link
   * since the report (the owner may first probe the link for a while) fails as a timeout, whose
   * outcome is unknown, and not as a refusal when the drop closes the channel. The broker may
   * still read those publishes: a paused node reads its socket when it resumes. While a promise it
   * returns is pending (the owner probing the link), the silence is not reported again.
   */
  onSilent?: (giveUp: () => void) => unknown;
  /**
   * How long the broker may answer nothing at all while a publish awaits its confirm before the
   * link is reported silent (onSilent); the publishes keep waiting for their own deadlines. Default:
   * the smaller of timeoutMs and 1500.
   */
  silentAfterMs?: number;
  /**
   * Once a silence was reported and its owner kept the connection (the broker answered the probe,
   * and the next publishes went on a new channel), how long the broker may again answer nothing
   * before the next report; measured from the end of the owner's probe. Default: a third of
   * silentAfterMs. A quorum queue's new leader is found by a channel opened after its election, so
   * the shorter the step, the sooner publishing resumes after one.
   */
  renewAfterMs?: number;
  /**
   * Told how a publish ended that was already given up at its deadline: `ack` (it was enqueued
   * after all) or the reason it was not (nack, unroutable, closed: for a close, still unknown).
   */
  onLate?: (envelope: Envelope, outcome: 'ack' | PublishNotConfirmedError['reason']) => void;
}

const DEFAULT_MAX_IN_FLIGHT_BYTES = 64 * 1024 * 1024;
/** The default of silentAfterMs (at most the confirm deadline). */
const DEFAULT_SILENT_AFTER_MS = 1500;

interface Pending {
  deadline: number;
  exchange: string;
  fail: (err: PublishNotConfirmedError) => void;
}

/** A return is matched to its publish by route and message id (a return precedes its confirm). */
const returnKey = (exchange: string, routingKey: string, messageId: unknown) => `${exchange}\n${routingKey}\n${typeof messageId === 'string' ? messageId : ''}`;

/**
 * Publishes with publisher confirms: `publish` resolves only once the broker confirmed the
 * message, the moment whatever it replaces may be removed. It rejects with PublishNotConfirmedError
 * and a reason: `nack`, `closed` (no channel, or the channel closed first), `timeout`,
 * `unroutable` (a mandatory message no queue took: the broker confirms those too, so without the
 * return it would count as delivered), `blocked`, `window-full`. It never buffers: without a
 * channel it fails at once.
 *
 * The single publisher of the worker, the producer, the API and the dead-letter tools. It
 * publishes on the holder's current channel directly (a queue of its own in front of the channel
 * halved a worker's throughput, measured); one sweeping timer enforces every deadline (a timer per
 * publish was a measurable share of a worker's CPU).
 */
export class ConfirmPublisher {
  private readonly opts: ConfirmPublisherOptions;
  private readonly log: Logger;
  private readonly pending = new Map<number, Pending>();
  /** Per channel: returned messages not yet matched to their confirm, counted by returnKey. */
  private readonly returned = new WeakMap<ConfirmChannel, Map<string, number>>();
  private idleWaiters: Array<() => void> = [];
  /** When the broker last answered a publish (a confirm or a nack; a channel closing is no answer). */
  private lastAnswerAt = 0;
  private silentReportedAt = Number.NEGATIVE_INFINITY;
  /** The owner is handling the last report (onSilent's promise is pending). */
  private probing = false;
  private readonly silentAfterMs: number;
  private readonly renewAfterMs: number;
  private sequence = 0;
  /** Sent and not yet answered by the broker (a publish given up at its deadline still counts). */
  private inFlight = 0;
  private inFlightBytes = 0;
  /**
   * Since when the broker has held publishes without answering any (undefined: nothing in flight):
   * the send time of the first publish after an idle spell, else the broker's last answer while
   * others stayed in flight. A publish given up at its deadline still counts: with the window full
   * of them, nothing new is sent, and the silence must still be noticed.
   */
  private unansweredSince: number | undefined;
  private sweeper: NodeJS.Timeout | undefined;

  constructor(options: ConfirmPublisherOptions) {
    this.opts = options;
    this.log = options.logger.child({ component: 'publisher' });
    this.silentAfterMs = Math.min(options.timeoutMs, options.silentAfterMs ?? DEFAULT_SILENT_AFTER_MS);
    this.renewAfterMs = Math.min(this.silentAfterMs, options.renewAfterMs ?? Math.round(this.silentAfterMs / 3));
    if (options.failWhenBlocked)
      options.channels.addBlockedListener?.(() => this.failAll('blocked', 'the broker blocked the connection before confirming the publish'));
  }

  /**
   * Publishes the broker has not answered yet. One given up at its deadline keeps its place in the
   * window until the broker answers: the window bounds what the broker holds unconfirmed.
   */
  get unconfirmed(): number {
    return this.inFlight;
  }

  /** Publishes whose caller still waits (each ends by its deadline at the latest). */
  get awaiting(): number {
    return this.pending.size;
  }

  /** Resolves once no caller waits for a confirm (at once when none does). */
  whenIdle(): Promise<void> {
    if (this.pending.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /**
   * Why a publish would be refused at once right now (no channel, blocked, the window full), or
   * undefined: lets a caller skip work (a store row) for a request that cannot be sent.
   */
  refusal(): PublishNotConfirmedError | undefined {
    const { channels, maxInFlight } = this.opts;
    if (!channels.current) return new PublishNotConfirmedError('closed', 'no open channel to the broker (reconnecting)');
    if (this.opts.failWhenBlocked && channels.blocked) return new PublishNotConfirmedError('blocked', 'the broker blocked the connection');
    if (maxInFlight !== undefined && this.inFlight >= maxInFlight)
      return new PublishNotConfirmedError('window-full', `${maxInFlight} publishes await confirmation`);
    return undefined;
  }

  publish(envelope: Envelope): Promise<void> {
    const { channels, maxInFlight } = this.opts;
    const metrics = this.opts.metrics;
    const refused = this.refusal();
    if (refused) return Promise.reject(refused);
    // refusal() found a channel.
    const ch = channels.current as ConfirmChannel;
    const size = envelope.content.length;
    const maxBytes = this.opts.maxInFlightBytes ?? (maxInFlight === undefined ? Number.POSITIVE_INFINITY : DEFAULT_MAX_IN_FLIGHT_BYTES);
    if (this.inFlight > 0 && this.inFlightBytes + size > maxBytes) return this.refuse('window-full', 'too many bytes await confirmation');
    const returned = this.returnsOf(ch);
    const startedAt = metrics ? metrics.published() : 0;
    const id = ++this.sequence;
    return new Promise<void>((resolve, reject) => {
      let settled = false;
      const settle = (err?: PublishNotConfirmedError) => {
        if (settled) return;
        settled = true;
        this.pending.delete(id);
        if (this.pending.size === 0 && this.idleWaiters.length > 0) for (const wake of this.idleWaiters.splice(0)) wake();
        metrics?.settled(err ? (err.reason as PublishOutcome) : 'ack', startedAt);
        if (err) reject(err);
        else resolve();
      };
      const sentAt = performance.now();
      this.pending.set(id, { deadline: sentAt + this.opts.timeoutMs, exchange: envelope.exchange, fail: settle });
      this.inFlight += 1;
      this.inFlightBytes += size;
      this.unansweredSince ??= sentAt;
      this.armSweeper();
      const answered = () => {
        this.inFlight -= 1;
        this.inFlightBytes -= size;
        if (this.inFlight === 0) this.unansweredSince = undefined;
      };
      const onConfirm = (err: unknown) => {
        answered();
        const late = settled;
        if (err) {
          // amqplib fails pending confirms with the same kind of Error for a nack and for a
          // channel close, and runs those callbacks inside the channel's 'close' handlers; by the
          // next microtask the holder has dropped a closed channel, which tells them apart.
          queueMicrotask(() => {
            const reason = channels.current === ch ? 'nack' : 'closed';
            // A close is not the broker answering (a renewed channel closing after its linger
            // would end the silence that renewed it).
            if (reason === 'nack') this.brokerAnswered();
            if (late) this.opts.onLate?.(envelope, reason);
            const text = reason === 'nack' ? 'the broker nacked the publish' : 'the channel closed before the confirm';
            settle(new PublishNotConfirmedError(reason, `${text} (exchange "${envelope.exchange}")`, { cause: err }));
          });
          return;
        }
        this.brokerAnswered();
        if (returned.size > 0 && takeOne(returned, returnKey(envelope.exchange, envelope.routingKey, envelope.options.messageId))) {
          if (late) this.opts.onLate?.(envelope, 'unroutable');
          settle(
            new PublishNotConfirmedError(
              'unroutable',
              `no queue is bound to exchange "${envelope.exchange}" for routing key "${envelope.routingKey}" (run npm run topology:apply)`,
            ),
          );
          return;
        }
        if (late) {
          this.log.warn({ exchange: envelope.exchange, messageId: envelope.options.messageId }, 'publish confirmed after it was given up');
          this.opts.onLate?.(envelope, 'ack');
        }
        settle();
      };
      try {
        ch.publish(envelope.exchange, envelope.routingKey, envelope.content, envelope.options, onConfirm);
      } catch (err) {
        // amqplib throws synchronously when the channel is already closed.
        answered();
        settle(new PublishNotConfirmedError('closed', 'the channel is closed', { cause: err }));
      }
    });
  }

  /** Fails every publish awaiting its confirm (shutdown); their messages may still arrive. */
  close(): void {
    this.failAll('closed', 'the publisher was closed before the confirm');
    clearInterval(this.sweeper);
    this.sweeper = undefined;
  }

  /** Refused before anything was sent: not a publish, so not counted as one. */
  private refuse(reason: PublishNotConfirmedError['reason'], message: string): Promise<never> {
    return Promise.reject(new PublishNotConfirmedError(reason, message));
  }

  private failAll(reason: PublishNotConfirmedError['reason'], message: string): void {
    if (this.pending.size === 0) return;
    const err = new PublishNotConfirmedError(reason, message);
    for (const p of [...this.pending.values()]) p.fail(err);
  }

  private returnsOf(ch: ConfirmChannel): Map<string, number> {
    let map = this.returned.get(ch);
    if (!map) {
      const m = new Map<string, number>();
      map = m;
      this.returned.set(ch, m);
      ch.on('return', (msg: Message) => {
        const key = returnKey(msg.fields.exchange, msg.fields.routingKey, msg.properties.messageId);
        m.set(key, (m.get(key) ?? 0) + 1);
      });
    }
    return map;
  }

  /**
   * The broker answered a publish (a confirm or a nack): the silence, if any, ends; what it still
   * holds is unanswered from now on, whether or not anything is published after.
   */
  private brokerAnswered(): void {
    this.lastAnswerAt = performance.now();
    this.unansweredSince = this.inFlight > 0 ? this.lastAnswerAt : undefined;
  }

  /** Since when the broker has answered nothing while publishes wait, if `afterMs` ago or more; else undefined. */
  private silentSince(now: number, afterMs: number): number | undefined {
    const since = this.unansweredSince;
    return since !== undefined && now - since >= afterMs ? since : undefined;
  }

  /**
   * One timer for every deadline: pending publishes are in start order, so a sweep stops at the
   * first one not yet due. Deadlines hold to within a tenth of the timeout (20 ms to 1 s).
   */
  private armSweeper(): void {
    if (this.sweeper) return;
    const { timeoutMs } = this.opts;
    const every = Math.max(20, Math.min(1000, Math.floor(Math.min(timeoutMs, this.renewAfterMs) / 10)));
    this.sweeper = setInterval(() => {
      const now = performance.now();
      // A silence goes on while the broker answered nothing since its last report: then the next
      // report comes renewAfterMs after the owner's probe (a new channel, or a new connection,
      // gets that long), else silentAfterMs after the silence began.
      const gap = this.lastAnswerAt < this.silentReportedAt ? this.renewAfterMs : this.silentAfterMs;
      const silent = this.silentSince(now, gap);
      for (const p of this.pending.values()) {
        if (p.deadline > now) break;
        p.fail(new PublishNotConfirmedError('timeout', `publish to exchange "${p.exchange}" not confirmed within ${timeoutMs} ms`));
      }
      // Not while the owner probes the link.
      if (silent !== undefined && this.opts.onSilent && !this.probing && now - this.silentReportedAt >= gap) {
        this.silentReportedAt = now;
        this.log.warn({ silentMs: Math.round(now - silent) }, 'the broker answered no publish for a while; probing the connection');
        // What awaits a confirm on the link when its owner gives up on it is as uncertain as a
        // timeout: it is failed as one before the drop would fail it as "closed".
        const handling = this.opts.onSilent(() => this.failAll('timeout', 'publish not confirmed: its connection was dropped for answering nothing'));
        if (handling instanceof Promise) {
          this.probing = true;
          const done = () => {
            this.probing = false;
            this.silentReportedAt = Math.max(this.silentReportedAt, performance.now());
          };
          handling.then(done, done);
        }
      }
      // Publishes given up at their deadline stay in flight until the broker answers: the sweep
      // goes on for them, or a window full of them would hide a silence.
      if (this.pending.size === 0 && this.inFlight === 0) {
        clearInterval(this.sweeper);
        this.sweeper = undefined;
      }
    }, every);
    this.sweeper.unref();
  }
}

function takeOne(counts: Map<string, number>, key: string): boolean {
  const n = counts.get(key);
  if (!n) return false;
  if (n > 1) counts.set(key, n - 1);
  else counts.delete(key);
  return true;
}
