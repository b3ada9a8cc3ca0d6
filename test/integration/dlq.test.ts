// test-lane: side (a long file with nothing shared with the main lane but the broker, in a vhost of its own; see scripts/test.js)
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import amqplib from 'amqplib';
import pg from 'pg';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { HEADERS } from '../../core/index.ts';
import { applyTopology, loadCompiledTopology } from '../../topology/index.ts';
import { createTestVhost, loud, type TestVhost, waitFor, within } from '../helpers/broker.ts';
import { killAll, ROOT, runWarren, startApi, startWarren, type WarrenProcess } from '../helpers/warren-process.ts';

/**
 * Dead-letter operations end to end: 1,000 dead letters of three causes, browsed, grouped,
 * replayed by group (and killed midway), purged with an export, and the admin routes' guard.
 */
const TOPOLOGY = join(ROOT, 'test/fixtures/worker-topology.yaml');
const DEAD_QUEUE = 'processing.requests.dead';
const TOKEN = 'test-admin-token-0123456789';
// PostgreSQL, shared by the API and the CLI (as API replicas would share it): the CLI browses the
// store while the API runs. A schema of its own, dropped after.
const PG_URL = process.env.TEST_DATABASE_URL ?? 'postgresql://postgres@127.0.0.1:5432/test';
const SCHEMA = `warren_dlq_${randomBytes(4).toString('hex')}`;
let vh: TestVhost;
let dir: string;
let api: (WarrenProcess & { base: string }) | undefined;
let worker: WarrenProcess | undefined;
let env: Record<string, string | undefined>;

const ids = { a: [] as string[], b: [] as string[], c: [] as string[] };
const groups = { a: '', b: '', c: '' };

interface Listed {
  count: number;
  deadLetters: Array<{ requestId: string; reason: string; group: string; attempts: number; originQueue: string }>;
}

async function deadCount(): Promise<number> {
  const q = await vh.mgmt.get<{ messages?: number }>(vh.mgmt.path('queues', vh.vhost, DEAD_QUEUE));
  return q?.messages ?? -1;
}

/** The management API's counters lag by up to a few seconds: wait until they settle on a value. */
async function settledDeadCount(expected: number): Promise<number> {
  return waitFor(`dead-letter queue at ${expected}`, async () => ((await deadCount()) === expected ? expected : undefined), 20_000, 250).catch(() =>
    deadCount(),
  );
}

async function dlq(args: string[]): Promise<unknown> {
  const r = await runWarren(['dlq', ...args, '--json'], env, 120_000);
  assert.is(r.code, 0, `warren dlq ${args.join(' ')} exited ${r.code}: ${r.stderr.slice(-1500)}`);
  return JSON.parse(r.stdout) as unknown;
}

async function statusOf(id: string): Promise<{ status: string; result?: unknown }> {
  const res = await fetch(`${api?.base}/api/v1/requests/${id}`);
  return (await res.json()) as { status: string; result?: unknown };
}

test.before(
  loud(async () => {
    vh = await within(10_000, 'vhost', createTestVhost('dlq'));
    dir = mkdtempSync(join(tmpdir(), 'warren-dlq-'));
    env = {
      AMQP_URL: vh.url,
      AMQP_MANAGEMENT_URL: vh.managementUrl,
      TOPOLOGY,
      DATA_DIR: dir,
      ADMIN_TOKEN: TOKEN,
      LOG_LEVEL: 'warn',
      DATABASE_URL: PG_URL,
      DATABASE_SCHEMA: SCHEMA,
    };
    await applyTopology({ amqpUrl: vh.url, managementUrl: vh.managementUrl, compiled: loadCompiledTopology(TOPOLOGY) });
    api = await startApi(env);

    // Dead letters as the worker writes them (core/message.ts), straight to the dead-letter exchange.
    const conn = await amqplib.connect(vh.url);
    const ch = await conn.createConfirmChannel();
    const at = new Date().toISOString();
    for (let i = 0; i < 1000; i++) {
      const kind = i % 10 < 4 ? 'a' : i % 10 < 7 ? 'b' : 'c';
      const requestId = `${kind}-${i}-${randomUUID()}`;
      ids[kind].push(requestId);
      const reason = { a: 'max-attempts', b: 'malformed', c: 'permanent' }[kind];
      const message = { a: `upstream answered 503 for order ${i}`, b: 'body is not valid JSON', c: `card ending ${1000 + i} declined` }[kind];
      const body = kind === 'b' ? Buffer.from(`{not json ${i}`) : Buffer.from(JSON.stringify({ requestId, data: `item-${i}` }));
      ch.publish('processing.requests.dlx', '', body, {
        persistent: true,
        messageId: requestId,
        correlationId: requestId,
        headers: {
          [HEADERS.reason]: reason,
          [HEADERS.errorCode]: kind === 'c' ? 'PERMANENT' : 'RETRYABLE',
          [HEADERS.errorMessage]: message,
          [HEADERS.attempts]: kind === 'a' ? 3 : 1,
          [HEADERS.originQueue]: 'processing.requests',
          [HEADERS.firstFailure]: at,
          [HEADERS.lastFailure]: at,
          [HEADERS.deadAt]: at,
        },
      });
    }
    await ch.waitForConfirms();
    await conn.close();
    assert.is(await settledDeadCount(1000), 1000);
    // The API records them dead from the events queue.
    await waitFor('store has the dead letters', async () => ((await statusOf(ids.a[399] as string)).status === 'dead' ? true : undefined), 30_000);
  }),
);

test.after(async () => {
  await worker?.stop();
  await api?.stop();
  killAll();
  await vh?.cleanup();
  rmSync(dir, { recursive: true, force: true });
  const c = new pg.Client({ connectionString: PG_URL });
  await c.connect();
  await c.query(`DROP SCHEMA IF EXISTS "${SCHEMA}" CASCADE`);
  await c.end();
});

test('list and stats come from the store and leave the queue untouched (count, order, delivery count)', async () => {
  const queueOrder = [...ids.a, ...ids.b, ...ids.c].sort((x, y) => Number(x.split('-')[1]) - Number(y.split('-')[1]));
  const first = (await dlq(['list', '--limit', '5000'])) as Listed & { source: string };
  assert.is(first.source, 'store');
  assert.is(first.count, 1000);
  assert.equal(first.deadLetters.map((d) => d.requestId).sort(), [...queueOrder].sort());
  const stats = (await dlq(['stats'])) as { total: number; groups: Array<{ group: string; count: number; reason: string; pattern: string }> };
  assert.is(stats.total, 1000);
  const byReason = new Map(stats.groups.map((g) => [g.reason, g]));
  assert.equal(
    stats.groups.map((g) => g.count),
    [400, 300, 300],
  );
  assert.equal([byReason.get('max-attempts')?.count, byReason.get('malformed')?.count, byReason.get('permanent')?.count], [400, 300, 300]);
  assert.is(byReason.get('max-attempts')?.pattern, 'upstream answered <n> for order <n>');
  assert.is(byReason.get('permanent')?.pattern, 'card ending <n> declined');
  groups.a = byReason.get('max-attempts')?.group ?? '';
  groups.b = byReason.get('malformed')?.group ?? '';
  groups.c = byReason.get('permanent')?.group ?? '';
  // The queue, read directly: all 1,000 in publish order, none ever delivered by the browsing.
  const conn = await amqplib.connect(vh.url);
  const ch = await conn.createChannel();
  await ch.prefetch(1000);
  const seen: Array<{ id: unknown; deliveries: unknown }> = [];
  await new Promise<void>((resolve) => {
    void ch.consume(DEAD_QUEUE, (m) => {
      if (!m) return;
      seen.push({ id: m.properties.messageId, deliveries: m.properties.headers?.['x-delivery-count'] ?? 0 });
      if (seen.length === 1000) resolve();
    });
  });
  await conn.close();
  assert.equal(
    seen.map((m) => m.id),
    queueOrder,
  );
  assert.ok(
    seen.every((m) => m.deliveries === 0),
    'browsing delivered none of them',
  );
  assert.is(await settledDeadCount(1000), 1000);
  const show = (await dlq(['show', ids.c[0] as string])) as { reason: string; errorMessage: string; body: { data: string } };
  assert.is(show.reason, 'permanent');
  assert.match(show.errorMessage, /card ending \d+ declined/);
  assert.is(show.body.data, `item-${ids.c[0]?.split('-')[1]}`);
});

test('the admin routes refuse without the token and answer with it', async () => {
  const url = `${api?.base}/api/v1/admin/dead-letters/stats`;
  assert.is((await fetch(url)).status, 401);
  assert.is((await fetch(url, { headers: { authorization: 'Bearer wrong-token-value' } })).status, 403);
  const ok = await fetch(url, { headers: { authorization: `Bearer ${TOKEN}` } });
  assert.is(ok.status, 200);
  assert.is(((await ok.json()) as { total: number }).total, 1000);
  // A replay through the API moves the store dead -> queued (no worker runs yet, so it stays there).
  const one = ids.c[0] as string;
  assert.is((await statusOf(one)).status, 'dead');
  const replay = await fetch(`${api?.base}/api/v1/admin/dead-letters/replay`, {
    method: 'POST',
    headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
    body: JSON.stringify({ ids: [one] }),
  });
  assert.equal(await replay.json(), { matched: 1, replayed: 1, failed: [], dryRun: false });
  assert.is((await statusOf(one)).status, 'queued');
});

test('replay of one group moves exactly that group, and it ends done', async () => {
  worker = startWarren(['worker', '--replicas', '1', '--concurrency', '20'], { ...env, DEMO_DELAY_MS: '0' });
  const dry = (await dlq(['replay', '--group', groups.a, '--dry-run'])) as { matched: number; replayed: number };
  assert.equal([dry.matched, dry.replayed], [400, 0]);
  const r = (await dlq(['replay', '--group', groups.a])) as { matched: number; replayed: number };
  assert.equal([r.matched, r.replayed], [400, 400]);
  // 1,000 less the 400 of group A, less the one message the admin test replayed.
  assert.is(await settledDeadCount(599), 599);
  const left = (await dlq(['list', '--limit', '5000'])) as Listed;
  assert.is(left.count, 599);
  assert.not.ok(left.deadLetters.some((d) => d.requestId.startsWith('a-')));
  for (const id of ids.a) {
    const s = await waitFor(`${id} done`, async () => {
      const st = await statusOf(id);
      return st.status === 'done' ? st : undefined;
    });
    assert.is(s.result, `item-${id.split('-')[1]}-processed`);
  }
});

test('a replay killed midway loses nothing: every message is dead, replayed, or both', async () => {
  // LOG_LEVEL=info: one line per replayed message on stderr, the progress the kill waits for.
  const proc = startWarren(['dlq', 'replay', '--group', groups.c, '--rate', '50'], { ...env, LOG_LEVEL: 'info' });
  const replayedLines = () =>
    proc
      .output()
      .split('\n')
      .filter((l) => l.includes('"dead letter replayed"')).length;
  // Killed once 10 of the 300 went (about 6 s before it would finish at 50/s), not after a fixed time.
  await waitFor('10 dead letters replayed by the process about to be killed', () => (replayedLines() >= 10 ? true : undefined), 60_000, 20);
  proc.proc.kill('SIGKILL');
  await proc.stop();
  const stillDead = new Set(((await dlq(['list', '--limit', '5000'])) as Listed).deadLetters.map((d) => d.requestId));
  const cDead = ids.c.filter((id) => stillDead.has(id)).length;
  assert.ok(cDead > 0 && cDead < 300, `the kill should land midway (still dead: ${cDead} of 300)`);
  let replayed = 0;
  for (const id of ids.c.filter((x) => !stillDead.has(x))) {
    await waitFor(`${id} done after replay`, async () => ((await statusOf(id)).status === 'done' ? true : undefined));
    replayed++;
  }
  assert.is(cDead + replayed, 300);
});

test('purge refuses without --yes, and with --export writes exactly what it removed', async () => {
  const refused = await runWarren(['dlq', 'purge', '--group', groups.b], env);
  assert.is(refused.code, 1);
  assert.match(refused.stderr, /--yes/);
  const before = ((await dlq(['list', '--limit', '5000'])) as Listed).count;
  const file = join(dir, 'purged.jsonl');
  const r = (await dlq(['purge', '--group', groups.b, '--export', file, '--yes'])) as { purged: number };
  assert.is(r.purged, 300);
  const lines = readFileSync(file, 'utf8').trim().split('\n');
  assert.is(lines.length, 300);
  const exported = lines.map((l) => JSON.parse(l) as { requestId: string; reason: string; bodyBase64: string });
  assert.equal(exported.map((e) => e.requestId).sort(), [...ids.b].sort());
  assert.ok(exported.every((e) => e.reason === 'malformed' && Buffer.from(e.bodyBase64, 'base64').toString().startsWith('{not json')));
  const after = (await dlq(['list', '--limit', '5000'])) as Listed;
  assert.is(after.count, before - 300);
  assert.not.ok(after.deadLetters.some((d) => d.requestId.startsWith('b-')));
});

test.run();
