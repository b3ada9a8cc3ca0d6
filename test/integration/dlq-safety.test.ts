import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import amqplib from 'amqplib';
import pg from 'pg';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { DeadLetterQueues } from '../../api/index.ts';
import { createLogger, HEADERS } from '../../core/index.ts';
import { applyTopology, loadCompiledTopology } from '../../topology/index.ts';
import { createTestVhost, loud, type TestVhost, waitFor, within } from '../helpers/broker.ts';
import { killAll, ROOT, runWarren, startApi, type WarrenProcess } from '../helpers/warren-process.ts';

/**
 * The four ways the dead-letter operations used to lose or endanger messages, each shown closed:
 * a replay to an origin queue that is gone, properties a replay must not copy back, a purge whose
 * export never reached anyone, a dead-letter session hitting a channel error, and browsing that
 * redelivers (raising x-delivery-count, which RabbitMQ 4.x caps at 20 by default).
 */
const TOPOLOGY = join(ROOT, 'test/fixtures/worker-topology.yaml');
const ORIGIN = 'processing.requests';
const DEAD = 'processing.requests.dead';
// PostgreSQL (a schema of its own): it starts in a second where a fresh embedded store takes tens on a busy machine.
const PG_URL = process.env.TEST_DATABASE_URL ?? 'postgresql://postgres@127.0.0.1:5432/test';
const SCHEMA = `warren_console_${randomBytes(4).toString('hex')}`;
const TOKEN = 'test-admin-token-safety-0123';
let vh: TestVhost;
let dir: string;
let api: (WarrenProcess & { base: string }) | undefined;
let env: Record<string, string | undefined>;
let conn: amqplib.ChannelModel;
let ch: amqplib.ConfirmChannel;

/** A dead letter as the worker writes it, straight to the dead-letter exchange. */
async function deadLetter(opts: { origin?: string; message?: string; expiration?: string } = {}): Promise<string> {
  const requestId = randomUUID();
  const at = new Date().toISOString();
  ch.publish('processing.requests.dlx', '', Buffer.from(JSON.stringify({ requestId, data: 'x' })), {
    persistent: true,
    messageId: requestId,
    correlationId: requestId,
    ...(opts.expiration ? { expiration: opts.expiration } : {}),
    headers: {
      [HEADERS.reason]: 'permanent',
      [HEADERS.errorCode]: 'PERMANENT',
      [HEADERS.errorMessage]: opts.message ?? 'card declined',
      [HEADERS.attempts]: 1,
      [HEADERS.originQueue]: opts.origin ?? ORIGIN,
      [HEADERS.firstFailure]: at,
      [HEADERS.lastFailure]: at,
      [HEADERS.deadAt]: at,
    },
  });
  await ch.waitForConfirms();
  await waitFor(`the store has ${requestId} dead`, async () => ((await statusOf(requestId)) === 'dead' ? true : undefined), 20_000);
  return requestId;
}

async function statusOf(id: string): Promise<string | undefined> {
  const res = await fetch(`${api?.base}/api/v1/requests/${id}`);
  return res.ok ? ((await res.json()) as { status: string }).status : undefined;
}

/** Exact ready count (a passive declare answers at once; the management API lags). */
async function ready(queue: string): Promise<number> {
  return (await ch.checkQueue(queue)).messageCount;
}

/** Takes every message off `queue` (acked), for tests that look at what arrived there. */
async function drain(queue: string): Promise<amqplib.GetMessage[]> {
  const out: amqplib.GetMessage[] = [];
  for (;;) {
    const m = await ch.get(queue, { noAck: true });
    if (!m) return out;
    out.push(m);
  }
}

function admin(path: string, body?: unknown): Promise<Response> {
  return fetch(`${api?.base}/api/v1/admin/dead-letters${path}`, {
    method: body === undefined ? 'GET' : 'POST',
    headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
}

test.before(
  loud(async () => {
    vh = await within(10_000, 'vhost', createTestVhost('dlqsafe'));
    dir = mkdtempSync(join(tmpdir(), 'warren-dlqsafe-'));
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
    conn = await amqplib.connect(vh.url);
    ch = await conn.createConfirmChannel();
  }),
);

test.after(async () => {
  await conn?.close().catch(() => undefined);
  await api?.stop();
  killAll();
  await vh?.cleanup();
  rmSync(dir, { recursive: true, force: true });
  const c = new pg.Client({ connectionString: PG_URL });
  await c.connect();
  await c.query(`DROP SCHEMA IF EXISTS "${SCHEMA}" CASCADE`);
  await c.end();
});

test('a replay to an origin queue that is gone keeps the dead letter and names the queue (CLI and HTTP)', async () => {
  await drain(DEAD);
  const id = await deadLetter({ origin: 'processing.gone' });
  assert.is(await ready(DEAD), 1);
  const cli = await runWarren(['dlq', 'replay', '--id', id, '--json'], env, 60_000);
  assert.is.not(cli.code, 0, `the CLI must fail: ${cli.stdout}${cli.stderr}`);
  assert.match(cli.stdout + cli.stderr, /processing\.gone/);
  assert.is(await ready(DEAD), 1, 'the dead letter is still there after the CLI replay');
  const res = await admin('/replay', { ids: [id] });
  assert.is(res.status, 409);
  const body = (await res.json()) as { replayed: number; failed: Array<{ requestId: string; queue: string }>; error: { message: string } };
  assert.is(body.replayed, 0);
  assert.equal(
    body.failed.map((f) => [f.requestId, f.queue]),
    [[id, 'processing.gone']],
  );
  assert.match(body.error.message, /processing\.gone/);
  assert.is(await ready(DEAD), 1, 'the dead letter is still there after the HTTP replay');
  assert.is(await statusOf(id), 'dead');
});

test('a replay drops the properties the worker drops (expiration, userId)', async () => {
  await drain(DEAD);
  await drain(ORIGIN);
  const id = await deadLetter({ expiration: '86400000' });
  const res = await admin('/replay', { ids: [id] });
  assert.is(res.status, 200, await res.clone().text());
  const [copy] = await waitFor('the replayed copy in the origin queue', async () => {
    const got = await drain(ORIGIN);
    return got.length ? got : undefined;
  });
  assert.is(copy?.properties.messageId, id);
  assert.is(copy?.properties.expiration, undefined, 'a per-message TTL must not come back with the replay');
  assert.is(await ready(DEAD), 0);
});

test('the HTTP purge removes nothing without an export: export by id first, then purge exactly those', async () => {
  await drain(DEAD);
  const a = await deadLetter({ message: 'purge me' });
  const b = await deadLetter({ message: 'purge me' });
  // One call that exports and removes at once could lose everything to a dropped client.
  const blind = await admin('/purge', { ids: [a, b], yes: true });
  assert.is(blind.status, 400, 'a purge without an export token is refused');
  assert.is(await ready(DEAD), 2);
  const exp = await admin('/export', { ids: [a, b] });
  assert.is(exp.status, 200);
  const exported = (await exp.json()) as { count: number; token: string; records: Array<{ requestId: string; bodyBase64: string }> };
  assert.is(exported.count, 2);
  assert.equal(exported.records.map((r) => r.requestId).sort(), [a, b].sort());
  assert.is(await ready(DEAD), 2, 'an export removes nothing');
  // A dead letter that arrives after the export is not purged with it.
  const late = await deadLetter({ message: 'purge me' });
  const purge = await admin('/purge', { token: exported.token, yes: true });
  assert.is(purge.status, 200);
  assert.is(((await purge.json()) as { purged: number }).purged, 2);
  const left = await drain(DEAD);
  assert.equal(
    left.map((m) => m.properties.messageId),
    [late],
  );
  const forged = await admin('/purge', { token: `${exported.token.slice(0, -4)}AAAA`, yes: true });
  assert.is(forged.status, 400);
});

test('browsing (list, stats) is served from the store and never redelivers a dead letter', async () => {
  await drain(DEAD);
  const id = await deadLetter({ message: 'browse me' });
  for (let i = 0; i < 3; i++) {
    const list = (await (await admin(`/?limit=100`)).json()) as { deadLetters: Array<{ requestId: string; status?: string }> };
    assert.ok(
      list.deadLetters.some((d) => d.requestId === id),
      'listed',
    );
    const stats = (await (await admin('/stats')).json()) as { total: number };
    assert.ok(stats.total >= 1);
  }
  const m = await ch.get(DEAD, { noAck: true });
  assert.ok(m, 'the dead letter is still in its queue');
  assert.is(m ? (m.properties.headers?.['x-delivery-count'] ?? 0) : 'no message', 0, 'browsing delivered the dead letter (x-delivery-count grew)');
});

test('a dead-letter queue that is gone answers 404 naming it, and the API keeps running', async () => {
  const id = await deadLetter({ message: 'queue gone' });
  await vh.mgmt.delete(vh.mgmt.path('queues', vh.vhost, DEAD));
  const show = await admin(`/${id}`);
  assert.is(show.status, 404);
  assert.match(((await show.json()) as { error: { message: string } }).error.message, /processing\.requests\.dead/);
  const replay = await admin('/replay', { ids: [id] });
  assert.is(replay.status, 404);
  assert.match(((await replay.json()) as { error: { message: string } }).error.message, /processing\.requests\.dead/);
  assert.is((await fetch(`${api?.base}/healthz`)).status, 200, 'the API still answers');
  assert.is(api?.proc.exitCode, null, 'the API did not exit');
});

test('an unreachable broker is a 503 naming the queue, not a crash', async () => {
  const dlq = new DeadLetterQueues('amqp://guest:guest@127.0.0.1:1', loadCompiledTopology(TOPOLOGY), createLogger({ name: 'test', level: 'silent' }));
  const err = await dlq.browse({ all: true }).then(
    () => undefined,
    (e: unknown) => e as { status?: number; message?: string },
  );
  assert.is(err?.status, 503);
  assert.match(err?.message ?? '', /processing\.requests\.dead/);
});

test.run();
