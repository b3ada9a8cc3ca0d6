import { randomBytes } from 'node:crypto';
import pg from 'pg';

/**
 * Runs `fn` with a PostgreSQL schema of its own (warren_bench_<random>), which the API creates on
 * its first migration, and drops it afterwards with everything in it. Undefined (and `fn` not
 * run) when the database does not answer: the caller reports the store as not measured.
 */
export async function withPgSchema<T>(databaseUrl: string, fn: (schema: string) => Promise<T>): Promise<{ value: T } | { skipped: string }> {
  const schema = `warren_bench_${randomBytes(4).toString('hex')}`;
  const client = new pg.Client({ connectionString: databaseUrl, connectionTimeoutMillis: 3000 });
  try {
    await client.connect();
  } catch (err) {
    // The message only: a connection error can quote the URL, and a URL can hold a password.
    return { skipped: `PostgreSQL did not answer (${(err as NodeJS.ErrnoException).code ?? 'error'})` };
  }
  try {
    return { value: await fn(schema) };
  } finally {
    await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`).catch(() => undefined);
    await client.end().catch(() => undefined);
  }
}
