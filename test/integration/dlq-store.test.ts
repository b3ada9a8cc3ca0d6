import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { openResultStore, type ResultStore } from '../../api/index.ts';
import { createLogger } from '../../core/index.ts';
import { within } from '../helpers/broker.ts';

/**
 * The store's dead-letter queries (what the console and `dlq list/stats` read instead of a queue)
 * on both backends: grouping by fingerprint, a group's history after a replay, the search by
 * requestId prefix, purged requests leaving the lists, and a bad time header never failing a write.
 */
const logger = createLogger({ name: 'test', level: process.env.LOG_LEVEL ?? 'silent' });
const PG_URL = process.env.TEST_DATABASE_URL ?? process.env.DATABASE_URL ?? 'postgresql://postgres@127.0.0.1:5432/test';

function defineSuite(name: string, open: () => Promise<ResultStore>, cleanup: () => Promise<void>) {
  const s = suite<{ store?: ResultStore }>(`dead-letter queries: ${name}`, {});
  const st = (ctx: { store?: ResultStore }) => ctx.store as ResultStore;
  const prefix = `dl-${randomBytes(3).toString('hex')}`;
  s.before(async (ctx) => {
    try {
      ctx.store = await within(60_000, 'open store', open());
    } catch (err) {
      console.error(`${name}: open failed:`, err);
      throw err;
    }
  });
  s.after(async (ctx) => {
    await ctx.store?.close();
    await cleanup();
  });

  s('dead requests are grouped by fingerprint with counts, queues and first/last failure', async (ctx) => {
    const dead = (i: number, group: string, at: string) =>
      st(ctx).recordDead(`${prefix}-${group}-${i}`, {
        reason: group === 'g1' ? 'malformed' : 'permanent',
        message: `failure ${i}`,
        attempts: 1,
        group,
        originQueue: group === 'g1' ? 'q.a' : 'q.b',
        firstFailure: `2026-01-0${at}T00:00:00.000Z`,
        deadAt: `2026-01-0${at}T01:00:00.000Z`,
      });
    for (let i = 0; i < 3; i++) await dead(i, 'g1', String(i + 1));
    await dead(0, 'g2', '5');
    await st(ctx).accept(`${prefix}-queued`);
    const groups = await st(ctx).deadGroups();
    assert.equal(
      groups.map((g) => [g.group, g.count, g.reason, g.queues]),
      [
        ['g1', 3, 'malformed', ['q.a']],
        ['g2', 1, 'permanent', ['q.b']],
      ],
    );
    assert.is(groups[0]?.firstFailure, '2026-01-01T00:00:00.000Z');
    assert.is(groups[0]?.lastFailure, '2026-01-03T01:00:00.000Z');
    assert.equal(
      (await st(ctx).deadGroups({ queue: 'q.b' })).map((g) => g.group),
      ['g2'],
    );
    const list = await st(ctx).listDead({ group: 'g1', limit: 10 });
    assert.equal(
      list.map((d) => d.requestId),
      [`${prefix}-g1-2`, `${prefix}-g1-1`, `${prefix}-g1-0`],
      'newest first',
    );
    assert.is(list[0]?.originQueue, 'q.a');
  });

  s('a replayed request stays in its group history with its new status; purged ones leave the lists', async (ctx) => {
    await st(ctx).markQueued(`${prefix}-g1-0`);
    assert.is((await st(ctx).deadGroups()).find((g) => g.group === 'g1')?.count, 2);
    const history = await st(ctx).listDead({ group: 'g1', includeReplayed: true, limit: 10 });
    assert.equal(history.map((d) => d.status).sort(), ['dead', 'dead', 'queued']);
    assert.is(await st(ctx).markPurged([`${prefix}-g1-1`, `${prefix}-g1-0`]), 1, 'only dead requests are marked purged');
    assert.equal(
      (await st(ctx).listDead({ group: 'g1', limit: 10 })).map((d) => d.requestId),
      [`${prefix}-g1-2`],
    );
    // Dead again after the purge (a new dead letter for the same request): listed again.
    await st(ctx).recordDead(`${prefix}-g1-1`, { reason: 'malformed', group: 'g1', originQueue: 'q.a' });
    assert.is((await st(ctx).listDead({ group: 'g1', limit: 10 })).length, 2);
  });

  s('search by requestId prefix; a malformed time header is stored as unknown, not refused', async (ctx) => {
    assert.is((await st(ctx).listDead({ requestId: `${prefix}-g2`, limit: 10 })).length, 1);
    assert.ok(await st(ctx).recordDead(`${prefix}-badtime`, { reason: 'permanent', group: 'g3', firstFailure: 'yesterday', deadAt: 'soon' }));
    const [row] = await st(ctx).listDead({ requestId: `${prefix}-badtime`, limit: 1 });
    assert.is(row?.firstFailure, undefined);
    assert.ok(row?.deadAt, 'dead_at defaults to the time of the write');
  });
  return s;
}

const dir = mkdtempSync(join(tmpdir(), 'warren-dlqstore-'));
defineSuite(
  'pglite',
  () => openResultStore({ dataDir: dir, logger }),
  async () => rmSync(dir, { recursive: true, force: true }),
).run();

const schema = `warren_dlq_${randomBytes(4).toString('hex')}`;
defineSuite(
  'postgresql',
  () => openResultStore({ databaseUrl: PG_URL, databaseSchema: schema, dataDir: '', logger }),
  async () => {
    const c = new pg.Client({ connectionString: PG_URL });
    await c.connect();
    await c.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    await c.end();
  },
).run();
