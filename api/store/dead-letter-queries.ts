import type { DeadGroupRecord, DeadLetterQuery, DeadLetterRecord, RequestStatus } from './result-store.ts';
import type { SqlQueryable } from './sql-client.ts';

/**
 * The store's side of the failure console: dead requests listed and grouped from the rows the
 * dead-event consumer writes (every dead letter's copy in `<q>.dead.events`), so browsing reads no
 * queue and raises no delivery count. Purged requests (purged_at) leave the lists.
 */
interface DeadRow {
  request_id: string;
  status: RequestStatus;
  error: { reason?: string; code?: string; message?: string } | null;
  attempts: number | null;
  dead_group: string | null;
  dead_queue: string | null;
  dead_first_failure: Date | string | null;
  dead_at: Date | string | null;
  updated_at: Date | string;
}

interface GroupRow {
  grp: string;
  count: number | string;
  reason: string | null;
  message: string | null;
  queues: string | null;
  first_failure: Date | string | null;
  last_failure: Date | string | null;
  example: string;
}

export async function listDead(db: SqlQueryable, q: DeadLetterQuery): Promise<DeadLetterRecord[]> {
  const where = [q.includeReplayed ? 'purged_at IS NULL AND dead_group IS NOT NULL' : `status = 'dead' AND purged_at IS NULL`];
  const params: unknown[] = [];
  const add = (sql: string, value: unknown) => {
    params.push(value);
    where.push(sql.replace('?', `$${params.length}`));
  };
  if (q.group) add(`COALESCE(dead_group, 'ungrouped') = ?`, q.group);
  if (q.queue) add('dead_queue = ?', q.queue);
  if (q.requestId) add(`starts_with(request_id, ?)`, q.requestId);
  params.push(q.limit);
  const rows = await db.query<DeadRow>(
    `SELECT request_id, status, error, attempts, dead_group, dead_queue, dead_first_failure, dead_at, updated_at FROM requests
     WHERE ${where.join(' AND ')} ORDER BY COALESCE(dead_at, updated_at) DESC, request_id LIMIT $${params.length}`,
    params,
  );
  return rows.map((r) => ({
    requestId: r.request_id,
    status: r.status,
    reason: r.error?.reason,
    code: r.error?.code,
    message: r.error?.message,
    attempts: r.attempts === null ? undefined : Number(r.attempts),
    group: r.dead_group ?? 'ungrouped',
    originQueue: r.dead_queue ?? undefined,
    firstFailure: iso(r.dead_first_failure),
    deadAt: iso(r.dead_at),
    updatedAt: iso(r.updated_at) as string,
  }));
}

export async function deadGroups(db: SqlQueryable, q: { queue?: string | undefined } = {}): Promise<DeadGroupRecord[]> {
  const rows = await db.query<GroupRow>(
    `SELECT COALESCE(dead_group, 'ungrouped') AS grp, count(*) AS count, min(error->>'reason') AS reason, min(error->>'message') AS message,
       string_agg(DISTINCT dead_queue, ',') AS queues, min(COALESCE(dead_first_failure, dead_at)) AS first_failure,
       max(COALESCE(dead_at, updated_at)) AS last_failure, min(request_id) AS example
     FROM requests WHERE status = 'dead' AND purged_at IS NULL ${q.queue ? 'AND dead_queue = $1' : ''}
     GROUP BY 1 ORDER BY 2 DESC, 1`,
    q.queue ? [q.queue] : [],
  );
  return rows.map((r) => ({
    group: r.grp,
    count: Number(r.count),
    reason: r.reason ?? undefined,
    message: r.message ?? undefined,
    queues: r.queues ? r.queues.split(',') : [],
    firstFailure: iso(r.first_failure),
    lastFailure: iso(r.last_failure),
    example: r.example,
  }));
}

export async function markPurged(db: SqlQueryable, requestIds: readonly string[]): Promise<number> {
  if (requestIds.length === 0) return 0;
  const rows = await db.query(
    `UPDATE requests SET purged_at = now(), updated_at = now() WHERE request_id = ANY($1::text[]) AND status = 'dead' RETURNING request_id`,
    [[...requestIds]],
  );
  return rows.length;
}

/** An ISO time the store can take (null for anything Date cannot read), so a bad header never fails an upsert. */
export function timeParam(v: string | undefined): string | null {
  if (!v) return null;
  const t = Date.parse(v);
  return Number.isNaN(t) ? null : new Date(t).toISOString();
}

function iso(v: Date | string | null): string | undefined {
  if (v === null) return undefined;
  return v instanceof Date ? v.toISOString() : new Date(v).toISOString();
}
