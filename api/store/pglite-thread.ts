// The embedded store's own thread: PGlite runs here, so its SQL (WASM, synchronous) never holds
// up the API's event loop. The API's side is PgliteThreadClient in pglite-client.ts; the messages
// are the types below. Started through pglite-thread.mjs, which registers tsx first.
import { parentPort, workerData } from 'node:worker_threads';
import { PGlite, type Transaction } from '@electric-sql/pglite';

/** A call from the client. `id` is echoed in its reply; a transaction's id is its `begin` id. */
export type StoreCall =
  | { id: number; op: 'query'; sql: string; params: unknown[]; tx?: number }
  | { id: number; op: 'begin' }
  | { id: number; op: 'end'; tx: number; commit: boolean }
  | { id: number; op: 'close' };

/** A reply; `id` 0 answers the open. */
export type StoreReply = { id: number; ok: true; rows?: unknown[] } | { id: number; ok: false; error: SerializedError };

/** An error as plain data: structured cloning keeps an Error's message but drops fields like `code`. */
export interface SerializedError {
  name: string;
  message: string;
  fields: Record<string, string | number>;
}

export interface StoreThreadData {
  dir: string;
}

/**
 * PostgreSQL settings on top of PGlite's own. shared_buffers: PGlite's WASM heap starts at
 * 128 MiB and Postgres's default 128 MiB of buffers made it grow past that; with 16 MiB the thread
 * held about 190 MiB instead of 320 on this machine (bench/pglite-memory.ts). The store's working
 * set is small rows looked up by key, and the pages it does not hold are in the OS's cache.
 */
const SETTINGS = ['-c', 'shared_buffers=16MB'];

/** Thrown inside PGlite's transaction callback to make it roll back. */
const ROLLBACK = Symbol('rollback');

function serialize(err: unknown): SerializedError {
  if (!(err instanceof Error)) return { name: 'Error', message: String(err), fields: {} };
  const fields: Record<string, string | number> = {};
  for (const [k, v] of Object.entries(err)) if (typeof v === 'string' || typeof v === 'number') fields[k] = v;
  return { name: err.name, message: err.message, fields };
}

async function serve(): Promise<void> {
  const port = parentPort;
  if (!port) throw new Error('pglite-thread runs as a worker thread');
  const reply = (r: StoreReply) => port.postMessage(r);
  const fail = (id: number, err: unknown) => reply({ id, ok: false, error: serialize(err) });
  const data = workerData as StoreThreadData;
  let db: PGlite;
  try {
    db = await PGlite.create(data.dir, { startParams: [...PGlite.defaultStartParams, ...SETTINGS] });
  } catch (err) {
    fail(0, err);
    return;
  }
  const open = new Map<number, { tx: Transaction; end: (commit: boolean, endId: number) => void }>();

  const begin = (id: number) => {
    let endId = 0;
    db.transaction(async (tx) => {
      const commit = await new Promise<boolean>((resolve) => {
        open.set(id, {
          tx,
          end: (c, e) => {
            endId = e;
            resolve(c);
          },
        });
        reply({ id, ok: true });
      });
      open.delete(id);
      if (!commit) throw ROLLBACK;
    }).then(
      () => reply({ id: endId, ok: true }),
      (err: unknown) => {
        open.delete(id);
        if (err === ROLLBACK) reply({ id: endId, ok: true });
        // Failed before it began (begin's reply not sent yet) or at COMMIT (end's reply due).
        else fail(endId || id, err);
      },
    );
  };

  port.on('message', (call: StoreCall) => {
    switch (call.op) {
      case 'query': {
        const on = call.tx === undefined ? db : open.get(call.tx)?.tx;
        if (!on) {
          fail(call.id, new Error(`transaction ${call.tx} is not open`));
          return;
        }
        on.query(call.sql, call.params).then(
          (res) => reply({ id: call.id, ok: true, rows: res.rows }),
          (err: unknown) => fail(call.id, err),
        );
        return;
      }
      case 'begin':
        begin(call.id);
        return;
      case 'end': {
        const tx = open.get(call.tx);
        if (tx) tx.end(call.commit, call.id);
        else fail(call.id, new Error(`transaction ${call.tx} is not open`));
        return;
      }
      case 'close':
        (db.closed ? Promise.resolve() : db.close()).then(
          () => {
            reply({ id: call.id, ok: true });
            port.close();
          },
          (err: unknown) => fail(call.id, err),
        );
        return;
    }
  });
  reply({ id: 0, ok: true });
}

await serve();
