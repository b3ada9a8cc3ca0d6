import { createHash, randomUUID } from 'node:crypto';
import type { Logger } from '../../core/index.ts';
import { EnqueueError } from '../../producer/index.ts';
import type { CompiledJob } from '../../topology/index.ts';
import { IdempotencyInProgressError, IdempotencyMismatchError } from '../errors.ts';
import type { ResultStore } from '../store/result-store.ts';

export interface AcceptOptions {
  idempotencyKey?: string | undefined;
  /** W3C trace context headers to carry to the worker. */
  headers?: Record<string, string>;
}

export interface Accepted {
  requestId: string;
  /** True when an Idempotency-Key matched an earlier accepted request (nothing was published). */
  replayed: boolean;
  /**
   * True when the broker did not confirm in time: the message may or may not be enqueued. The
   * row stays `queued`; a late confirm keeps it, a late refusal removes it (the status URL then
   * answers 404: never received).
   */
  unknown?: boolean;
}

/** What the acceptor publishes through: the producer's publish with a requestId of its choosing. */
export interface RequestPublisher {
  publish(job: CompiledJob, requestId: string, data: unknown, headers?: Record<string, string>): Promise<void>;
  /** Why a publish would be refused at once (no channel, blocked, window full): then nothing is written. */
  refusal?(job: CompiledJob, requestId: string): Error | undefined;
}

/** A confirm timeout: the broker may still have taken the message. */
function isUnknown(err: unknown): boolean {
  return err instanceof EnqueueError && err.outcome === 'unknown';
}

export interface RequestAcceptorOptions {
  publisher: RequestPublisher;
  /** The tutorial's job: its idempotency fingerprints stay as they were before jobs existed. */
  defaultJob?: string | undefined;
  store: ResultStore;
  logger: Logger;
  publishTimeoutMs: number;
}

/**
 * Accepts one request: publish with confirm, and record it as queued. With an Idempotency-Key,
 * the key is claimed in the store first (shared by replicas), so one key publishes once, and the
 * row is written after the confirm.
 *
 * Without a key, the row is written while the publish waits for its confirm, and the 202 waits for
 * both: the requestId reaches no one before the 202, so a row for a publish that then fails is
 * seen by no one, and is removed. (Writing them one after the other made the store's round trip
 * part of every request's latency.) If the store write fails, the answer is still 202 once the
 * broker confirmed: the message is durable and its result or dead letter creates the row
 * (insert-if-missing).
 */
export class RequestAcceptor {
  private readonly opts: RequestAcceptorOptions;
  private readonly log: Logger;
  /** Local publishes per key: a concurrent request with the same key waits for it here. */
  private readonly publishing = new Map<string, Promise<void>>();
  /** Removals of refused requests' rows still running (they finish after the client's answer). */
  private readonly cleanups = new Set<Promise<void>>();

  constructor(options: RequestAcceptorOptions) {
    this.opts = options;
    this.log = options.logger.child({ component: 'accept' });
  }

  async accept(job: CompiledJob, data: unknown, options: AcceptOptions = {}): Promise<Accepted> {
    const key = options.idempotencyKey;
    if (key === undefined) {
      const requestId = randomUUID();
      // Refused at once (during a broker outage, every request): no row written and removed again.
      const refused = this.opts.publisher.refusal?.(job, requestId);
      if (refused) throw refused;
      const unknown = await this.publishAndRecord(job, requestId, data, options.headers);
      return unknown ? { requestId, replayed: false, unknown } : { requestId, replayed: false };
    }
    return this.acceptWithKey(job, key, data, options.headers);
  }

  private async acceptWithKey(job: CompiledJob, key: string, data: unknown, headers: Record<string, string> | undefined): Promise<Accepted> {
    // One key names one request of one job: the same key with the same data for another job is a mismatch.
    const scope = job.name === this.opts.defaultJob ? '' : `${job.name}\n`;
    const fingerprint = createHash('sha256')
      .update(scope + (JSON.stringify(data) ?? 'undefined'))
      .digest('hex');
    // A claim owner finishes within the publish timeout plus a store write; a pending claim
    // older than twice that belongs to a process that died mid-publish.
    const staleMs = this.opts.publishTimeoutMs * 2 + 5000;
    const deadline = Date.now() + this.opts.publishTimeoutMs + 2000;
    for (;;) {
      const local = this.publishing.get(key);
      if (local) {
        await local.catch(() => undefined);
        continue;
      }
      const claim = await this.opts.store.claimIdempotencyKey({ key, requestId: randomUUID(), fingerprint, staleMs });
      if (claim.kind === 'mismatch') throw new IdempotencyMismatchError('this Idempotency-Key was used with a different body');
      if (claim.kind === 'accepted') return { requestId: claim.requestId, replayed: true };
      if (claim.kind === 'owner') {
        const p = this.publishOwned(job, key, claim.requestId, data, headers);
        // Waiters only need to know it ended; the outcome is handled below.
        this.publishing.set(
          key,
          p.then(
            () => undefined,
            () => undefined,
          ),
        );
        try {
          const unknown = await p;
          return unknown ? { requestId: claim.requestId, replayed: false, unknown } : { requestId: claim.requestId, replayed: false };
        } finally {
          this.publishing.delete(key);
        }
      }
      // Busy: another replica is publishing this key; its outcome lands in the store.
      if (Date.now() > deadline) throw new IdempotencyInProgressError('a request with this Idempotency-Key is still being accepted');
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  /** Resolves true when the outcome is unknown (a confirm timeout): the key keeps the requestId for the retry. */
  private async publishOwned(job: CompiledJob, key: string, requestId: string, data: unknown, headers: Record<string, string> | undefined): Promise<boolean> {
    try {
      await this.opts.publisher.publish(job, requestId, data, headers);
    } catch (err) {
      // After a timeout, or a block that caught the publish unconfirmed, the message may still
      // reach the queue: keep the requestId for the client's retry. After any other failure it
      // surely did not: free the key.
      const keep = err instanceof EnqueueError && (err.code === 'TIMEOUT' || err.code === 'BROKER_BLOCKED');
      await this.opts.store
        .releaseIdempotencyKey(key, requestId, keep)
        .catch((releaseErr: unknown) => this.log.warn({ err: releaseErr, requestId }, 'idempotency key release failed; it frees itself when stale'));
      if (!isUnknown(err)) throw err;
      // The outcome is unknown: the row says queued; the client holds the requestId and its key.
      await this.record(requestId, undefined);
      return true;
    }
    await this.record(requestId, key);
    return false;
  }

  /** Resolves true when the outcome is unknown (a confirm timeout): the row is kept, the client told so. */
  private async publishAndRecord(job: CompiledJob, requestId: string, data: unknown, headers: Record<string, string> | undefined): Promise<boolean> {
    const recorded = this.record(requestId, undefined);
    try {
      await this.opts.publisher.publish(job, requestId, data, headers);
    } catch (err) {
      if (isUnknown(err)) {
        await recorded;
        return true;
      }
      // After the row is in (or not), remove it: the client gets an error, never this requestId.
      // If the message did reach the queue (a timeout), its outcome writes the row again.
      this.forget(requestId, recorded, 'row of a refused request not removed; no client holds its requestId');
      throw err;
    }
    await recorded;
    return false;
  }

  /**
   * The late outcome of a publish answered as unknown: one the broker surely did not take (nacked,
   * unroutable) loses its row, so its status URL answers 404 (never received).
   */
  lateOutcome(requestId: string, enqueued: boolean): void {
    if (enqueued) return;
    this.log.warn({ requestId }, 'a request answered as unknown was refused by the broker after all; its row is removed');
    this.forget(requestId, Promise.resolve(), 'row of a request never received not removed');
  }

  /** Removes a queued row once `after` settled, tracked so drain() waits for it. */
  private forget(requestId: string, after: Promise<void>, failure: string): void {
    const cleanup = after
      .then(() => this.opts.store.forgetQueued(requestId))
      .catch((err: unknown) => this.log.warn({ err, requestId }, failure))
      .finally(() => this.cleanups.delete(cleanup));
    this.cleanups.add(cleanup);
  }

  /** Resolves once the rows of refused requests are removed (a shutdown waits for them). */
  async drain(): Promise<void> {
    while (this.cleanups.size > 0) await Promise.allSettled([...this.cleanups]);
  }

  private async record(requestId: string, key: string | undefined): Promise<void> {
    try {
      await this.opts.store.accept(requestId, key === undefined ? undefined : { idempotencyKey: key });
    } catch (err) {
      this.log.error({ err, requestId }, 'request published but not recorded; its result will record it');
    }
  }
}
