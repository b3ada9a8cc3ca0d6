import type { RetentionSettings } from '../../core/index.ts';

/**
 * What the API records about each request, and the one interface both stores (embedded PGlite,
 * PostgreSQL) implement with the same schema and SQL.
 *
 * Status precedence, enforced in SQL so that concurrent replicas and out-of-order deliveries
 * agree: `done` is final; `dead` wins over `queued`; `accept` only inserts when missing, so a
 * result that overtook its own 202 is never downgraded; `markQueued` is the one way back
 * (dead -> queued), for dead-letter replay.
 */
export type RequestStatus = 'queued' | 'done' | 'dead';

export interface DeadInfo {
  /** malformed | permanent | max-attempts | delivery-limit | timeout | another broker reason. */
  reason: string;
  code?: string | undefined;
  message?: string | undefined;
  attempts?: number | undefined;
  /** The failure fingerprint (api/dead-letters/fingerprint.ts), to group dead letters by cause. */
  group?: string | undefined;
  /** The queue the message died in. */
  originQueue?: string | undefined;
  /** ISO times: the first failure of its last run of attempts, and when it was dead-lettered. */
  firstFailure?: string | undefined;
  deadAt?: string | undefined;
}

/** A dead request as the store knows it: what the failure console lists without reading a queue. */
export interface DeadLetterRecord {
  requestId: string;
  /** dead, or queued/done once replayed (a group's history keeps them). */
  status: RequestStatus;
  reason: string | undefined;
  code: string | undefined;
  message: string | undefined;
  attempts: number | undefined;
  group: string | undefined;
  originQueue: string | undefined;
  firstFailure: string | undefined;
  deadAt: string | undefined;
  updatedAt: string;
}

/** One failure fingerprint's dead requests, counted by the store. */
export interface DeadGroupRecord {
  group: string;
  count: number;
  reason: string | undefined;
  /** One error message of the group (the members differ only in masked parts). */
  message: string | undefined;
  queues: string[];
  firstFailure: string | undefined;
  lastFailure: string | undefined;
  example: string;
}

export interface DeadLetterQuery {
  group?: string | undefined;
  queue?: string | undefined;
  /** A requestId, or its beginning. */
  requestId?: string | undefined;
  /** Also requests of the group that were replayed since (queued or done). */
  includeReplayed?: boolean | undefined;
  limit: number;
}

export interface RequestRecord {
  requestId: string;
  status: RequestStatus;
  result?: unknown;
  error?: { reason: string; code?: string; message?: string };
  attempts?: number;
  createdAt: string;
  updatedAt: string;
}

export interface ResultInput {
  requestId: string;
  result: unknown;
  attempts?: number | undefined;
}

/** The outcome of claiming an Idempotency-Key. */
export type IdempotencyClaim =
  /** The caller owns the key and must publish `requestId` (new, or reused after a timeout). */
  | { kind: 'owner'; requestId: string }
  /** The key's request was accepted before: answer the same 202, publish nothing. */
  | { kind: 'accepted'; requestId: string }
  /** Someone else is publishing it right now. */
  | { kind: 'busy'; requestId: string }
  /** The key was used with a different body. */
  | { kind: 'mismatch' };

export interface ClaimInput {
  key: string;
  /** The requestId to bind when the key is new. */
  requestId: string;
  /** A hash of the body; the same key with another body is refused. */
  fingerprint: string;
  /** A pending claim older than this is taken over (its owner died mid-publish). */
  staleMs: number;
}

/**
 * How long the store keeps what it no longer needs (core's RetentionSettings, read from
 * REQUEST_RETENTION, IDEMPOTENCY_KEY_TTL, STORE_SWEEP_INTERVAL). Rows of requests that ended
 * (done or dead) are deleted once unchanged for `requestsMs` (0: kept for ever); an
 * Idempotency-Key is remembered for `idempotencyKeysMs` after its first use, after which the same
 * key starts a new request and the sweep deletes it; a store sweeps every `sweepIntervalMs` (0:
 * never). Queued rows are never deleted: their request has not ended.
 */
export type StoreRetention = RetentionSettings;

export interface PurgeCounts {
  requests: number;
  idempotencyKeys: number;
}

export interface ResultStore {
  /** Records a published request as queued, unless a row exists (never downgrades). */
  accept(requestId: string, options?: { idempotencyKey?: string }): Promise<void>;
  /**
   * Removes the queued row of a request whose publish failed after `accept` wrote it (its
   * requestId reached no client). A done or dead row stays.
   */
  forgetQueued(requestId: string): Promise<void>;
  /** Records a result: done, final. Returns false when the request was already done. */
  recordResult(input: ResultInput): Promise<boolean>;
  /**
   * Records several results (a results message's) as recordResult does each, in one call: per
   * input, true when it made its request done, false when the request was done already, or the
   * error that input alone met (a PermanentError for a value the store refuses). Rejects, for
   * all of them, when the store could not write them (StoreUnavailableError).
   */
  recordResults(inputs: readonly ResultInput[]): Promise<Array<boolean | Error>>;
  /** Records a dead letter unless the request is done. Returns false when it was done. */
  recordDead(requestId: string, info: DeadInfo): Promise<boolean>;
  /** dead -> queued (a replay). Returns false when the request is not dead. */
  markQueued(requestId: string): Promise<boolean>;
  get(requestId: string): Promise<RequestRecord | undefined>;

  /** Dead requests (not purged), newest first: browsing dead letters without touching a queue. */
  listDead(query: DeadLetterQuery): Promise<DeadLetterRecord[]>;
  /** Dead requests (not purged) counted by failure fingerprint, largest group first. */
  deadGroups(query?: { queue?: string | undefined }): Promise<DeadGroupRecord[]>;
  /** Marks dead requests whose dead letters were purged; they leave the lists. Returns how many. */
  markPurged(requestIds: readonly string[]): Promise<number>;

  claimIdempotencyKey(input: ClaimInput): Promise<IdempotencyClaim>;
  /**
   * Gives a key back after a failed publish. `keepRequestId` (after a timeout, when the message
   * may still have reached the queue) lets the next claim reuse the same requestId, so a client's
   * retry collapses onto the request that may already be processing; otherwise the key is freed.
   */
  releaseIdempotencyKey(key: string, requestId: string, keepRequestId: boolean): Promise<void>;

  /** Deletes ended requests and idempotency keys past their retention (see StoreRetention). */
  purgeExpired(): Promise<PurgeCounts>;

  /** Throws when the store cannot answer. */
  ping(): Promise<void>;
  close(): Promise<void>;
  /** For logs and /readyz: "pglite <dir>" or "postgres <host>/<db> schema <s>" (no credentials). */
  readonly description: string;
}
