import { openResultStore, type ResultStore } from '../api/index.ts';
import { ConfigError, type Logger } from '../core/index.ts';

export interface DlqStoreEnv {
  DATABASE_URL?: string | undefined;
  DATABASE_SCHEMA?: string | undefined;
  DATA_DIR: string;
}

/**
 * The store, for `dlq list/stats` (browsing without reading a queue) and to move replayed
 * requests dead -> queued. PostgreSQL is shared safely; the embedded store belongs to one process
 * at a time (a lock file), so while `warren api` holds it the command goes on without it and
 * says what that means through `note`.
 */
export async function openStoreIfFree(env: DlqStoreEnv, logger: Logger, note: (why: string) => void): Promise<ResultStore | undefined> {
  try {
    return await openResultStore({ databaseUrl: env.DATABASE_URL, databaseSchema: env.DATABASE_SCHEMA, dataDir: env.DATA_DIR, logger });
  } catch (err) {
    if (!(err instanceof ConfigError) || env.DATABASE_URL) throw err;
    note(err.message);
    return undefined;
  }
}
