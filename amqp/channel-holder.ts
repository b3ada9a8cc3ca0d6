import type { Channel, ChannelModel } from 'amqplib';
import type { AmqpConnectionManager, Logger } from '../core/index.ts';
import { bounded } from './bounded.ts';

export interface ChannelHolderOptions<C extends Channel> {
  connection: AmqpConnectionManager;
  /** For logs. */
  name: string;
  create: (model: ChannelModel) => Promise<C>;
  /** Runs on each new channel before it becomes current (prefetch, consume). */
  setup?: (channel: C) => Promise<void>;
  logger: Logger;
  /** First delay before a channel the broker closed is reopened (default 250 ms); it doubles while closes keep coming, up to 30 s. */
  retryMs?: number;
}

/** A channel that lived this long before it closed was healthy: the next reopen starts at the first delay again. */
const HEALTHY_MS = 10_000;
const MAX_RETRY_MS = 30_000;

/**
 * Keeps one amqplib channel open on the manager's current connection, and opens a new one after
 * a reconnect or a channel error: the one channel holder of Warren's publishers and consumers.
 * It replaces amqp-connection-manager's ChannelWrapper, which does the wrong thing here: it
 * buffers publishes without bound while disconnected and retries them later (a client told 503
 * could still see its request run), and it replaces a channel the broker closed only when the
 * whole connection reconnects (https://github.com/jwalton/node-amqp-connection-manager/issues/347),
 * which would void the delivery tags of every other channel on it. Here a channel-level error
 * (404, 406) costs only its own channel, reopened after `retryMs`; `current` is undefined while
 * there is no usable channel.
 */
export class ChannelHolder<C extends Channel> {
  private channel: C | undefined;
  private opening = false;
  private openAgain = false;
  private closed = false;
  private blockedFlag = false;
  private retryTimer: NodeJS.Timeout | undefined;
  private lastError = '';
  /** Reopens in a row whose channel did not stay up HEALTHY_MS (for the backoff). */
  private failures = 0;
  private openedAt = 0;
  private readonly waiters = new Set<(ch: C) => void>();
  private readonly opts: ChannelHolderOptions<C>;
  private readonly log: Logger;
  private readonly onConnect = () => this.open();
  private readonly onDisconnect = () => {
    this.channel = undefined;
    this.blockedFlag = false;
  };
  private readonly blockedListeners = new Set<() => void>();
  private readonly onBlocked = () => {
    this.blockedFlag = true;
    for (const listener of this.blockedListeners) listener();
  };
  private readonly onUnblocked = () => {
    this.blockedFlag = false;
  };

  constructor(options: ChannelHolderOptions<C>) {
    this.opts = options;
    this.log = options.logger.child({ component: 'channel', channel: options.name });
  }

  /** The open channel, or undefined while the connection or the channel is down. */
  get current(): C | undefined {
    return this.channel;
  }

  /** True while the broker blocks the connection (resource alarm): publishes would stall. */
  get blocked(): boolean {
    return this.blockedFlag;
  }

  /** Calls `listener` each time the broker blocks the connection (the publisher fails what awaits a confirm). */
  addBlockedListener(listener: () => void): void {
    this.blockedListeners.add(listener);
  }

  /** Resolves with the channel as soon as one is open (at once when one is). */
  whenOpen(): Promise<C> {
    const ch = this.channel;
    if (ch) return Promise.resolve(ch);
    return new Promise((resolve) => this.waiters.add(resolve));
  }

  /**
   * Opens a new channel on the current connection for what comes next, and closes the one in use
   * `lingerMs` later (what it still waits for can arrive until then). For a publish channel whose
   * broker answers but confirms nothing: a channel that started publishing to a quorum queue while
   * its leader was being replaced can keep waiting for the old leader, while a new channel looks
   * the leader up again. No-op while a channel is being opened or there is none.
   */
  renew(lingerMs: number): void {
    const old = this.channel;
    const model = this.opts.connection.connection;
    if (this.closed || this.opening || !old || !model) return;
    this.opening = true;
    this.openOn(model)
      .then(() => {
        if (this.channel === old) return;
        this.log.info({ lingerMs }, 'publishing on a new channel; the previous one closes after its confirm deadline');
        const timer = setTimeout(() => void old.close().catch(() => undefined), lingerMs);
        timer.unref();
      })
      .catch((err: unknown) => this.logOnce(err, 'new channel not opened; keeping the current one'))
      .finally(() => this.openingDone());
  }

  start(): void {
    const c = this.opts.connection;
    c.on('connect', this.onConnect);
    c.on('disconnect', this.onDisconnect);
    c.on('blocked', this.onBlocked);
    c.on('unblocked', this.onUnblocked);
    if (c.connection) this.open();
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.retryTimer);
    const c = this.opts.connection;
    c.removeListener('connect', this.onConnect);
    c.removeListener('disconnect', this.onDisconnect);
    c.removeListener('blocked', this.onBlocked);
    c.removeListener('unblocked', this.onUnblocked);
    const ch = this.channel;
    this.channel = undefined;
    if (ch) await bounded(ch.close(), 'channel close', this.log);
  }

  private open(): void {
    if (this.closed) return;
    if (this.opening) {
      // A connect event while a channel is still being opened: look again once that is over.
      this.openAgain = true;
      return;
    }
    const model = this.opts.connection.connection;
    if (!model) return;
    this.opening = true;
    this.openOn(model)
      .catch((err: unknown) => {
        this.logOnce(err, 'channel setup failed; retrying');
        this.scheduleRetry();
      })
      .finally(() => this.openingDone());
  }

  /**
   * An open (or a renew) is over. A connect event while it ran (on what may be the old
   * connection) asked for a look again: a channel is opened if there is none.
   */
  private openingDone(): void {
    this.opening = false;
    if (this.openAgain) {
      this.openAgain = false;
      if (!this.channel) this.open();
    }
  }

  private async openOn(model: ChannelModel): Promise<void> {
    const ch = await this.opts.create(model);
    // A channel-level error (404 on a missing queue, 406) closes the channel; 'close' follows.
    ch.on('error', (err: Error) => this.logOnce(err, 'channel error'));
    ch.on('close', () => this.onChannelClose(ch));
    await this.opts.setup?.(ch);
    if (this.closed || this.opts.connection.connection !== model) {
      await ch.close().catch(() => undefined);
      if (!this.closed) this.scheduleRetry();
      return;
    }
    this.channel = ch;
    this.openedAt = Date.now();
    if (this.lastError) this.log.info('channel open again');
    this.lastError = '';
    for (const resolve of this.waiters) resolve(ch);
    this.waiters.clear();
  }

  private onChannelClose(ch: C): void {
    if (this.channel === ch) {
      this.channel = undefined;
      if (Date.now() - this.openedAt >= HEALTHY_MS) this.failures = 0;
    }
    // After a connection loss the manager's 'connect' reopens; a channel closed on its own
    // (broker channel error) needs a retry of ours.
    if (!this.closed && this.opts.connection.isConnected()) this.scheduleRetry();
  }

  private scheduleRetry(): void {
    if (this.closed || this.retryTimer) return;
    // Doubling while closes keep coming: a lasting fault (a deleted exchange a publish keeps
    // hitting) must not turn into a channel storm.
    const delayMs = Math.min((this.opts.retryMs ?? 250) * 2 ** this.failures, MAX_RETRY_MS);
    this.failures += 1;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      if (!this.channel) this.open();
    }, delayMs);
    this.retryTimer.unref();
  }

  /** One log line per distinct failure, so a long outage does not flood the log. */
  private logOnce(err: unknown, msg: string): void {
    const text = err instanceof Error ? err.message : String(err);
    if (text === this.lastError) return;
    this.lastError = text;
    this.log.warn({ err: { message: text } }, msg);
  }
}
