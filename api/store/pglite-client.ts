import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { ConfigError } from '../../core/index.ts';
import type { SqlClient, SqlQueryable } from './sql-client.ts';

/**
 * The embedded store: PostgreSQL compiled to WASM, its files in `<DATA_DIR>/store`. PGlite is a
 * single-process database: two processes on one folder would corrupt it, so a lock file with the
 * owner's pid guards it (share a store between replicas through DATABASE_URL instead).
 */
export async function openPgliteClient(dataDir: string): Promise<SqlClient> {
  const root = resolve(dataDir);
  mkdirSync(root, { recursive: true });
  const lock = acquireLock(join(root, 'store.lock'));
  try {
    const db = await PGlite.create(join(root, 'store'));
    return new PgliteClient(db, root, lock);
  } catch (err) {
    lock.release();
    throw err;
  }
}

interface Lock {
  release(): void;
}

/** Lock paths held by this process: a pid check alone cannot tell our own stale lock from a live one. */
const heldLocks = new Set<string>();

function acquireLock(path: string): Lock {
  if (heldLocks.has(path)) throw new ConfigError('DATA_DIR', `${path} is already open in this process`);
  try {
    writeFileSync(path, String(process.pid), { flag: 'wx' });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    const owner = Number(readFileSync(path, 'utf8').trim());
    if (owner !== process.pid && isAlive(owner)) {
      throw new ConfigError(
        'DATA_DIR',
        `the embedded store in ${path.replace(/store\.lock$/, '')} is in use by process ${owner}; stop it, or set DATABASE_URL to share a PostgreSQL store between API replicas`,
      );
    }
    // A lock left by a process that died: take it over.
    writeFileSync(path, String(process.pid));
  }
  heldLocks.add(path);
  return {
    release: () => {
      heldLocks.delete(path);
      rmSync(path, { force: true });
    },
  };
}

function isAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

class PgliteClient implements SqlClient {
  readonly schema = 'public';
  readonly description: string;
  private readonly db: PGlite;
  private readonly lock: Lock;

  constructor(db: PGlite, root: string, lock: Lock) {
    this.db = db;
    this.lock = lock;
    this.description = `pglite ${root}`;
  }

  async query<R extends object>(sql: string, params: readonly unknown[] = []): Promise<R[]> {
    return (await this.db.query<R>(sql, [...params])).rows;
  }

  transaction<T>(fn: (tx: SqlQueryable) => Promise<T>): Promise<T> {
    return this.db.transaction((tx) =>
      fn({
        query: async <R extends object>(sql: string, params: readonly unknown[] = []) => (await tx.query<R>(sql, [...params])).rows,
      }),
    );
  }

  async close(): Promise<void> {
    try {
      if (!this.db.closed) await this.db.close();
    } finally {
      this.lock.release();
    }
  }
}
