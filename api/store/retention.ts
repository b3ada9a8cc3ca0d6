import { DEFAULT_RETENTION } from '../../core/index.ts';
import type { PurgeCounts, StoreRetention } from './result-store.ts';
import type { SqlQueryable } from './sql-client.ts';

/** Rows one purge statement deletes at most: a sweep never holds long locks on a big backlog. */
export const PURGE_BATCH = 5000;

/** The defaults, overridden by the settings given (an undefined setting keeps its default). */
export function retentionWith(settings: Partial<StoreRetention> = {}): StoreRetention {
  const given = Object.fromEntries(Object.entries(settings).filter(([, v]) => v !== undefined));
  return { ...DEFAULT_RETENTION, ...given };
}

/** Before this instant (ISO), an idempotency key is past its window. */
export function keyCutoff(retention: StoreRetention, now: number): string {
  return new Date(now - retention.idempotencyKeysMs).toISOString();
}

/**
 * Deletes ended requests and idempotency keys past their retention, batch by batch. A dead
 * request is kept while its dead letter is (not purged): the console and `dlq list` show dead
 * letters from these rows, and a dead letter still in its queue must not vanish from them.
 */
export async function purgeExpired(db: SqlQueryable, retention: StoreRetention, now: number): Promise<PurgeCounts> {
  const counts: PurgeCounts = { requests: 0, idempotencyKeys: 0 };
  if (retention.requestsMs > 0) {
    counts.requests = await purgeBatches(
      db,
      `DELETE FROM requests WHERE request_id IN (
         SELECT request_id FROM requests
         WHERE (status = 'done' OR (status = 'dead' AND purged_at IS NOT NULL)) AND updated_at < $1::timestamptz LIMIT ${PURGE_BATCH})`,
      new Date(now - retention.requestsMs).toISOString(),
    );
  }
  counts.idempotencyKeys = await purgeBatches(
    db,
    `DELETE FROM idempotency_keys WHERE key IN (SELECT key FROM idempotency_keys WHERE created_at < $1::timestamptz LIMIT ${PURGE_BATCH})`,
    keyCutoff(retention, now),
  );
  return counts;
}

/** One bounded statement at a time until a batch comes back short. */
async function purgeBatches(db: SqlQueryable, sql: string, cutoff: string): Promise<number> {
  let total = 0;
  for (;;) {
    const row = (await db.query<{ n: number }>(`WITH gone AS (${sql} RETURNING 1) SELECT count(*)::int AS n FROM gone`, [cutoff]))[0];
    const n = Number(row?.n ?? 0);
    total += n;
    if (n < PURGE_BATCH) return total;
  }
}

/**
 * Runs `sweep` every `intervalMs` (never two at once; the timer does not keep the process
 * alive). Returns the function that stops it.
 */
export function startSweeper(sweep: () => Promise<unknown>, intervalMs: number, onError: (err: unknown) => void): () => void {
  if (intervalMs <= 0) return () => {};
  let running = false;
  const timer = setInterval(() => {
    if (running) return;
    running = true;
    sweep()
      .catch(onError)
      .finally(() => {
        running = false;
      });
  }, intervalMs);
  timer.unref();
  return () => clearInterval(timer);
}
