import { GroupCommit, type GroupCommitOptions, PermanentError } from '../../core/index.ts';
import { StoreUnavailableError } from '../errors.ts';
import { deadGroups, listDead, markPurged, timeParam } from './dead-letter-queries.ts';
import type {
  ClaimInput,
  DeadGroupRecord,
  DeadInfo,
  DeadLetterQuery,
  DeadLetterRecord,
  IdempotencyClaim,
  PurgeCounts,
  RequestRecord,
  RequestStatus,
  ResultInput,
  ResultStore,
  StoreRetention,
} from './result-store.ts';
import { keyCutoff, purgeExpired, retentionWith, startSweeper } from './retention.ts';
import { type SqlClient, sqlStateOf } from './sql-client.ts';

/** The store's writes wait for a stalled database up to a bound, then the API answers 503. */
export const STORE_BATCHES: GroupCommitOptions = {
  behind: (waiting) => new StoreUnavailableError(`the store is behind: ${waiting} writes already wait for it`),
};

interface RequestRow {
  request_id: string;
  status: RequestStatus;
  result: unknown;
  error: { reason: string; code?: string; message?: string } | null;
  attempts: number | null;
  created_at: Date | string;
  updated_at: Date | string;
}

interface KeyRow {
  request_id: string;
  fingerprint: string;
  state: 'pending' | 'accepted' | 'released';
  expired: boolean;
}

export interface SqlStoreOptions {
  retention?: Partial<StoreRetention> | undefined;
  /** Milliseconds since the epoch; retention cutoffs are computed from it (a test clock). */
  clock?: () => number;
  /** A sweep that failed (it runs again at the next interval). */
  onSweepError?: (err: unknown) => void;
}

/**
 * The ResultStore on any PostgreSQL dialect the SqlClient speaks (PGlite or a server). Every
 * precedence rule is a WHERE clause on an upsert, so replicas and redeliveries need no locks.
 */
export class SqlResultStore implements ResultStore {
  private readonly db: SqlClient;
  private readonly accepts: GroupCommit<string>;
  private readonly forgets: GroupCommit<string>;
  private readonly results: GroupCommit<ResultInput, boolean | Error>;
  private readonly retention: StoreRetention;
  private readonly clock: () => number;
  private readonly stopSweeper: () => void;

  constructor(db: SqlClient, options: SqlStoreOptions = {}) {
    this.db = db;
    this.retention = retentionWith(options.retention);
    this.clock = options.clock ?? Date.now;
    this.stopSweeper = startSweeper(() => this.purgeExpired(), this.retention.sweepIntervalMs, options.onSweepError ?? (() => {}));
    /** One statement per batch of requestIds, given as the text[] $1. */
    const byIds = (sql: string) => new GroupCommit<string>((ids) => this.db.query(sql, [ids]).then(() => ids.map(() => undefined)), STORE_BATCHES);
    // Every batch that inserts or upserts several rows does it in request_id order: on PostgreSQL
    // the accepts and a results batch run at once on two connections, a result can arrive while
    // its accept is being written, and two batches taking the same rows in different orders
    // deadlock (found after deadlock_timeout, 1 s, and one of them fails).
    this.accepts = byIds(
      `INSERT INTO requests (request_id, status) SELECT id, 'queued' FROM unnest($1::text[]) AS t(id) GROUP BY id ORDER BY id ON CONFLICT (request_id) DO NOTHING`,
    );
    // The DELETE alone would lock rows as its scan finds them (a sequential scan: as written), so
    // the rows are locked first, in request_id order, by the subquery.
    this.forgets = byIds(
      `DELETE FROM requests WHERE status = 'queued' AND request_id IN (
         SELECT request_id FROM requests WHERE request_id = ANY($1::text[]) AND status = 'queued' ORDER BY request_id FOR UPDATE)`,
    );
    this.results = new GroupCommit((inputs) => this.writeResults(inputs), STORE_BATCHES);
  }

  /**
   * A batch of results, each answered with whether it applied or with the error it alone caused.
   * A value the store refuses (a data exception, e.g. \u0000 in a JSON string) fails the whole
   * statement: the batch is then written one result at a time, so only that result fails, and the
   * others in its batch are not marked dead with it.
   */
  private async writeResults(inputs: ResultInput[]): Promise<Array<boolean | Error>> {
    try {
      return await this.upsertResults(inputs);
    } catch (err) {
      if (inputs.length === 1 || !sqlStateOf(err)?.startsWith('22')) throw err;
      const out: Array<boolean | Error> = [];
      for (const input of inputs) {
        out.push(
          await this.upsertResults([input]).then(
            (r) => r[0] as boolean,
            (e: unknown) => (e instanceof Error ? e : new Error(String(e))),
          ),
        );
      }
      return out;
    }
  }

  /**
   * Many results in one upsert. A requestId twice in one batch (a redelivered duplicate) is
   * written once: an upsert may not touch the same row twice. Returns, per input, whether that
   * input made the request done (false for a request already done, or the batch's duplicate).
   */
  private async upsertResults(inputs: ResultInput[]): Promise<boolean[]> {
    const first = new Map<string, number>();
    inputs.forEach((input, i) => {
      if (!first.has(input.requestId)) first.set(input.requestId, i);
    });
    const unique = [...first.values()].map((i) => inputs[i] as ResultInput);
    const rows = await this.db.query<{ request_id: string }>(
      `INSERT INTO requests (request_id, status, result, attempts)
       SELECT r.id, 'done', r.result::jsonb, r.attempts FROM unnest($1::text[], $2::text[], $3::int[]) AS r(id, result, attempts) ORDER BY r.id
       ON CONFLICT (request_id) DO UPDATE
         SET status = 'done', result = EXCLUDED.result, attempts = EXCLUDED.attempts, error = NULL, updated_at = now()
         WHERE requests.status <> 'done'
       RETURNING request_id`,
      [unique.map((u) => u.requestId), unique.map((u) => toJson(u.result)), unique.map((u) => u.attempts ?? null)],
    );
    const applied = new Set(rows.map((r) => r.request_id));
    return inputs.map((input, i) => first.get(input.requestId) === i && applied.has(input.requestId));
  }

  get description(): string {
    return this.db.description;
  }

  async accept(requestId: string, options?: { idempotencyKey?: string }): Promise<void> {
    const key = options?.idempotencyKey;
    await this.run(async () => {
      if (key === undefined) {
        await this.accepts.add(requestId);
        return;
      }
      const insert = `INSERT INTO requests (request_id, status) VALUES ($1, 'queued') ON CONFLICT (request_id) DO NOTHING`;
      await this.db.transaction(async (tx) => {
        await tx.query(insert, [requestId]);
        await tx.query(`UPDATE idempotency_keys SET state = 'accepted', updated_at = now() WHERE key = $1 AND request_id = $2`, [key, requestId]);
      });
    });
  }

  async forgetQueued(requestId: string): Promise<void> {
    await this.run(() => this.forgets.add(requestId));
  }

  async recordResult(input: ResultInput): Promise<boolean> {
    return this.run(async () => {
      const outcome = await this.results.add(input);
      if (outcome instanceof Error) throw outcome;
      return outcome;
    });
  }

  async recordResults(inputs: readonly ResultInput[]): Promise<Array<boolean | Error>> {
    const outcomes = await this.run(() => this.results.addAll(inputs));
    return outcomes.map((o) => (o instanceof Error ? storeError(o) : o));
  }

  async recordDead(requestId: string, info: DeadInfo): Promise<boolean> {
    const error = { reason: info.reason, ...(info.code ? { code: info.code } : {}), ...(info.message ? { message: info.message } : {}) };
    const rows = await this.run(() =>
      this.db.query(
        `INSERT INTO requests (request_id, status, error, attempts, dead_group, dead_queue, dead_first_failure, dead_at)
         VALUES ($1, 'dead', $2::jsonb, $3, $4, $5, $6::timestamptz, COALESCE($7::timestamptz, now()))
         ON CONFLICT (request_id) DO UPDATE
           SET status = 'dead', error = EXCLUDED.error, attempts = EXCLUDED.attempts, updated_at = now(), dead_group = EXCLUDED.dead_group,
             dead_queue = EXCLUDED.dead_queue, dead_first_failure = EXCLUDED.dead_first_failure, dead_at = EXCLUDED.dead_at, purged_at = NULL
           WHERE requests.status <> 'done'
         RETURNING request_id`,
        [
          requestId,
          JSON.stringify(error),
          info.attempts ?? null,
          info.group ?? null,
          info.originQueue ?? null,
          timeParam(info.firstFailure),
          timeParam(info.deadAt),
        ],
      ),
    );
    return rows.length > 0;
  }

  async markQueued(requestId: string): Promise<boolean> {
    const rows = await this.run(() =>
      this.db.query(`UPDATE requests SET status = 'queued', error = NULL, updated_at = now() WHERE request_id = $1 AND status = 'dead' RETURNING request_id`, [
        requestId,
      ]),
    );
    return rows.length > 0;
  }

  async get(requestId: string): Promise<RequestRecord | undefined> {
    const rows = await this.run(() =>
      this.db.query<RequestRow>('SELECT request_id, status, result, error, attempts, created_at, updated_at FROM requests WHERE request_id = $1', [requestId]),
    );
    const row = rows[0];
    return row ? toRecord(row) : undefined;
  }

  listDead(query: DeadLetterQuery): Promise<DeadLetterRecord[]> {
    return this.run(() => listDead(this.db, query));
  }

  deadGroups(query?: { queue?: string | undefined }): Promise<DeadGroupRecord[]> {
    return this.run(() => deadGroups(this.db, query));
  }

  markPurged(requestIds: readonly string[]): Promise<number> {
    return this.run(() => markPurged(this.db, requestIds));
  }

  async claimIdempotencyKey(input: ClaimInput): Promise<IdempotencyClaim> {
    return this.run(async () => {
      // Two rounds at most: a row freed between our INSERT and SELECT is claimed on the second.
      for (let round = 0; round < 2; round++) {
        const inserted = await this.db.query<{ request_id: string }>(
          `INSERT INTO idempotency_keys (key, request_id, fingerprint, state) VALUES ($1, $2, $3, 'pending')
           ON CONFLICT (key) DO NOTHING RETURNING request_id`,
          [input.key, input.requestId, input.fingerprint],
        );
        if (inserted[0]) return { kind: 'owner', requestId: inserted[0].request_id };
        const expiredBefore = keyCutoff(this.retention, this.clock());
        const existing = (
          await this.db.query<KeyRow>('SELECT request_id, fingerprint, state, created_at < $2::timestamptz AS expired FROM idempotency_keys WHERE key = $1', [
            input.key,
            expiredBefore,
          ])
        )[0];
        if (!existing) continue;
        if (existing.expired) {
          // Past its window the key is forgotten: it starts a new request, whatever its old body.
          const renewed = await this.db.query<{ request_id: string }>(
            `UPDATE idempotency_keys SET request_id = $2, fingerprint = $3, state = 'pending', created_at = now(), updated_at = now()
             WHERE key = $1 AND created_at < $4::timestamptz RETURNING request_id`,
            [input.key, input.requestId, input.fingerprint, expiredBefore],
          );
          if (renewed[0]) return { kind: 'owner', requestId: renewed[0].request_id };
          continue;
        }
        if (existing.fingerprint !== input.fingerprint) return { kind: 'mismatch' };
        if (existing.state === 'accepted') return { kind: 'accepted', requestId: existing.request_id };
        const taken = await this.db.query<{ request_id: string }>(
          `UPDATE idempotency_keys SET state = 'pending', updated_at = now()
           WHERE key = $1 AND (state = 'released' OR (state = 'pending' AND updated_at < now() - $2::integer * interval '1 millisecond'))
           RETURNING request_id`,
          [input.key, input.staleMs],
        );
        if (taken[0]) return { kind: 'owner', requestId: taken[0].request_id };
        return { kind: 'busy', requestId: existing.request_id };
      }
      throw new StoreUnavailableError('idempotency key changed hands twice during one claim');
    });
  }

  async releaseIdempotencyKey(key: string, requestId: string, keepRequestId: boolean): Promise<void> {
    await this.run(() =>
      keepRequestId
        ? this.db.query(`UPDATE idempotency_keys SET state = 'released', updated_at = now() WHERE key = $1 AND request_id = $2 AND state = 'pending'`, [
            key,
            requestId,
          ])
        : this.db.query(`DELETE FROM idempotency_keys WHERE key = $1 AND request_id = $2 AND state = 'pending'`, [key, requestId]),
    );
  }

  purgeExpired(): Promise<PurgeCounts> {
    return this.run(() => purgeExpired(this.db, this.retention, this.clock()));
  }

  async ping(): Promise<void> {
    await this.run(() => this.db.query('SELECT 1 AS ok'));
  }

  close(): Promise<void> {
    this.stopSweeper();
    return this.db.close();
  }

  /**
   * Classifies driver errors at one place. Data exceptions (SQLSTATE class 22, e.g. a JSON string
   * holding \u0000, which jsonb refuses) never succeed on retry: they are permanent, so a consumer
   * does not redeliver such a message forever. Everything else counts as the store being unavailable.
   */
  private async run<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      throw storeError(err);
    }
  }
}

/** What the store's callers see of a failure: a data exception is permanent, the rest the store being unavailable. */
function storeError(err: unknown): Error {
  if (err instanceof StoreUnavailableError) return err;
  const state = sqlStateOf(err);
  if (state?.startsWith('22')) return new PermanentError('the store refused the data', { cause: err, code: 'STORE_DATA_REJECTED' });
  return new StoreUnavailableError('the store did not complete the operation', { cause: err });
}

function toJson(value: unknown): string | null {
  return value === undefined ? null : JSON.stringify(value);
}

function toIso(v: Date | string): string {
  return v instanceof Date ? v.toISOString() : new Date(v).toISOString();
}

function toRecord(row: RequestRow): RequestRecord {
  const rec: RequestRecord = { requestId: row.request_id, status: row.status, createdAt: toIso(row.created_at), updatedAt: toIso(row.updated_at) };
  if (row.status === 'done') rec.result = row.result ?? null;
  if (row.status === 'dead' && row.error) rec.error = row.error;
  if (row.attempts !== null) rec.attempts = Number(row.attempts);
  return rec;
}
