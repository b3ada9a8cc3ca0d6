// test-lane: side (PGlite start-ups, 25-145 s in CI runs; nothing shared with the main lane; see scripts/test.js)
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { openPgliteClient, type SqlClient } from '../../api/index.ts';
import { loud, within } from '../helpers/broker.ts';

/**
 * The embedded store runs PGlite on a worker thread of its own. What the message passing must
 * keep: driver errors with their SQLSTATE, transactions that commit or roll back as a whole, and a
 * process that can still exit on its own.
 */
const T = 90_000;
const s = suite<{ dir: string; db?: SqlClient }>('embedded store thread', { dir: '' });

s.before(
  loud(async (ctx) => {
    ctx.dir = mkdtempSync(join(tmpdir(), 'warren-pglite-thread-'));
    ctx.db = await within(T, 'open', openPgliteClient(ctx.dir));
    await ctx.db.query('CREATE TABLE t (k text PRIMARY KEY, n integer NOT NULL)');
  }),
);
s.after(async (ctx) => {
  await ctx.db?.close();
  rmSync(ctx.dir, { recursive: true, force: true });
});

const db = (ctx: { db?: SqlClient }) => {
  if (!ctx.db) throw new Error('store not open');
  return ctx.db;
};

s('rows come back with their types: integers, text, timestamps as Dates, jsonb as values', async (ctx) => {
  const [row] = await db(ctx).query<{ n: number; s: string; at: Date; j: unknown }>(
    `SELECT 41 + $1::int AS n, $2::text AS s, now() AS at, '{"a":[1,null]}'::jsonb AS j`,
    [1, 'x'],
  );
  assert.is(row?.n, 42);
  assert.is(row?.s, 'x');
  assert.ok(row?.at instanceof Date);
  assert.equal(row?.j, { a: [1, null] });
});

s('a failing statement rejects with the SQLSTATE and message, and the store goes on', async (ctx) => {
  const err = await db(ctx)
    .query('SELECT 1 / 0')
    .then(
      () => undefined,
      (e: unknown) => e as Error & { code?: string },
    );
  assert.ok(err instanceof Error);
  assert.is(err.code, '22012');
  assert.match(err.message, /division by zero/);
  assert.equal(await db(ctx).query('SELECT 1 AS ok'), [{ ok: 1 }]);
});

s('a transaction commits as a whole; one that throws leaves nothing behind', async (ctx) => {
  await db(ctx).transaction(async (tx) => {
    await tx.query(`INSERT INTO t VALUES ('a', 1)`);
    await tx.query(`INSERT INTO t VALUES ('b', 2)`);
  });
  const boom = new Error('boom');
  const thrown = await db(ctx)
    .transaction(async (tx) => {
      await tx.query(`INSERT INTO t VALUES ('c', 3)`);
      throw boom;
    })
    .then(
      () => undefined,
      (e: unknown) => e,
    );
  assert.is(thrown, boom);
  // A statement that fails inside the transaction rolls it back too.
  const dup = await db(ctx)
    .transaction(async (tx) => {
      await tx.query(`INSERT INTO t VALUES ('d', 4)`);
      await tx.query(`INSERT INTO t VALUES ('a', 5)`);
    })
    .then(
      () => undefined,
      (e: unknown) => e as { code?: string },
    );
  assert.is(dup?.code, '23505');
  assert.equal(await db(ctx).query('SELECT k, n FROM t ORDER BY k'), [
    { k: 'a', n: 1 },
    { k: 'b', n: 2 },
  ]);
});

s('a query issued while a transaction is open waits for it, and sees its commit', async (ctx) => {
  let release = () => {};
  const gate = new Promise<void>((r) => {
    release = r;
  });
  let inserted: (t: { query: (sql: string) => Promise<unknown> }) => void = () => {};
  const insertedP = new Promise<{ query: (sql: string) => Promise<unknown> }>((r) => {
    inserted = r;
  });
  const tx = db(ctx).transaction(async (t) => {
    await t.query(`INSERT INTO t VALUES ('e', 6)`);
    inserted(t);
    await gate;
  });
  const inTx = await insertedP;
  const outside = db(ctx).query<{ n: number }>(`SELECT n FROM t WHERE k = 'e'`);
  let answered = false;
  void outside.then(() => {
    answered = true;
  });
  // Proof the thread moved on: a query inside the transaction, sent after the outside one, is
  // answered. Had the outside query not waited for the transaction, it would have been answered first.
  await inTx.query('SELECT 1');
  assert.is(answered, false, 'the outside query ran inside the open transaction');
  release();
  await tx;
  assert.equal(await outside, [{ n: 6 }]);
});

s('many concurrent queries each get their own answer', async (ctx) => {
  const answers = await Promise.all(Array.from({ length: 500 }, (_, i) => db(ctx).query<{ i: number }>('SELECT $1::int AS i', [i])));
  assert.ok(answers.every((rows, i) => rows[0]?.i === i));
});

s('an idle store does not keep the process alive; its stale lock is taken over', (ctx) => {
  const dir = join(ctx.dir, 'child');
  const script = join(ctx.dir, 'child.mts');
  writeFileSync(
    script,
    `
    import { openPgliteClient } from ${JSON.stringify(new URL('../../api/index.ts', import.meta.url).href)};
    const db = await openPgliteClient(${JSON.stringify(dir)});
    const [row] = await db.query('SELECT 7 AS n');
    console.log('answered', row.n);
  `,
  );
  // The bound only ends a child kept alive for ever; the child (a new store folder's initdb, then a
  // query) took over 30 s once with the chaos lane running beside it (CI, 2026-12-01).
  const run = () => spawnSync(process.execPath, ['--import', 'tsx', script], { encoding: 'utf8', timeout: 90_000 });
  const first = run();
  assert.is(first.signal, null, 'the process did not exit on its own');
  assert.is(first.status, 0, first.stderr);
  assert.match(first.stdout, /answered 7/);
  assert.ok(existsSync(join(dir, 'store.lock')), 'the never-closed store left its lock');
  const second = run();
  assert.is(second.status, 0, second.stderr);
  assert.match(second.stdout, /answered 7/);
});

s('a new folder is a copy of the initdb template cached per PGlite version; the copies share nothing', async () => {
  const root = mkdtempSync(join(tmpdir(), 'warren-pglite-template-'));
  const asked = process.env.WARREN_CACHE_DIR;
  try {
    process.env.WARREN_CACHE_DIR = join(root, 'cache');
    const a = await within(T, 'open a', openPgliteClient(join(root, 'a')));
    await a.query('CREATE TABLE only_in_a (n integer)');
    await a.close();
    const templates = readdirSync(join(root, 'cache'));
    assert.equal(templates.length, 1, 'one template');
    assert.match(templates[0] ?? '', /^pglite-\d+\.\d+\.\d+/);
    const template = join(root, 'cache', templates[0] as string);
    assert.ok(existsSync(join(template, 'PG_VERSION')));
    // A file only the template holds: the next folder must be made from it.
    writeFileSync(join(template, 'warren-test-marker'), '');
    const b = await within(T, 'open b', openPgliteClient(join(root, 'b')));
    assert.ok(existsSync(join(root, 'b', 'store', 'warren-test-marker')), 'b was not copied from the template');
    const tables = await b.query<{ n: number }>(`SELECT count(*)::int AS n FROM pg_tables WHERE tablename = 'only_in_a'`);
    assert.equal(tables, [{ n: 0 }], "a's table must not be in b");
    await b.close();
    // Off: initdb runs, nothing is cached.
    process.env.WARREN_CACHE_DIR = 'off';
    const c = await within(T, 'open c', openPgliteClient(join(root, 'c')));
    await c.close();
    assert.not.ok(existsSync(join(root, 'c', 'store', 'warren-test-marker')));
    assert.equal(readdirSync(join(root, 'cache')), templates);
  } finally {
    if (asked === undefined) delete process.env.WARREN_CACHE_DIR;
    else process.env.WARREN_CACHE_DIR = asked;
    rmSync(root, { recursive: true, force: true });
  }
});

s('a closed store refuses queries with a clear error', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'warren-pglite-closed-'));
  try {
    const closed = await openPgliteClient(dir);
    await closed.close();
    const err = await closed.query('SELECT 1').then(
      () => undefined,
      (e: unknown) => e as Error,
    );
    assert.match(err?.message ?? '', /closed/);
    assert.not.ok(existsSync(join(dir, 'store.lock')));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

s.run();
