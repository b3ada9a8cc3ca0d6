import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import amqplib from 'amqplib';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ApiServer, readApiConfig } from '../../api/index.ts';
import { createLogger } from '../../core/index.ts';
import { applyTopology, loadCompiledTopology } from '../../topology/index.ts';
import { createTestVhost, type TestVhost, within } from '../helpers/broker.ts';

/** The HTTP contract of a running API (real broker in a vhost of its own, embedded store). */
const logger = createLogger({ name: 'test', level: process.env.LOG_LEVEL ?? 'silent' });
const REQUESTS = 'processing.requests';
let vhost: TestVhost;
let dir: string;
let server: ApiServer;
let base: string;
let conn: amqplib.ChannelModel;
let ch: amqplib.Channel;

test.before(async () => {
  vhost = await within(15_000, 'create vhost', createTestVhost('api-http'));
  await within(15_000, 'apply topology', applyTopology({ amqpUrl: vhost.url, compiled: loadCompiledTopology() }));
  dir = mkdtempSync(join(tmpdir(), 'warren-api-http-'));
  const config = readApiConfig({ AMQP_URL: vhost.url, PORT: '0', DATA_DIR: dir, API_BODY_LIMIT: '1kb' });
  server = new ApiServer({ config, logger });
  const { port } = await within(60_000, 'start api', server.start());
  base = `http://127.0.0.1:${port}`;
  conn = await amqplib.connect(vhost.url);
  ch = await conn.createChannel();
});

test.after(async () => {
  await conn?.close().catch(() => undefined);
  await server?.stop();
  rmSync(dir, { recursive: true, force: true });
  await vhost?.cleanup();
});

interface Answer {
  status: number;
  headers: Headers;
  body: Record<string, unknown>;
}

async function call(path: string, init: RequestInit = {}): Promise<Answer> {
  const res = await within(10_000, `${init.method ?? 'GET'} ${path}`, fetch(`${base}${path}`, init));
  const text = await res.text();
  return { status: res.status, headers: res.headers, body: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
}

function post(body: string, headers: Record<string, string> = { 'content-type': 'application/json' }): Promise<Answer> {
  return call('/api/v1/processData', { method: 'POST', body, headers });
}

/** Takes every message off the requests queue (nothing consumes it in this suite). */
async function drainRequests(): Promise<amqplib.GetMessage[]> {
  const out: amqplib.GetMessage[] = [];
  for (;;) {
    const m = await ch.get(REQUESTS, { noAck: true });
    if (m === false) return out;
    out.push(m);
  }
}

function errorCode(a: Answer): unknown {
  return (a.body.error as { code?: unknown } | undefined)?.code;
}

test('202: accepted after the confirm, queued, and on the queue as the wire contract says', async () => {
  await drainRequests();
  const a = await post(JSON.stringify({ data: 'my-data' }));
  assert.is(a.status, 202);
  const requestId = a.body.requestId as string;
  assert.match(requestId, /^[0-9a-f-]{36}$/);
  assert.is(a.body.status, 'queued');
  assert.is(a.body.statusUrl, `/api/v1/requests/${requestId}`);
  assert.is(a.headers.get('location'), a.body.statusUrl);

  const g = await call(a.body.statusUrl as string);
  assert.is(g.status, 200);
  assert.is(g.body.requestId, requestId);
  assert.is(g.body.status, 'queued');
  assert.ok(typeof g.body.createdAt === 'string' && typeof g.body.updatedAt === 'string');

  const msgs = await drainRequests();
  assert.is(msgs.length, 1);
  const m = msgs[0] as amqplib.GetMessage;
  const { acceptedAt, ...body } = JSON.parse(m.content.toString('utf8')) as { acceptedAt?: unknown };
  assert.equal(body, { requestId, data: 'my-data' });
  assert.ok(typeof acceptedAt === 'number' && Math.abs(Date.now() - acceptedAt) < 60_000, `acceptedAt ${acceptedAt}`);
  assert.is(m.properties.messageId, requestId);
  assert.is(m.properties.correlationId, requestId);
  assert.is(m.properties.contentType, 'application/json');
  assert.is(m.properties.deliveryMode, 2);
});

test('POST /api/v1/jobs/<public job>: the same 202 and message; an unknown job 404, a chunked body and a query string 202 too (express path)', async () => {
  await drainRequests();
  const job = await call('/api/v1/jobs/process', {
    method: 'POST',
    body: JSON.stringify({ data: 'by-name' }),
    headers: { 'content-type': 'application/json' },
  });
  assert.is(job.status, 202);
  assert.is(job.headers.get('content-type'), 'application/json; charset=utf-8');
  const unknown = await call('/api/v1/jobs/nope', { method: 'POST', body: JSON.stringify({ data: 1 }), headers: { 'content-type': 'application/json' } });
  assert.is(unknown.status, 404);
  assert.is(errorCode(unknown), 'UNKNOWN_JOB');
  const chunked = new ReadableStream({
    start(c) {
      c.enqueue(new TextEncoder().encode(JSON.stringify({ data: 'chunked' })));
      c.close();
    },
  });
  const viaExpress = await call('/api/v1/processData', {
    method: 'POST',
    body: chunked,
    headers: { 'content-type': 'application/json' },
    duplex: 'half',
  } as RequestInit);
  assert.is(viaExpress.status, 202);
  const withQuery = await call('/api/v1/processData?source=test', {
    method: 'POST',
    body: JSON.stringify({ data: 'query' }),
    headers: { 'content-type': 'application/json' },
  });
  assert.is(withQuery.status, 202);
  const bodies = (await drainRequests()).map((m) => (JSON.parse(m.content.toString('utf8')) as { data: unknown }).data);
  assert.equal(bodies.sort(), ['by-name', 'chunked', 'query']);
});

test('requestIds never repeat', async () => {
  const answers = await Promise.all(Array.from({ length: 20 }, () => post(JSON.stringify({ data: 1 }))));
  const ids = new Set(answers.map((a) => a.body.requestId));
  assert.is(ids.size, 20);
  await drainRequests();
});

test('400 for malformed JSON, with the error shape', async () => {
  const a = await post('{"data": ');
  assert.is(a.status, 400);
  assert.is(errorCode(a), 'MALFORMED_JSON');
  assert.type((a.body.error as { message?: unknown }).message, 'string');
});

test('400 for a body without data (object, array, no body at all)', async () => {
  for (const body of ['{"date": 1}', '[1, 2]']) {
    const a = await post(body);
    assert.is(a.status, 400, body);
    assert.is(errorCode(a), 'MISSING_DATA');
  }
  const empty = await call('/api/v1/processData', { method: 'POST' });
  assert.is(empty.status, 400);
  assert.is(errorCode(empty), 'MISSING_DATA');
  assert.is((await drainRequests()).length, 0);
});

test('data may be any JSON value, null included', async () => {
  for (const data of [null, 0, 'x', [1], { a: { b: 2 } }]) assert.is((await post(JSON.stringify({ data }))).status, 202);
  assert.is((await drainRequests()).length, 5);
});

test('413 over the body limit', async () => {
  const a = await post(JSON.stringify({ data: 'x'.repeat(2048) }));
  assert.is(a.status, 413);
  assert.is(errorCode(a), 'PAYLOAD_TOO_LARGE');
  assert.is((await drainRequests()).length, 0);
});

test('415 for another content type', async () => {
  for (const type of ['text/plain', 'application/x-www-form-urlencoded']) {
    const a = await post('data=1', { 'content-type': type });
    assert.is(a.status, 415, type);
    assert.is(errorCode(a), 'UNSUPPORTED_MEDIA_TYPE');
  }
  assert.is((await post(JSON.stringify({ data: 1 }), { 'content-type': 'application/json; charset=utf-8' })).status, 202);
  await drainRequests();
});

test('404 for an unknown request id and an unknown route, as JSON', async () => {
  const a = await call('/api/v1/requests/00000000-0000-0000-0000-000000000000');
  assert.is(a.status, 404);
  assert.is(errorCode(a), 'NOT_FOUND');
  const b = await call('/api/v1/nothing');
  assert.is(b.status, 404);
  assert.is(errorCode(b), 'NOT_FOUND');
});

test('healthz and readyz', async () => {
  const h = await call('/healthz');
  assert.is(h.status, 200);
  const r = await call('/readyz');
  assert.is(r.status, 200);
  assert.is(r.body.status, 'ready');
  const checks = r.body.checks as Record<string, { ok: boolean }>;
  assert.ok(checks.broker?.ok && checks.store?.ok && checks.topology?.ok);
});

test('Idempotency-Key: the same key returns the same 202 body and publishes once', async () => {
  await drainRequests();
  const headers = { 'content-type': 'application/json', 'idempotency-key': `k-${Date.now()}` };
  const first = await post(JSON.stringify({ data: 'once' }), headers);
  const second = await post(JSON.stringify({ data: 'once' }), headers);
  assert.is(first.status, 202);
  assert.is(second.status, 202);
  assert.equal(second.body, first.body);
  assert.is(second.headers.get('idempotent-replayed'), 'true');
  assert.is((await drainRequests()).length, 1);
});

test('Idempotency-Key: concurrent requests with one key get one requestId and one message', async () => {
  await drainRequests();
  const headers = { 'content-type': 'application/json', 'idempotency-key': `c-${Date.now()}` };
  const answers = await Promise.all(Array.from({ length: 8 }, () => post(JSON.stringify({ data: 'same' }), headers)));
  for (const a of answers) assert.is(a.status, 202);
  assert.is(new Set(answers.map((a) => a.body.requestId)).size, 1);
  const msgs = await drainRequests();
  assert.is(msgs.length, 1);
  assert.is(msgs[0]?.properties.messageId, answers[0]?.body.requestId);
});

test('Idempotency-Key: reused with another body is 422; an invalid key is 400', async () => {
  const key = `m-${Date.now()}`;
  assert.is((await post(JSON.stringify({ data: 1 }), { 'content-type': 'application/json', 'idempotency-key': key })).status, 202);
  const a = await post(JSON.stringify({ data: 2 }), { 'content-type': 'application/json', 'idempotency-key': key });
  assert.is(a.status, 422);
  assert.is(errorCode(a), 'IDEMPOTENCY_KEY_REUSED');
  const b = await post(JSON.stringify({ data: 2 }), { 'content-type': 'application/json', 'idempotency-key': 'x'.repeat(300) });
  assert.is(b.status, 400);
  await drainRequests();
});

test.run();
