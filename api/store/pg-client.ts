import pg from 'pg';
import type { Logger } from '../../core/index.ts';
import { quoteIdent, type SqlClient, type SqlQueryable } from './sql-client.ts';

export interface PgClientOptions {
  url: string;
  /** Tables live in this schema (created by the migrations); `public` by default. */
  schema?: string;
  logger: Logger;
  max?: number;
}

/**
 * PostgreSQL through a pg Pool: the store API replicas share. search_path is set per connection,
 * so the shared SQL names bare tables and a test can isolate itself in a schema of its own.
 */
export function openPgClient(options: PgClientOptions): SqlClient {
  return new PgClient(options);
}

class PgClient implements SqlClient {
  readonly schema: string;
  readonly description: string;
  private readonly pool: pg.Pool;

  constructor(options: PgClientOptions) {
    this.schema = options.schema ?? 'public';
    const log = options.logger.child({ component: 'store' });
    this.pool = new pg.Pool({
      connectionString: options.url,
      max: options.max ?? 10,
      options: `-c search_path=${quoteIdent(this.schema)}`,
      // Bounded waits: a request or a consumer must learn that the store is gone, not hang.
      connectionTimeoutMillis: 5000,
      statement_timeout: 10_000,
      query_timeout: 15_000,
    });
    // An idle client's connection dropping (server restart) is emitted on the pool; unhandled,
    // it would crash the process. The pool replaces the client on the next query.
    this.pool.on('error', (err) => log.warn({ err: { message: err.message } }, 'store connection lost'));
    const u = new URL(options.url);
    this.description = `postgres ${u.hostname}:${u.port || 5432}${u.pathname} schema ${this.schema}`;
  }

  async query<R extends object>(sql: string, params: readonly unknown[] = []): Promise<R[]> {
    return (await this.pool.query<R & pg.QueryResultRow>(sql, [...params])).rows;
  }

  async transaction<T>(fn: (tx: SqlQueryable) => Promise<T>): Promise<T> {
    const client = await this.pool.connect();
    let broken: Error | undefined;
    try {
      await client.query('BEGIN');
      const result = await fn({
        query: async <R extends object>(sql: string, params: readonly unknown[] = []) => (await client.query<R & pg.QueryResultRow>(sql, [...params])).rows,
      });
      await client.query('COMMIT');
      return result;
    } catch (err) {
      try {
        await client.query('ROLLBACK');
      } catch (rollbackErr) {
        // The connection is unusable: destroy it rather than return it to the pool.
        broken = rollbackErr as Error;
      }
      throw err;
    } finally {
      client.release(broken);
    }
  }

  close(): Promise<void> {
    return this.pool.end();
  }
}
