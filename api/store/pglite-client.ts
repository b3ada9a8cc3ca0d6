import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { ConfigError } from '../../core/index.ts';
import type { SerializedError, StoreCall, StoreReply, StoreThreadData } from './pglite-thread.ts';
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
    return await PgliteThreadClient.start(root, lock);
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

/**
 * The store thread's entry. Worker threads do not inherit the tsx loader, so from the TypeScript
 * sources the thread starts at a .mjs that registers it; compiled, the thread runs its .js.
 */
const THREAD_ENTRY = import.meta.url.endsWith('.ts') ? new URL('./pglite-thread.mjs', import.meta.url) : new URL('./pglite-thread.js', import.meta.url);

const INITDB = fileURLToPath(new URL('./pglite-initdb.mjs', import.meta.url));

/** How long a new folder's initdb may take (7-15 s on a loaded 2-core machine). */
const INITDB_DEADLINE_MS = 180_000;

/** Runs PGlite's initdb on a new folder in a child process, which gives back all it used when it exits. */
function initdb(dir: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [INITDB, dir], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      stderr = (stderr + d).slice(-4000);
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), INITDB_DEADLINE_MS);
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(new Error(`could not start the embedded store's initdb for ${dir}: ${err.message}`));
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve();
      else reject(new Error(`creating the embedded store in ${dir} failed (${signal ?? `exit code ${code}`}): ${stderr.trim() || 'no output'}`));
    });
  });
}

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

/**
 * PGlite on a worker thread of its own (pglite-thread.ts): queries and transactions go over as
 * messages, so the store's SQL runs beside the event loop, not on it (it was a fifth of the API's
 * CPU under load, all of it blocking). The thread keeps the process alive only while calls are
 * waiting for it.
 */
class PgliteThreadClient implements SqlClient {
  readonly schema = 'public';
  readonly description: string;
  private readonly worker: Worker;
  private readonly lock: Lock;
  private readonly pending = new Map<number, { resolve: (rows: unknown[]) => void; reject: (err: Error) => void }>();
  private nextId = 1;
  /** Set once the thread has stopped: every later call fails with it. */
  private stopped: Error | undefined;

  private constructor(worker: Worker, root: string, lock: Lock) {
    this.worker = worker;
    this.lock = lock;
    this.description = `pglite ${root}`;
    worker.on('message', (reply: StoreReply) => this.settle(reply));
    worker.on('error', (err) => this.stop(new Error(`the embedded store's thread failed: ${err.message}`, { cause: err })));
    worker.on('exit', (code) => this.stop(new Error(`the embedded store's thread exited (code ${code})`)));
  }

  /**
   * Starts the thread on `root/store` and waits until PGlite is open there. A new folder is
   * created first by a process of its own (pglite-initdb.mjs), so the API never holds what
   * PGlite's initdb leaves behind.
   */
  static async start(root: string, lock: Lock): Promise<PgliteThreadClient> {
    const dir = join(root, 'store');
    if (!existsSync(join(dir, 'PG_VERSION'))) await initdb(dir);
    const worker = await PgliteThreadClient.open({ dir });
    worker.unref();
    return new PgliteThreadClient(worker, root, lock);
  }

  /** A store thread on `data.dir`, once PGlite has opened there. */
  private static async open(data: StoreThreadData): Promise<Worker> {
    const worker = new Worker(THREAD_ENTRY, { workerData: data });
    const opened = new Promise<void>((resolve, reject) => {
      const onExit = (code: number) => reject(new Error(`the embedded store's thread exited (code ${code}) while opening ${data.dir}`));
      worker.once('error', reject);
      worker.once('exit', onExit);
      worker.once('message', (reply: StoreReply) => {
        worker.off('error', reject);
        worker.off('exit', onExit);
        if (reply.ok) resolve();
        else reject(deserialize(reply.error));
      });
    });
    try {
      await opened;
    } catch (err) {
      await worker.terminate();
      throw err;
    }
    return worker;
  }

  query<R extends object>(sql: string, params: readonly unknown[] = []): Promise<R[]> {
    return this.call({ op: 'query', sql, params: [...params] }) as Promise<R[]>;
  }

  async transaction<T>(fn: (tx: SqlQueryable) => Promise<T>): Promise<T> {
    const tx = this.nextId; // the begin call's id names the transaction
    await this.call({ op: 'begin' });
    let result: T;
    try {
      result = await fn({
        query: <R extends object>(sql: string, params: readonly unknown[] = []) => this.call({ op: 'query', sql, params: [...params], tx }) as Promise<R[]>,
      });
    } catch (err) {
      await this.call({ op: 'end', tx, commit: false }).catch(() => undefined);
      throw err;
    }
    await this.call({ op: 'end', tx, commit: true });
    return result;
  }

  async close(): Promise<void> {
    try {
      if (!this.stopped) await this.call({ op: 'close' });
    } finally {
      this.stop(new Error('the embedded store is closed'));
      await this.worker.terminate();
      this.lock.release();
    }
  }

  private call(call: DistributiveOmit<StoreCall, 'id'>): Promise<unknown[]> {
    if (this.stopped) return Promise.reject(this.stopped);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      if (this.pending.size === 0) this.worker.ref();
      this.pending.set(id, { resolve, reject });
      this.worker.postMessage({ ...call, id });
    });
  }

  private settle(reply: StoreReply): void {
    const waiter = this.pending.get(reply.id);
    if (!waiter) return;
    this.pending.delete(reply.id);
    if (this.pending.size === 0) this.worker.unref();
    if (reply.ok) waiter.resolve(reply.rows ?? []);
    else waiter.reject(deserialize(reply.error));
  }

  private stop(reason: Error): void {
    this.stopped ??= reason;
    for (const waiter of this.pending.values()) waiter.reject(this.stopped);
    this.pending.clear();
  }
}

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

/** The thread's error back as an Error with the driver's fields (`code` is the SQLSTATE). */
function deserialize(e: SerializedError): Error {
  const err = new Error(e.message);
  err.name = e.name;
  return Object.assign(err, e.fields);
}
