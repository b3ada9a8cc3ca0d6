import { PublishNotConfirmedError, WarrenError } from '../core/index.ts';

/** Why an enqueue was refused, and what the caller does about it. */
export type EnqueueErrorCode =
  /** The in-flight window is full (too many publishes await their confirm): retry shortly. */
  | 'OVERLOADED'
  /** The broker nacked the message (the queue is at its max length): retry later. */
  | 'PUBLISH_REJECTED'
  /** The broker blocks publishers under a memory or disk alarm: retry later. */
  | 'BROKER_BLOCKED'
  /**
   * No confirm within the deadline. The outcome is UNKNOWN: the broker may still take the
   * message. Retry with the same idempotencyKey (the same requestId) so a repeat is harmless.
   */
  | 'TIMEOUT'
  /** No queue is bound for the job's route (run `warren topology apply`). */
  | 'UNROUTABLE'
  /** No connection to the broker right now: retry later. */
  | 'BROKER_UNAVAILABLE';

/**
 * A refused enqueue. Nothing was accepted, except for TIMEOUT (`outcome: 'unknown'`): a message
 * whose confirm did not come in time may still be delivered; `requestId` says which.
 */
export class EnqueueError extends WarrenError {
  declare readonly code: EnqueueErrorCode;
  /** How long to wait before trying again. */
  readonly retryAfterMs: number;
  /** `refused`: surely not enqueued. `unknown`: a timeout; it may have been. */
  readonly outcome: 'refused' | 'unknown';
  readonly requestId: string;

  constructor(code: EnqueueErrorCode, message: string, requestId: string, retryAfterMs: number, options?: { cause?: unknown }) {
    super(code, message, options);
    this.retryAfterMs = retryAfterMs;
    this.outcome = code === 'TIMEOUT' ? 'unknown' : 'refused';
    this.requestId = requestId;
  }
}

/** `data` failed the job's schema, or is missing: nothing was published. */
export class JobValidationError extends WarrenError {
  readonly issues: ReadonlyArray<{ path: string; message: string }>;

  constructor(job: string, message: string, issues: ReadonlyArray<{ path: string; message: string }>) {
    super('INVALID_DATA', `job "${job}": ${message}`);
    this.issues = issues;
  }
}

const BY_REASON: Record<PublishNotConfirmedError['reason'], { code: EnqueueErrorCode; retryAfterMs: number; text: string }> = {
  'window-full': { code: 'OVERLOADED', retryAfterMs: 1000, text: 'too many enqueues await the broker confirm' },
  nack: { code: 'PUBLISH_REJECTED', retryAfterMs: 2000, text: 'the broker rejected the message (its queue is full)' },
  blocked: { code: 'BROKER_BLOCKED', retryAfterMs: 5000, text: 'the broker blocks publishers (a memory or disk alarm)' },
  timeout: { code: 'TIMEOUT', retryAfterMs: 2000, text: 'the broker did not confirm in time; the message may still be enqueued' },
  unroutable: { code: 'UNROUTABLE', retryAfterMs: 5000, text: 'no queue is bound for the job (run warren topology apply)' },
  closed: { code: 'BROKER_UNAVAILABLE', retryAfterMs: 5000, text: 'no connection to the broker' },
};

/** The enqueue error a publish failure means, at the one boundary where they are classified. */
export function enqueueErrorOf(err: unknown, job: string, requestId: string): EnqueueError | unknown {
  if (!(err instanceof PublishNotConfirmedError)) return err;
  const m = BY_REASON[err.reason];
  return new EnqueueError(m.code, `job "${job}" not enqueued: ${m.text}`, requestId, m.retryAfterMs, { cause: err });
}
