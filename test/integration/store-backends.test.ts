import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { suite, type Test } from 'uvu';
import * as assert from 'uvu/assert';
import { type OpenStoreOptions, openResultStore, type ResultStore } from '../../api/index.ts';
import { createLogger, PermanentError } from '../../core/index.ts';
import { loud, waitFor, within } from '../helpers/broker.ts';

/**
 * One store contract, run against both backends: the embedded PGlite store and PostgreSQL.
 * Each backend provides `open()` (same data every time) and its own setup and cleanup.
 */
interface Backend {
  name: string;
  setup(): Promise<void>;
  open(options?: Pick<OpenStoreOptions, 'retention' | 'clock'>): Promise<ResultStore>;
  cleanup(): Promise<void>;
}

const logger = createLogger({ name: 'test', level: process.env.LOG_LEVEL ?? 'silent' });
const T = 20_000;
/**
 * Opening a store: a new embedded one may run PGlite's initdb (~9 CPU-seconds), which took over
 * 20 s once in CI with the chaos lanes beside it. The bound only ends a hang.
 */
const OPEN_T = 90_000;

function defineStoreSuite(backend: Backend): Test<{ store?: ResultStore }> {
  const s = suite<{ store?: ResultStore }>(`store contract: ${backend.name}`, {});
  const store = (ctx: { store?: ResultStore }) => {
    if (!ctx.store) throw new Error('store not open');
    return ctx.store;
  };
  const id = () => `req-${randomBytes(6).toString('hex')}`;

  s.before(
    loud(async (ctx) => {
      await within(T, 'backend setup', backend.setup());
      ctx.store = await within(OPEN_T, 'open store', backend.open());
    }),
  );
  s.after(async (ctx) => {
    await ctx.store?.close();
    await within(T, 'backend cleanup', backend.cleanup());
  });

  s('concurrent accepts are all stored (group commit), duplicates once, done never downgraded', async (ctx) => {
    const ids = Array.from({ length: 300 }, id);
    const done = ids[7] as string;
    await store(ctx).recordResult({ requestId: done, result: 'already', attempts: 1 });
    // Every id twice, all at once: the batches hold duplicates and a row that is already done.
    await within(T, 'accepts', Promise.all([...ids, ...ids].map((r) => store(ctx).accept(r))));
    const rows = await Promise.all(ids.map((r) => store(ctx).get(r)));
    assert.is(rows.filter((r) => r?.status === 'queued').length, 299);
    assert.is(rows[7]?.status, 'done');
    assert.is(rows[7]?.result, 'already');
  });

  s('concurrent results, duplicates in one batch: one row each, exactly one write reported per id', async (ctx) => {
    const ids = Array.from({ length: 200 }, id);
    const applied = await within(
      T,
      'results',
      Promise.all([...ids, ...ids].map((r, i) => store(ctx).recordResult({ requestId: r, result: { n: i < 200 ? 'first' : 'second' }, attempts: 1 }))),
    );
    assert.is(applied.filter(Boolean).length, 200);
    const rows = await Promise.all(ids.map((r) => store(ctx).get(r)));
    assert.ok(rows.every((r) => r?.status === 'done' && (r.result as { n: string }).n === 'first'));
    // A later duplicate changes nothing and says so.
    assert.is(await store(ctx).recordResult({ requestId: ids[0] as string, result: { n: 'late' } }), false);
    assert.equal((await store(ctx).get(ids[0] as string))?.result, { n: 'first' });
  });

  s('accept inserts a queued row once; unknown ids are absent', async (ctx) => {
    const r = id();
    await store(ctx).accept(r);
    const first = await store(ctx).get(r);
    assert.is(first?.status, 'queued');
    assert.ok(first && !Number.isNaN(Date.parse(first.createdAt)));
    await store(ctx).accept(r);
    assert.equal(await store(ctx).get(r), first);
    assert.is(await store(ctx).get(id()), undefined);
  });

  s('a result makes the request done, with result and attempts', async (ctx) => {
    const r = id();
    await store(ctx).accept(r);
    assert.is(await store(ctx).recordResult({ requestId: r, result: 'my-data-processed', attempts: 2 }), true);
    const rec = await store(ctx).get(r);
    assert.is(rec?.status, 'done');
    assert.is(rec?.result, 'my-data-processed');
    assert.is(rec?.attempts, 2);
    assert.is(rec?.error, undefined);
  });

  s('a result that arrives before accept is kept: accept never downgrades done', async (ctx) => {
    const r = id();
    await store(ctx).recordResult({ requestId: r, result: { n: 1 }, attempts: 1 });
    await store(ctx).accept(r);
    const rec = await store(ctx).get(r);
    assert.is(rec?.status, 'done');
    assert.equal(rec?.result, { n: 1 });
  });

  s('a duplicate result leaves the first one, unchanged', async (ctx) => {
    const r = id();
    await store(ctx).accept(r);
    await store(ctx).recordResult({ requestId: r, result: 'first', attempts: 1 });
    const before = await store(ctx).get(r);
    assert.is(await store(ctx).recordResult({ requestId: r, result: 'second', attempts: 3 }), false);
    assert.equal(await store(ctx).get(r), before);
  });

  s('dead wins over queued, with reason, code, message and attempts', async (ctx) => {
    const r = id();
    await store(ctx).accept(r);
    assert.is(await store(ctx).recordDead(r, { reason: 'max-attempts', code: 'E_BOOM', message: 'boom', attempts: 4 }), true);
    const rec = await store(ctx).get(r);
    assert.is(rec?.status, 'dead');
    assert.equal(rec?.error, { reason: 'max-attempts', code: 'E_BOOM', message: 'boom' });
    assert.is(rec?.attempts, 4);
    await store(ctx).accept(r);
    assert.is((await store(ctx).get(r))?.status, 'dead');
  });

  s('done is final: a later dead event changes nothing', async (ctx) => {
    const r = id();
    await store(ctx).recordResult({ requestId: r, result: 'ok', attempts: 1 });
    assert.is(await store(ctx).recordDead(r, { reason: 'delivery-limit', attempts: 11 }), false);
    const rec = await store(ctx).get(r);
    assert.is(rec?.status, 'done');
    assert.is(rec?.result, 'ok');
  });

  s('markQueued moves dead back to queued, and nothing else', async (ctx) => {
    const dead = id();
    await store(ctx).recordDead(dead, { reason: 'permanent' });
    assert.is(await store(ctx).markQueued(dead), true);
    const rec = await store(ctx).get(dead);
    assert.is(rec?.status, 'queued');
    assert.is(rec?.error, undefined);
    assert.is(await store(ctx).markQueued(dead), false);
    const done = id();
    await store(ctx).recordResult({ requestId: done, result: 1 });
    assert.is(await store(ctx).markQueued(done), false);
    assert.is((await store(ctx).get(done))?.status, 'done');
    assert.is(await store(ctx).markQueued(id()), false);
  });

  s('idempotency keys: owner, busy, accepted, mismatch', async (ctx) => {
    const key = `key-${id()}`;
    const r = id();
    assert.equal(await store(ctx).claimIdempotencyKey({ key, requestId: r, fingerprint: 'f1', staleMs: 60_000 }), { kind: 'owner', requestId: r });
    assert.equal(await store(ctx).claimIdempotencyKey({ key, requestId: id(), fingerprint: 'f1', staleMs: 60_000 }), { kind: 'busy', requestId: r });
    await store(ctx).accept(r, { idempotencyKey: key });
    assert.is((await store(ctx).get(r))?.status, 'queued');
    assert.equal(await store(ctx).claimIdempotencyKey({ key, requestId: id(), fingerprint: 'f1', staleMs: 60_000 }), { kind: 'accepted', requestId: r });
    assert.equal(await store(ctx).claimIdempotencyKey({ key, requestId: id(), fingerprint: 'f2', staleMs: 60_000 }), { kind: 'mismatch' });
    // An accepted key is never released.
    await store(ctx).releaseIdempotencyKey(key, r, false);
    assert.equal(await store(ctx).claimIdempotencyKey({ key, requestId: id(), fingerprint: 'f1', staleMs: 60_000 }), { kind: 'accepted', requestId: r });
  });

  s('idempotency keys: a failed publish frees the key, a timed-out one keeps its requestId', async (ctx) => {
    const key = `key-${id()}`;
    const r1 = id();
    await store(ctx).claimIdempotencyKey({ key, requestId: r1, fingerprint: 'f', staleMs: 60_000 });
    await store(ctx).releaseIdempotencyKey(key, r1, false);
    const r2 = id();
    assert.equal(await store(ctx).claimIdempotencyKey({ key, requestId: r2, fingerprint: 'f', staleMs: 60_000 }), { kind: 'owner', requestId: r2 });
    await store(ctx).releaseIdempotencyKey(key, r2, true);
    assert.equal(await store(ctx).claimIdempotencyKey({ key, requestId: id(), fingerprint: 'f', staleMs: 60_000 }), { kind: 'owner', requestId: r2 });
  });

  s('idempotency keys: a stale pending claim is taken over with the same requestId', async (ctx) => {
    const key = `key-${id()}`;
    const r = id();
    await store(ctx).claimIdempotencyKey({ key, requestId: r, fingerprint: 'f', staleMs: 60_000 });
    assert.equal(await store(ctx).claimIdempotencyKey({ key, requestId: id(), fingerprint: 'f', staleMs: 60_000 }), { kind: 'busy', requestId: r });
    // A busy answer changes nothing: ask until the claim is 10 ms old by the store's clock.
    const taken = await waitFor(
      'the pending claim taken over once older than staleMs',
      async () => {
        const claim = await store(ctx).claimIdempotencyKey({ key, requestId: id(), fingerprint: 'f', staleMs: 10 });
        return claim.kind === 'busy' ? undefined : claim;
      },
      5000,
      5,
    );
    assert.equal(taken, { kind: 'owner', requestId: r });
  });

  s('idempotency keys: concurrent claims have exactly one owner', async (ctx) => {
    const key = `key-${id()}`;
    const claims = await Promise.all(
      Array.from({ length: 6 }, () => store(ctx).claimIdempotencyKey({ key, requestId: id(), fingerprint: 'f', staleMs: 60_000 })),
    );
    const owners = claims.filter((c) => c.kind === 'owner');
    assert.is(owners.length, 1);
    const owner = owners[0];
    for (const c of claims) if (c.kind === 'busy' && owner?.kind === 'owner') assert.is(c.requestId, owner.requestId);
    assert.is(claims.filter((c) => c.kind === 'busy').length, 5);
  });

  s('data the store refuses (\\u0000 in a JSON string) is a permanent error; the store goes on', async (ctx) => {
    const r = id();
    const err = await store(ctx)
      .recordResult({ requestId: r, result: 'nul\u0000byte', attempts: 1 })
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    assert.ok(err instanceof PermanentError, `expected a PermanentError, got ${String(err)}`);
    assert.is(err.code, 'STORE_DATA_REJECTED');
    assert.is(await store(ctx).get(r), undefined);
    await store(ctx).accept(r);
    assert.is((await store(ctx).get(r))?.status, 'queued');
  });

  s('a refused result fails alone: the others in its batch are stored', async (ctx) => {
    const ids = Array.from({ length: 50 }, id);
    const outcomes = await within(
      T,
      'results',
      Promise.all(
        ids.map((r, i) =>
          store(ctx)
            .recordResult({ requestId: r, result: i === 20 ? 'nul\u0000byte' : { i }, attempts: 1 })
            .then(
              (applied) => (applied ? 'applied' : 'not applied'),
              (e: unknown) => (e instanceof PermanentError ? 'refused' : String(e)),
            ),
        ),
      ),
    );
    assert.is(outcomes[20], 'refused');
    assert.equal(
      outcomes.filter((_, i) => i !== 20),
      ids.slice(1).map(() => 'applied'),
    );
    const rows = await Promise.all(ids.map((r) => store(ctx).get(r)));
    assert.is(rows.filter((r) => r?.status === 'done').length, 49);
  });

  s('data survives closing and reopening the store', async (ctx) => {
    const r = id();
    await store(ctx).recordResult({ requestId: r, result: { kept: true }, attempts: 1 });
    await store(ctx).close();
    ctx.store = undefined;
    ctx.store = await within(OPEN_T, 'reopen store', backend.open());
    const rec = await store(ctx).get(r);
    assert.is(rec?.status, 'done');
    assert.equal(rec?.result, { kept: true });
  });

  const HOUR = 3_600_000;
  /** Reopens the store with a clock the test moves (and no sweep timer unless asked). */
  async function reopen(ctx: { store?: ResultStore }, clock: () => number, sweepIntervalMs = 0): Promise<ResultStore> {
    await ctx.store?.close();
    ctx.store = undefined;
    ctx.store = await within(OPEN_T, 'reopen store', backend.open({ retention: { requestsMs: HOUR, idempotencyKeysMs: 2 * HOUR, sweepIntervalMs }, clock }));
    return ctx.store;
  }

  s('retention: done rows and purged dead rows older than the retention are deleted; queued, recent and still-dead rows stay', async (ctx) => {
    let now = Date.now();
    const st = await reopen(ctx, () => now);
    const [done, dead, purged, queued] = [id(), id(), id(), id()];
    await st.recordResult({ requestId: done, result: 'r', attempts: 1 });
    await st.recordDead(dead, { reason: 'permanent' });
    await st.recordDead(purged, { reason: 'permanent' });
    assert.is(await st.markPurged([purged]), 1);
    await st.accept(queued);
    await st.purgeExpired();
    assert.is((await st.get(done))?.status, 'done', 'younger than the retention: kept');
    now += 2 * HOUR;
    const counts = await st.purgeExpired();
    assert.ok(counts.requests >= 2, `deleted ${counts.requests}`);
    assert.is(await st.get(done), undefined);
    assert.is(await st.get(purged), undefined, 'its dead letter is gone: the row goes too');
    assert.is((await st.get(dead))?.status, 'dead', 'its dead letter is still kept: the console and dlq list show it');
    assert.is((await st.get(queued))?.status, 'queued', 'a queued request has not ended: never deleted');
  });

  s('idempotency keys expire after their window: the same key starts a new request; the sweep deletes it', async (ctx) => {
    let now = Date.now();
    const st = await reopen(ctx, () => now);
    const key = `key-${randomBytes(4).toString('hex')}`;
    const [r1, r2, r3] = [id(), id(), id()];
    assert.equal(await st.claimIdempotencyKey({ key, requestId: r1, fingerprint: 'A', staleMs: 60_000 }), { kind: 'owner', requestId: r1 });
    await st.accept(r1, { idempotencyKey: key });
    assert.equal(await st.claimIdempotencyKey({ key, requestId: r2, fingerprint: 'A', staleMs: 60_000 }), { kind: 'accepted', requestId: r1 });
    assert.equal(await st.claimIdempotencyKey({ key, requestId: r2, fingerprint: 'B', staleMs: 60_000 }), { kind: 'mismatch' });
    now += 2 * HOUR + 60_000;
    assert.equal(
      await st.claimIdempotencyKey({ key, requestId: r2, fingerprint: 'B', staleMs: 60_000 }),
      { kind: 'owner', requestId: r2 },
      'past the window the key is new again, whatever its old body',
    );
    now += 2 * HOUR + 60_000;
    assert.ok((await st.purgeExpired()).idempotencyKeys >= 1);
    assert.equal(await st.claimIdempotencyKey({ key, requestId: r3, fingerprint: 'C', staleMs: 60_000 }), { kind: 'owner', requestId: r3 });
  });

  s('the store sweeps by itself at its interval', async (ctx) => {
    const st = await reopen(ctx, () => Date.now() + 3 * HOUR, 25);
    const r = id();
    await st.recordResult({ requestId: r, result: 'old', attempts: 1 });
    await waitFor(`${r} deleted by the sweep`, async () => ((await st.get(r)) === undefined ? true : undefined), 10_000);
  });

  return s;
}

// --- embedded (PGlite) ---------------------------------------------------------------------------
let dir = '';
const pglite: Backend = {
  name: 'pglite',
  setup: async () => {
    dir = mkdtempSync(join(tmpdir(), 'warren-store-'));
  },
  open: (options) => openResultStore({ dataDir: dir, logger, ...options }),
  cleanup: async () => rmSync(dir, { recursive: true, force: true }),
};

// --- PostgreSQL -------------------------------------------------------------------------------------
const PG_URL = process.env.TEST_DATABASE_URL ?? process.env.DATABASE_URL ?? 'postgresql://postgres@127.0.0.1:5432/test';
const schema = `warren_test_${randomBytes(4).toString('hex')}`;
const postgres: Backend = {
  name: 'postgres',
  setup: async () => {},
  open: (options) => openResultStore({ databaseUrl: PG_URL, databaseSchema: schema, dataDir: '', logger, ...options }),
  cleanup: async () => {
    const c = new pg.Client({ connectionString: PG_URL });
    await c.connect();
    try {
      await c.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    } finally {
      await c.end();
    }
  },
};

/**
 * PostgreSQL runs the accepts' batch and a results batch on two connections at once, and a result
 * can come back while its request's accept is still being written (the row is written while the
 * publish waits for its confirm). Two batches that insert the same ids in different orders
 * deadlock: PostgreSQL finds it after deadlock_timeout (1 s) and fails one of them, a second's
 * stall and an error (seen in the sustained bench at 1500/s). Both write in request_id order.
 */
const lockOrder = suite('store on PostgreSQL: accepts and results batches over the same ids do not deadlock');

interface Gated {
  st: ResultStore;
  /** A third connection, on the store's schema: it holds a row in an open transaction. */
  gate: pg.Client;
  /** Statements of the store's batches (INSERT or DELETE on requests) now waiting on a lock. */
  lockWaits: () => Promise<number>;
}

/** A store on PostgreSQL in a schema of its own and a gate connection beside it; both gone after. */
async function withGate(test: (g: Gated) => Promise<void>): Promise<void> {
  const lockSchema = `warren_test_${randomBytes(4).toString('hex')}`;
  const st = await within(OPEN_T, 'open store', openResultStore({ databaseUrl: PG_URL, databaseSchema: lockSchema, dataDir: '', logger }));
  const gate = new pg.Client({ connectionString: PG_URL, options: `-c search_path=${lockSchema}` });
  await gate.connect();
  // Statistics views are snapshotted once per transaction: the gate (in one) would see none of it.
  const lockWaits = async () =>
    Number(
      (
        await gate
          .query(`SELECT pg_stat_clear_snapshot()`)
          .then(() => gate.query(`SELECT count(*) AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query ~ '^(INSERT INTO|DELETE FROM) requests'`))
      ).rows[0].n,
    );
  try {
    await test({ st, gate, lockWaits });
  } finally {
    await gate.end().catch(() => undefined);
    await st.close();
    const c = new pg.Client({ connectionString: PG_URL });
    await c.connect();
    await c.query(`DROP SCHEMA IF EXISTS "${lockSchema}" CASCADE`).finally(() => c.end());
  }
}

/**
 * Starts the second batch while the first waits on the gate, and tells whether it was written
 * or came to wait on a lock as well (a row the first batch holds): 'written' or 'waiting'.
 */
async function secondBatch(label: string, lockWaits: () => Promise<number>, start: () => Promise<unknown>) {
  let done = false;
  const batch = start().then(() => {
    done = true;
  });
  const seen = await waitFor(
    `the ${label} batch written, or waiting on a lock`,
    async () => (done ? 'written' : (await lockWaits()) >= 2 ? 'waiting' : undefined),
    10_000,
    20,
  );
  return { seen, batch };
}

for (const [first, second] of [
  ['results', 'accepts'],
  ['accepts', 'results'],
] as const) {
  lockOrder(`a batch of ${first} waiting on a row lock holds no row a batch of ${second} needs`, () =>
    withGate(async ({ st, gate, lockWaits }) => {
      const write = (kind: 'accepts' | 'results', ids: string[]) =>
        kind === 'accepts' ? Promise.all(ids.map((r) => st.accept(r))) : Promise.all(ids.map((r) => st.recordResult({ requestId: r, result: r, attempts: 1 })));
      const tag = randomBytes(4).toString('hex');
      const [g, m, z] = [`g-${tag}`, `m-${tag}`, `z-${tag}`];
      // The gate holds g's row uncommitted: a batch that inserts g waits there until it ends.
      await gate.query('BEGIN');
      await gate.query(`INSERT INTO requests (request_id, status) VALUES ($1, 'queued')`, [g]);
      // The first batch, given as [z, g, m]: written in that order it would hold z while it waits on g.
      const firstBatch = write(first, [z, g, m]);
      await waitFor(`the ${first} batch waiting on the gate`, async () => ((await lockWaits()) >= 1 ? true : undefined), 10_000, 20);
      // The second, [m, z]: it takes m, then needs z. Were z held by the waiting first batch, the
      // gate's end would let that one go on to m, and each would wait on the other.
      const { seen, batch } = await secondBatch(second, lockWaits, () => write(second, [m, z]));
      await gate.query('ROLLBACK');
      await within(T, 'both batches', Promise.all([firstBatch, batch]));
      assert.is(seen, 'written', `the ${second} batch waited on a row the ${first} batch held`);
      assert.equal(
        (await Promise.all([g, m, z].map((r) => st.get(r)))).map((r) => r?.status),
        first === 'accepts' ? ['queued', 'done', 'done'] : ['done', 'done', 'done'],
      );
    }),
  );
}

/**
 * A request whose publish failed is forgotten (its queued row deleted) in a batch that can run
 * beside a results batch over the same ids: a publish answered as failed may still have reached
 * the queue, and its result come back. The DELETE takes its rows in request_id order too, not in
 * the order it finds them (a sequential scan finds them as they were written).
 */
lockOrder('a batch of forgets waiting on a row lock holds no row a batch of results needs', () =>
  withGate(async ({ st, gate, lockWaits }) => {
    const tag = randomBytes(4).toString('hex');
    const [g, m, z] = [`g-${tag}`, `m-${tag}`, `z-${tag}`];
    // Written z first, then g and m: a scan in the table's order meets z before g.
    await st.accept(z);
    await Promise.all([g, m].map((r) => st.accept(r)));
    // The gate holds g's row: a forget batch that reaches g waits there until the gate ends.
    await gate.query('BEGIN');
    await gate.query(`UPDATE requests SET updated_at = now() WHERE request_id = $1`, [g]);
    const forgets = Promise.all([z, g, m].map((r) => st.forgetQueued(r)));
    await waitFor('the forget batch waiting on the gate', async () => ((await lockWaits()) >= 1 ? true : undefined), 10_000, 20);
    // Results for m and z: the upsert takes m, then z. Were z held by the waiting forget batch,
    // the gate's end would let that batch go on to m, and each would wait on the other.
    const { seen, batch } = await secondBatch('results', lockWaits, () =>
      Promise.all([m, z].map((r) => st.recordResult({ requestId: r, result: r, attempts: 1 }))),
    );
    await gate.query('ROLLBACK');
    await within(T, 'both batches', Promise.all([forgets, batch]));
    assert.is(seen, 'written', 'the results batch waited on a row the forget batch held');
    // g was forgotten; m and z were done before the forget reached them, and done rows stay.
    assert.equal(
      (await Promise.all([g, m, z].map((r) => st.get(r)))).map((r) => r?.status),
      [undefined, 'done', 'done'],
    );
  }),
);

defineStoreSuite(pglite).run();
defineStoreSuite(postgres).run();
lockOrder.run();
