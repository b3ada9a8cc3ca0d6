import { quoteIdent, type SqlClient, type SqlQueryable } from './sql-client.ts';

/**
 * The schema, as versioned migrations shared by both stores. Append only: a released version is
 * never edited, a change is a new version. Each statement runs on its own (PGlite's extended
 * protocol takes one statement per query).
 */
export interface Migration {
  version: number;
  name: string;
  statements: readonly string[];
}

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'requests',
    statements: [
      `CREATE TABLE requests (
        request_id text PRIMARY KEY,
        status text NOT NULL CHECK (status IN ('queued', 'done', 'dead')),
        result jsonb,
        error jsonb,
        attempts integer,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now()
      )`,
    ],
  },
  {
    version: 2,
    name: 'idempotency keys',
    statements: [
      `CREATE TABLE idempotency_keys (
        key text PRIMARY KEY,
        request_id text NOT NULL,
        fingerprint text NOT NULL,
        state text NOT NULL CHECK (state IN ('pending', 'accepted', 'released')),
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now()
      )`,
    ],
  },
  {
    version: 3,
    name: 'retention indexes',
    statements: [
      // The sweep deletes ended requests by age, and idempotency keys by age of first use.
      `CREATE INDEX IF NOT EXISTS requests_ended_updated_at ON requests (updated_at) WHERE status IN ('done', 'dead')`,
      'CREATE INDEX IF NOT EXISTS idempotency_keys_created_at ON idempotency_keys (created_at)',
    ],
  },
  {
    version: 4,
    name: 'dead-letter facts',
    statements: [
      `ALTER TABLE requests
        ADD COLUMN dead_group text,
        ADD COLUMN dead_queue text,
        ADD COLUMN dead_first_failure timestamptz,
        ADD COLUMN dead_at timestamptz,
        ADD COLUMN purged_at timestamptz`,
      `CREATE INDEX requests_dead_group ON requests (dead_group) WHERE status = 'dead'`,
    ],
  },
];

/**
 * Applies the migrations a database lacks, in one transaction under an advisory lock, so API
 * replicas starting together against one PostgreSQL do not race (concurrent `CREATE SCHEMA IF NOT
 * EXISTS` alone can fail with a unique violation). Returns the versions applied.
 */
export async function migrate(client: SqlClient, migrations: readonly Migration[] = MIGRATIONS): Promise<number[]> {
  return client.transaction(async (tx) => {
    await tx.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`warren-migrations:${client.schema}`]);
    if (client.schema !== 'public') await tx.query(`CREATE SCHEMA IF NOT EXISTS ${quoteIdent(client.schema)}`);
    await tx.query(`CREATE TABLE IF NOT EXISTS warren_migrations (
      version integer PRIMARY KEY,
      name text NOT NULL,
      applied_at timestamptz NOT NULL DEFAULT now()
    )`);
    const done = new Set((await tx.query<{ version: number }>('SELECT version FROM warren_migrations')).map((r) => Number(r.version)));
    const applied: number[] = [];
    for (const m of [...migrations].sort((a, b) => a.version - b.version)) {
      if (done.has(m.version)) continue;
      await applyOne(tx, m);
      applied.push(m.version);
    }
    return applied;
  });
}

async function applyOne(tx: SqlQueryable, m: Migration): Promise<void> {
  for (const sql of m.statements) await tx.query(sql);
  await tx.query('INSERT INTO warren_migrations (version, name) VALUES ($1, $2)', [m.version, m.name]);
}
