import { randomBytes, randomUUID } from 'node:crypto';
import amqplib from 'amqplib';
import pg from 'pg';
import { pino } from 'pino';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ApiServer, readApiConfig } from '../../api/index.ts';
import { applyTopology, DEFAULT_REQUESTS_QUEUE, DEFAULT_RESULTS_QUEUE, loadCompiledTopology, routesFor } from '../../topology/index.ts';
import { resultEnvelope } from '../../worker/envelopes.ts';
import { batchEnvelope } from '../../worker/result-batcher.ts';
import { createTestVhost, type TestVhost, waitFor, within } from '../helpers/broker.ts';

/**
 * The API's consumers: results and dead events reach the store, with its precedence rules; two
 * API replicas share one PostgreSQL store. Results and dead letters are published here the way
 * the worker and the broker publish them.
 */
// The replicas' log lines, kept so a test can wait for "this message was handled" before it
// checks that nothing changed (a sleep would pass when the handling is wrong but slow).
const logLines: Array<{ msg?: string; requestId?: string }> = [];
const logger = pino(
  { name: 'test', level: 'info' },
  {
    write(line: string) {
      logLines.push(JSON.parse(line) as { msg?: string; requestId?: string });
      if (process.env.LOG_LEVEL) process.stdout.write(line);
    },
  },
);
/** Log lines with this message (and requestId, when given). */
const logged = (msg: string, requestId?: string) => logLines.filter((l) => l.msg === msg && (requestId === undefined || l.requestId === requestId)).length;
const PG_URL = process.env.TEST_DATABASE_URL ?? process.env.DATABASE_URL ?? 'postgresql://postgres@127.0.0.1:5432/test';
const schema = `warren_test_${randomBytes(4).toString('hex')}`;
const compiled = loadCompiledTopology();
const requests = routesFor(compiled, DEFAULT_REQUESTS_QUEUE);
const results = routesFor(compiled, DEFAULT_RESULTS_QUEUE);
const deadExchange = requests.deadLetter?.exchange as string;
const eventsQueue = requests.deadLetter?.eventsQueue as string;

let vhost: TestVhost;
let replicas: ApiServer[] = [];
let bases: string[] = [];
let conn: amqplib.ChannelModel;
let ch: amqplib.ConfirmChannel;
let db: pg.Client;

test.before(async () => {
  vhost = await within(15_000, 'create vhost', createTestVhost('api-results'));
  await within(15_000, 'apply topology', applyTopology({ amqpUrl: vhost.url, compiled }));
  const config = readApiConfig({ AMQP_URL: vhost.url, PORT: '0', DATABASE_URL: PG_URL, DATABASE_SCHEMA: schema });
  replicas = [new ApiServer({ config, logger }), new ApiServer({ config, logger })];
  // Started together: the migrations' advisory lock keeps them from racing.
  const ports = await within(20_000, 'start replicas', Promise.all(replicas.map((r) => r.start())));
  bases = ports.map(({ port }) => `http://127.0.0.1:${port}`);
  conn = await amqplib.connect(vhost.url);
  ch = await conn.createConfirmChannel();
  db = new pg.Client({ connectionString: PG_URL });
  await db.connect();
});

test.after(async () => {
  await conn?.close().catch(() => undefined);
  await Promise.all(replicas.map((r) => r.stop()));
  await db?.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  await db?.end();
  await vhost?.cleanup();
});

async function post(data: unknown, base = bases[0], headers: Record<string, string> = {}): Promise<{ status: number; requestId: string }> {
  const res = await within(
    10_000,
    'POST',
    fetch(`${base}/api/v1/processData`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify({ data }) }),
  );
  const body = (await res.json()) as { requestId: string };
  return { status: res.status, requestId: body.requestId };
}

async function get(requestId: string, base = bases[0]): Promise<Record<string, unknown> | undefined> {
  const res = await fetch(`${base}/api/v1/requests/${requestId}`);
  return res.status === 200 ? ((await res.json()) as Record<string, unknown>) : undefined;
}

function waitStatus(requestId: string, status: string, ms = 10_000): Promise<Record<string, unknown>> {
  return waitFor(
    `${requestId} ${status}`,
    async () => {
      const r = await get(requestId);
      return r?.status === status ? r : undefined;
    },
    ms,
  );
}

async function publishResult(requestId: string, result: unknown, attempts = 1): Promise<void> {
  const route = results.publish as { exchange: string; routingKey: string };
  const body = Buffer.from(JSON.stringify({ requestId, result, attempts, processedAt: new Date().toISOString() }));
  ch.publish(route.exchange, route.routingKey, body, { persistent: true, correlationId: requestId, contentType: 'application/json' });
  await ch.waitForConfirms();
}

async function publishDead(content: Buffer, properties: amqplib.Options.Publish): Promise<void> {
  ch.publish(deadExchange, '', content, { persistent: true, ...properties });
  await ch.waitForConfirms();
}

async function drain(queue: string): Promise<number> {
  let n = 0;
  while ((await ch.get(queue, { noAck: true })) !== false) n++;
  return n;
}

test('a result makes the request done, with its result and attempts', async () => {
  const { status, requestId } = await post('my-data');
  assert.is(status, 202);
  await publishResult(requestId, 'my-data-processed', 2);
  const r = await waitStatus(requestId, 'done');
  assert.is(r.result, 'my-data-processed');
  assert.is(r.attempts, 2);
});

test('duplicate result deliveries leave one row and the first result', async () => {
  const { requestId } = await post('dup');
  await publishResult(requestId, 'first');
  await waitStatus(requestId, 'done');
  await publishResult(requestId, 'second');
  await publishResult(requestId, 'first');
  // Both replicas consume: wait until both later deliveries went through the store.
  const handled = () => logged('result stored', requestId) + logged('duplicate result ignored', requestId);
  await waitFor('both duplicate results handled by a replica', () => (handled() >= 3 ? true : undefined));
  const rows = await db.query(`SELECT count(*)::int AS n FROM "${schema}".requests WHERE request_id = $1`, [requestId]);
  assert.is(rows.rows[0].n, 1);
  assert.is((await get(requestId))?.result, 'first');
});

test('a results batch (what a busy worker sends) makes each request in it done; one the store refuses ends dead, the others stored', async () => {
  const ids = await Promise.all(['b1', 'b2', 'b3'].map(async (d) => (await post(d)).requestId));
  const route = results.publish as { exchange: string; routingKey: string };
  const value = (i: number) => (i === 1 ? 'nul\u0000byte' : `batched-${i}`);
  const batch = batchEnvelope(
    ids.map((requestId, i) => resultEnvelope(route, { requestId, result: value(i), attempts: 1, processedAt: new Date(), requestHeaders: undefined })),
  );
  assert.is(batch.options.contentType, 'application/vnd.warren.results+json');
  ch.publish(batch.exchange, batch.routingKey, batch.content, batch.options);
  await ch.waitForConfirms();
  assert.is((await waitStatus(ids[0] as string, 'done')).result, 'batched-0');
  assert.is((await waitStatus(ids[2] as string, 'done')).result, 'batched-2');
  const refused = await waitStatus(ids[1] as string, 'dead');
  assert.equal(refused.error, { reason: 'malformed', code: 'RESULT_NOT_STORABLE', message: 'the store refused the result value' });
  await waitFor('the results queue drained', async () => ((await ch.checkQueue(DEFAULT_RESULTS_QUEUE)).messageCount === 0 ? true : undefined));
});

test('a worker dead letter makes the request dead with its reason', async () => {
  const { requestId } = await post('poison');
  await publishDead(Buffer.from(JSON.stringify({ requestId, data: 'poison' })), {
    messageId: requestId,
    correlationId: requestId,
    headers: { 'x-warren-reason': 'max-attempts', 'x-warren-error-code': 'E_DEMO', 'x-warren-error-message': 'demo failure', 'x-warren-attempts': 4 },
  });
  const r = await waitStatus(requestId, 'dead');
  assert.equal(r.error, { reason: 'max-attempts', code: 'E_DEMO', message: 'demo failure' });
  assert.is(r.attempts, 4);
  // The inspection queue keeps its copy for `dlq` tools; not ours to consume.
  await drain(requests.deadLetter?.queue as string);
});

test('done is final: a later dead event does not change it', async () => {
  const { requestId } = await post('late-dead');
  await publishResult(requestId, 'ok');
  await waitStatus(requestId, 'done');
  await publishDead(Buffer.from(JSON.stringify({ requestId, data: 1 })), { messageId: requestId, headers: { 'x-warren-reason': 'timeout' } });
  const handled = () => logged('request dead', requestId) + logged('dead event for a done request ignored', requestId);
  await waitFor('the late dead event handled by a replica', () => (handled() >= 1 ? true : undefined));
  assert.is((await get(requestId))?.status, 'done');
  await drain(requests.deadLetter?.queue as string);
});

test('a dead event whose error text the store refuses (\\u0000) still makes the request dead', async () => {
  const { requestId } = await post('nul-in-error');
  await publishDead(Buffer.from(JSON.stringify({ requestId, data: 'nul-in-error' })), {
    messageId: requestId,
    correlationId: requestId,
    headers: { 'x-warren-reason': 'permanent', 'x-warren-error-code': 'E_NUL', 'x-warren-error-message': 'bad\u0000byte', 'x-warren-attempts': 1 },
  });
  const r = await waitStatus(requestId, 'dead');
  assert.equal(r.error, { reason: 'permanent', code: 'DEAD_EVENT_NOT_STORABLE', message: "the store refused the dead event's error text" });
  assert.is(r.attempts, 1);
  await drain(requests.deadLetter?.queue as string);
});

test('a dead event without any requestId is acked and stores nothing', async () => {
  const before = await db.query(`SELECT count(*)::int AS n FROM "${schema}".requests`);
  const seen = logged('dead event without a requestId; nothing to store');
  await publishDead(Buffer.from('{not json'), { headers: { 'x-warren-reason': 'malformed' } });
  await waitFor('the dead event without a requestId handled', () => (logged('dead event without a requestId; nothing to store') > seen ? true : undefined));
  await waitFor('dead events drained', async () => ((await ch.checkQueue(eventsQueue)).messageCount === 0 ? true : undefined));
  const after = await db.query(`SELECT count(*)::int AS n FROM "${schema}".requests`);
  assert.is(after.rows[0].n, before.rows[0].n);
  await drain(requests.deadLetter?.queue as string);
});

test('a crash-looping request dies at the broker delivery limit: dead, reason delivery-limit', async () => {
  const crasher = await conn.createChannel();
  await crasher.prefetch(1);
  // A "worker" that never finishes: each delivery goes back to the queue, as after a crash.
  const { consumerTag } = await crasher.consume(DEFAULT_REQUESTS_QUEUE, (m) => m && crasher.nack(m, false, true));
  try {
    const { requestId } = await post('crash');
    const r = await waitStatus(requestId, 'dead', 20_000);
    const error = r.error as { reason: string; code?: string };
    assert.is(error.reason, 'delivery-limit');
    assert.ok((r.attempts as number) >= (requests.deliveryLimit ?? 10), `attempts ${String(r.attempts)}`);
  } finally {
    await crasher.cancel(consumerTag);
    await crasher.close();
  }
  await drain(requests.deadLetter?.queue as string);
});

test('two replicas, one store: one Idempotency-Key across replicas publishes once', async () => {
  await drain(DEFAULT_REQUESTS_QUEUE);
  const key = `replicas-${randomUUID()}`;
  const answers = await Promise.all(Array.from({ length: 6 }, (_, i) => post('shared', bases[i % 2], { 'idempotency-key': key })));
  for (const a of answers) assert.is(a.status, 202);
  assert.is(new Set(answers.map((a) => a.requestId)).size, 1);
  assert.is(await drain(DEFAULT_REQUESTS_QUEUE), 1);
  const id = answers[0]?.requestId as string;
  assert.is((await get(id, bases[1]))?.status, 'queued');
});

test('two replicas consume results; every one is stored; nothing stays unacked', async () => {
  const ids = await Promise.all(Array.from({ length: 30 }, (_, i) => post(i, bases[i % 2]).then((a) => a.requestId)));
  for (const id of ids) await publishResult(id, `${id}-processed`);
  for (const id of ids) assert.is((await waitStatus(id, 'done'))?.result, `${id}-processed`);
  await Promise.all(replicas.map((r) => r.stop()));
  // With the consumers gone, unacked messages would be back to ready: there are none.
  assert.is((await ch.checkQueue(DEFAULT_RESULTS_QUEUE)).messageCount, 0);
  assert.is((await ch.checkQueue(eventsQueue)).messageCount, 0);
});

test.run();
