/**
 * The little the shared SQL store needs from a driver. PGlite and node-postgres both speak
 * PostgreSQL with $n parameters; these adapters hide only how they connect and return rows.
 */
export interface SqlQueryable {
  query<R extends object>(sql: string, params?: readonly unknown[]): Promise<R[]>;
}

export interface SqlClient extends SqlQueryable {
  /** The schema the tables live in (search_path is set to it). */
  readonly schema: string;
  readonly description: string;
  /** Runs `fn` in one transaction on one connection; rolls back when it throws. */
  transaction<T>(fn: (tx: SqlQueryable) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

/** A SQLSTATE code from either driver's error, when it has one. */
export function sqlStateOf(err: unknown): string | undefined {
  const code = typeof err === 'object' && err !== null ? (err as { code?: unknown }).code : undefined;
  return typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) ? code : undefined;
}

/** Quotes an identifier that was already validated as a plain lower-case name. */
export function quoteIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}
