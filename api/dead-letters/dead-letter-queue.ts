import type amqplib from 'amqplib';
import { ConfirmPublisher } from '../../amqp/index.ts';
import { BROKER_DEATH_HEADERS, copyProperties, HEADERS, type Logger, PublishNotConfirmedError } from '../../core/index.ts';
import type { CompiledTopology } from '../../topology/index.ts';
import type { DeadLetter } from './dead-letter.ts';
import { DeadLetterOperationError } from './errors.ts';
import { digestOf, type ExportEntries, idOf } from './export-token.ts';
import { type DeadLetterSource, type HeldMessage, MAX_BROWSE, withHeldMessages } from './session.ts';

export { MAX_BROWSE } from './session.ts';

export interface DeadLetterSelector {
  ids?: readonly string[];
  group?: string;
  all?: boolean;
  /** Only this origin queue's dead letters. */
  queue?: string;
}

export interface ReplayOptions {
  ratePerSecond?: number;
  dryRun?: boolean;
  onProgress?: (done: number, total: number) => void;
  /** Called after a message was republished (confirmed) and removed: e.g. store dead -> queued. */
  onReplayed?: (dl: DeadLetter) => Promise<void>;
}

/** A dead letter a replay left dead, and why (its origin queue is gone, say). */
export interface ReplayFailure {
  requestId: string | undefined;
  queue: string;
  reason: string;
}

export interface ReplayResult {
  matched: number;
  replayed: number;
  failed: ReplayFailure[];
}

export interface PurgeOptions {
  /** Receives every message before any is removed; must have made it durable when it resolves. */
  exportTo?: (batch: DeadLetter[]) => Promise<void>;
  /** Only these (id, digest) pairs, from an earlier export; other matches stay. */
  only?: ExportEntries;
  /** Called with what was removed, once the removal is applied. */
  onPurged?: (letters: DeadLetter[]) => Promise<void>;
}

/** Headers that describe one run of attempts; a replay starts a fresh run but keeps the history. */
const RESET_HEADERS = [
  HEADERS.attempt,
  HEADERS.firstFailure,
  HEADERS.lastFailure,
  HEADERS.reason,
  HEADERS.errorCode,
  HEADERS.errorMessage,
  HEADERS.errorStack,
  HEADERS.attempts,
  HEADERS.deadAt,
  ...BROKER_DEATH_HEADERS,
];

/**
 * Operations on dead-letter queues, each a session that holds the queue's messages (see
 * session.ts). Replay and purge remove a message only after what replaces it is safe (the
 * republish routed and confirmed, the export written), so a crash midway leaves each message
 * dead, replayed, or both, never neither. Operations of one instance run one at a time: two
 * sessions on one queue would each see only what the other does not hold.
 */
export class DeadLetterQueues {
  private readonly sources: DeadLetterSource[];
  private tail: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly amqpUrl: string,
    compiled: CompiledTopology,
    private readonly logger: Logger,
  ) {
    this.sources = Object.values(compiled.routes).flatMap((r) =>
      r.deadLetter ? [{ origin: r.queue, deadQueue: r.deadLetter.queue, deliveryLimit: r.deliveryLimit }] : [],
    );
  }

  queues(queue?: string): DeadLetterSource[] {
    const found = this.sources.filter((s) => !queue || s.origin === queue || s.deadQueue === queue);
    if (queue && found.length === 0) {
      const known = this.sources.map((s) => s.origin).join(', ');
      throw new DeadLetterOperationError(404, 'QUEUE_NOT_FOUND', `no dead-letter queue for "${queue}" in the topology (known: ${known})`);
    }
    return found;
  }

  /** Reads matching dead letters from their queues (to show one in full, or export), removing nothing. */
  browse(selector: DeadLetterSelector = { all: true }, limit = MAX_BROWSE): Promise<DeadLetter[]> {
    return this.exclusive(async () => {
      const out: DeadLetter[] = [];
      for (const src of this.queues(selector.queue)) {
        await this.session(src, async (msgs) => {
          for (const { dl } of msgs) if (matches(dl, selector) && out.length < limit) out.push(dl);
          return [];
        });
      }
      return out;
    });
  }

  /** Republishes matching dead letters to their origin queue, then removes them. */
  replay(selector: DeadLetterSelector, options: ReplayOptions = {}): Promise<ReplayResult> {
    return this.exclusive(async () => {
      const result: ReplayResult = { matched: 0, replayed: 0, failed: [] };
      for (const src of this.queues(selector.queue)) {
        await this.session(src, async (msgs, conn, ch) => {
          const chosen = msgs.filter((m) => matches(m.dl, selector));
          result.matched += chosen.length;
          if (options.dryRun || chosen.length === 0) return [];
          return this.replayHeld(chosen, src, conn, ch, result, options);
        });
      }
      return result;
    });
  }

  private async replayHeld(
    chosen: HeldMessage[],
    src: DeadLetterSource,
    conn: amqplib.ChannelModel,
    ch: amqplib.Channel,
    result: ReplayResult,
    options: ReplayOptions,
  ): Promise<amqplib.ConsumeMessage[]> {
    // Mandatory, one at a time: a copy no queue takes (the origin queue was deleted or renamed)
    // comes back before its confirm and the publisher fails it as `unroutable`. Without
    // `mandatory` the default exchange drops it and confirms anyway, and acking the dead letter
    // then loses it.
    const confirmCh = await conn.createConfirmChannel();
    confirmCh.on('error', (err: Error) => this.logger.warn({ err: { message: err.message } }, 'replay channel closed by the broker'));
    const pub = new ConfirmPublisher({ channels: { current: confirmCh, blocked: false }, timeoutMs: REPLAY_CONFIRM_MS, logger: this.logger });
    const gapMs = options.ratePerSecond ? 1000 / options.ratePerSecond : 0;
    const acked: amqplib.ConsumeMessage[] = [];
    try {
      for (const { msg, dl } of chosen) {
        const started = Date.now();
        const queue = dl.originQueue || src.origin;
        const headers: Record<string, unknown> = { ...msg.properties.headers };
        for (const h of RESET_HEADERS) delete headers[h];
        headers[HEADERS.replays] = dl.replays + 1;
        const log = { requestId: dl.requestId, queue, group: dl.fingerprint.id, reason: dl.reason };
        const props = { ...copyProperties(msg.properties, headers), mandatory: true };
        if (await routed(pub.publish({ exchange: '', routingKey: queue, content: msg.content, options: props }))) {
          ch.ack(msg);
          acked.push(msg);
          result.replayed++;
          this.logger.info({ ...log, attempts: dl.attempts }, 'dead letter replayed');
          if (options.onReplayed) await options.onReplayed(dl);
        } else {
          // Left unacked: it goes back to the dead-letter queue when the session closes.
          result.failed.push({ requestId: idOf(dl), queue, reason: `origin queue "${queue}" does not exist; the dead letter stays dead` });
          this.logger.warn(log, 'dead letter not replayed: its origin queue does not exist');
        }
        options.onProgress?.(result.replayed + result.failed.length, result.matched);
        const wait = gapMs - (Date.now() - started);
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      }
    } finally {
      pub.close();
      await confirmCh.close().catch(() => undefined);
    }
    return acked;
  }

  /** Removes matching dead letters, after handing them all to `exportTo` when given. */
  purge(selector: DeadLetterSelector, options: PurgeOptions = {}): Promise<{ purged: number }> {
    const only = options.only ? new Map(options.only) : undefined;
    return this.exclusive(async () => {
      let purged = 0;
      for (const src of this.queues(selector.queue)) {
        let removed: DeadLetter[] = [];
        await this.session(src, async (msgs, _conn, ch) => {
          const chosen = msgs.filter((m) => matches(m.dl, selector) && (!only || only.get(idOf(m.dl) ?? '') === digestOf(m.dl)));
          if (chosen.length === 0) return [];
          if (options.exportTo) await options.exportTo(chosen.map((c) => c.dl));
          for (const { msg, dl } of chosen) {
            ch.ack(msg);
            this.logger.info(
              { requestId: dl.requestId, queue: dl.originQueue || src.origin, group: dl.fingerprint.id, reason: dl.reason },
              'dead letter purged',
            );
          }
          removed = chosen.map((c) => c.dl);
          return chosen.map((c) => c.msg);
        });
        // The session returned, so the broker applied the acks: only now is the purge a fact.
        purged += removed.length;
        if (removed.length > 0 && options.onPurged) await options.onPurged(removed);
      }
      return { purged };
    });
  }

  private session(
    src: DeadLetterSource,
    work: (msgs: HeldMessage[], conn: amqplib.ChannelModel, ch: amqplib.Channel) => Promise<amqplib.ConsumeMessage[]>,
  ): Promise<void> {
    return withHeldMessages(this.amqpUrl, src, this.logger, work);
  }

  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.tail.then(fn, fn);
    this.tail = run.catch(() => undefined);
    return run;
  }
}

/** How long one replayed message may wait for its confirm. */
const REPLAY_CONFIRM_MS = 10_000;

/** True once confirmed, false when it came back unroutable; other failures end the replay. */
async function routed(publish: Promise<void>): Promise<boolean> {
  try {
    await publish;
    return true;
  } catch (err) {
    if (err instanceof PublishNotConfirmedError && err.reason === 'unroutable') return false;
    throw err;
  }
}

export function matches(dl: DeadLetter, s: DeadLetterSelector): boolean {
  if (s.ids && s.ids.length > 0 && !(dl.requestId && s.ids.includes(dl.requestId)) && !(dl.messageId && s.ids.includes(dl.messageId))) return false;
  if (s.group && dl.fingerprint.id !== s.group) return false;
  return Boolean(s.all || (s.ids && s.ids.length > 0) || s.group);
}
