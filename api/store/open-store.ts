import type { Logger } from '../../core/index.ts';
import { migrate } from './migrations.ts';
import { openPgClient } from './pg-client.ts';
import { openPgliteClient } from './pglite-client.ts';
import type { ResultStore, StoreRetention } from './result-store.ts';
import type { SqlClient } from './sql-client.ts';
import { SqlResultStore } from './sql-store.ts';

export interface OpenStoreOptions {
  /** PostgreSQL when set, else the embedded store. */
  databaseUrl?: string | undefined;
  databaseSchema?: string | undefined;
  dataDir: string;
  logger: Logger;
  /** Defaults: core's DEFAULT_RETENTION (ended requests 7 days, idempotency keys 24 hours, sweep every 10 minutes). */
  retention?: Partial<StoreRetention> | undefined;
  /** For tests: the clock retention cutoffs are computed from. */
  clock?: () => number;
}

/** Opens the configured store and brings its schema up to date. */
export async function openResultStore(options: OpenStoreOptions): Promise<ResultStore> {
  const log = options.logger.child({ component: 'store' });
  const client: SqlClient = options.databaseUrl
    ? openPgClient({ url: options.databaseUrl, schema: options.databaseSchema, logger: options.logger })
    : await openPgliteClient(options.dataDir);
  try {
    const applied = await migrate(client);
    log.info({ store: client.description, migrationsApplied: applied }, 'store ready');
  } catch (err) {
    await client.close().catch((closeErr: unknown) => log.warn({ err: closeErr }, 'store close failed'));
    throw err;
  }
  return new SqlResultStore(client, {
    retention: options.retention,
    ...(options.clock ? { clock: options.clock } : {}),
    onSweepError: (err) => log.warn({ err }, 'store retention sweep failed; retrying at the next interval'),
  });
}
