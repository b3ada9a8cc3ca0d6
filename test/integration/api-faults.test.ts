import { mkdtempSync, rmSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import amqplib from 'amqplib';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { type ApiConfig, ApiServer, readApiConfig, TopologyMissingError } from '../../api/index.ts';
import { createLogger } from '../../core/index.ts';
import { applyTopology, compileTopology, DEFAULT_REQUESTS_QUEUE, loadCompiledTopology, parseTopology } from '../../topology/index.ts';
import { createTestVhost, type TestVhost, waitFor, within } from '../helpers/broker.ts';

/**
 * The API when the broker fails it: unreachable, silent (no confirms), dropped, nacking. In every
 * case the answer is a bounded-time 503 with Retry-After, and nothing is buffered.
 */
const logger = createLogger({ name: 'test', level: process.env.LOG_LEVEL ?? 'silent' });
let vhost: TestVhost;
let dir: string;
let conn: amqplib.ChannelModel;
let ch: amqplib.Channel;

/** A TCP proxy in front of the broker: up, down (connections cut and refused), or stalled (the broker's answers dropped). */
class BrokerProxy {
  mode: 'up' | 'down' | 'stall' = 'up';
  private readonly sockets = new Set<Socket>();
  private readonly server: Server;

  constructor(private readonly target: { host: string; port: number }) {
    this.server = createServer((client) => this.accept(client));
  }

  async listen(): Promise<number> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    return (this.server.address() as { port: number }).port;
  }

  set(mode: BrokerProxy['mode']): void {
    this.mode = mode;
    if (mode === 'down') for (const s of this.sockets) s.destroy();
  }

  close(): Promise<void> {
    this.set('down');
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  private accept(client: Socket): void {
    if (this.mode === 'down') {
      client.destroy();
      return;
    }
    const upstream = connect(this.target);
    for (const s of [client, upstream]) {
      this.sockets.add(s);
      s.on('error', () => undefined);
      s.on('close', () => {
        this.sockets.delete(s);
        client.destroy();
        upstream.destroy();
      });
    }
    client.on('data', (d) => upstream.write(d));
    upstream.on('data', (d) => {
      if (this.mode === 'up') client.write(d);
    });
  }
}

function configFor(amqpUrl: string, extra: Record<string, string> = {}): Readonly<ApiConfig> {
  return readApiConfig({ AMQP_URL: amqpUrl, PORT: '0', DATA_DIR: dir, API_PUBLISH_TIMEOUT_MS: '800', ...extra });
}

async function post(base: string, data: unknown, headers: Record<string, string> = {}) {
  const started = Date.now();
  const res = await within(
    10_000,
    'POST',
    fetch(`${base}/api/v1/processData`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify({ data }) }),
  );
  const body = (await res.json()) as { requestId?: string; status?: string; error?: { code: string } };
  return {
    status: res.status,
    retryAfter: res.headers.get('retry-after'),
    code: body.error?.code,
    requestId: body.requestId,
    outcome: body.status,
    ms: Date.now() - started,
  };
}

async function drain(queue: string): Promise<amqplib.GetMessage[]> {
  const out: amqplib.GetMessage[] = [];
  for (let m = await ch.get(queue, { noAck: true }); m !== false; m = await ch.get(queue, { noAck: true })) out.push(m);
  return out;
}

test.before(async () => {
  vhost = await within(15_000, 'create vhost', createTestVhost('api-faults'));
  await within(15_000, 'apply topology', applyTopology({ amqpUrl: vhost.url, compiled: loadCompiledTopology() }));
  dir = mkdtempSync(join(tmpdir(), 'warren-api-faults-'));
  conn = await amqplib.connect(vhost.url);
  ch = await conn.createChannel();
});

test.after(async () => {
  await conn?.close().catch(() => undefined);
  rmSync(dir, { recursive: true, force: true });
  await vhost?.cleanup();
});

test('broker unreachable (closed port): 503 with Retry-After at once; readyz says broker', async () => {
  const closed = createServer();
  await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
  const port = (closed.address() as { port: number }).port;
  await new Promise<void>((r) => closed.close(() => r()));

  const server = new ApiServer({ config: configFor(`amqp://guest:guest@127.0.0.1:${port}`), logger, topologyWaitMs: 0 });
  try {
    const base = `http://127.0.0.1:${(await within(60_000, 'start api', server.start())).port}`;
    const a = await post(base, 'x');
    assert.is(a.status, 503);
    assert.is(a.code, 'BROKER_UNAVAILABLE');
    assert.ok(Number(a.retryAfter) > 0, `Retry-After ${a.retryAfter}`);
    assert.ok(a.ms < 3000, `answered in ${a.ms} ms`);
    const ready = await fetch(`${base}/readyz`);
    assert.is(ready.status, 503);
    const body = (await ready.json()) as { checks: { broker: { ok: boolean }; store: { ok: boolean } } };
    assert.is(body.checks.broker.ok, false);
    assert.is(body.checks.store.ok, true);
    assert.is((await fetch(`${base}/healthz`)).status, 200);
  } finally {
    await server.stop();
  }
});

test('topology missing on the broker: start fails fast, naming what is missing and the fix', async () => {
  const empty = await within(15_000, 'create vhost', createTestVhost('api-empty'));
  const server = new ApiServer({ config: configFor(empty.url), logger });
  try {
    await within(60_000, 'start fails', server.start());
    assert.unreachable('start succeeded without the topology');
  } catch (err) {
    assert.instance(err, TopologyMissingError);
    assert.match((err as Error).message, 'processing.requests');
    assert.match((err as Error).message, 'warren topology apply');
  } finally {
    await server.stop();
    await empty.cleanup();
  }
});

test('broker silent, then gone, then back: unknown outcomes with their requestIds, the silent link dropped, 503 at once, then idempotent retries', async () => {
  const broker = new URL(vhost.url);
  const proxy = new BrokerProxy({ host: broker.hostname, port: Number(broker.port || 5672) });
  const proxyUrl = new URL(vhost.url);
  proxyUrl.host = `127.0.0.1:${await proxy.listen()}`;
  const server = new ApiServer({ config: configFor(proxyUrl.toString(), { API_MAX_IN_FLIGHT: '2' }), logger });
  try {
    const base = `http://127.0.0.1:${(await within(60_000, 'start api', server.start())).port}`;
    await waitFor('api ready', async () => ((await fetch(`${base}/readyz`)).status === 200 ? true : undefined));
    assert.is((await post(base, 'fine')).status, 202);
    await drain(DEFAULT_REQUESTS_QUEUE);

    // Silent broker: publishes reach it, confirms never come back. The API cannot know whether
    // the broker took them: it says so, with the requestId to follow (not a 503 that says "not
    // accepted"), and keeps their rows queued.
    proxy.set('stall');
    const [keyed, plain] = await Promise.all([post(base, 'k2', { 'idempotency-key': 'k2' }), post(base, 'p')]);
    for (const a of [keyed, plain]) {
      assert.is(a.status, 202);
      assert.is(a.outcome, 'unknown');
      assert.type(a.requestId, 'string');
      // At its deadline, not before; how late after it depends on the machine.
      assert.ok(a.ms >= 700, `answered in ${a.ms} ms`);
      const row = (await (await fetch(`${base}/api/v1/requests/${a.requestId}`)).json()) as { status: string };
      assert.is(row.status, 'queued');
    }
    // Nothing at all came back within the deadline: the link is silent, and the API dropped the
    // connection (to try the next node) instead of waiting for heartbeats; until it is back, or
    // while the window (2) is held, requests are refused at once.
    const next = await post(base, 'c');
    assert.is(next.status, 503);
    assert.ok(next.code === 'BROKER_UNAVAILABLE' || next.code === 'OVERLOADED', `code ${next.code}`);
    assert.ok(next.ms < 500, `answered in ${next.ms} ms`);

    // Connection gone: refused at once, the key of a refused request is not kept.
    proxy.set('down');
    const down = await waitFor('broker seen as down', async () => {
      const a = await post(base, 'k3', { 'idempotency-key': 'k3' });
      return a.code === 'BROKER_UNAVAILABLE' ? a : undefined;
    });
    assert.is(down.status, 503);
    assert.ok(down.ms < 500, `answered in ${down.ms} ms`);
    assert.is((await fetch(`${base}/readyz`)).status, 503);

    proxy.set('up');
    await waitFor('api ready again', async () => ((await fetch(`${base}/readyz`)).status === 200 ? true : undefined), 15_000);
    const k3 = await post(base, 'k3', { 'idempotency-key': 'k3' });
    assert.is(k3.status, 202);
    const k2 = await post(base, 'k2', { 'idempotency-key': 'k2' });
    assert.is(k2.status, 202);
    const again = await post(base, 'k2', { 'idempotency-key': 'k2' });
    assert.is(again.requestId, k2.requestId);

    const msgs = await drain(DEFAULT_REQUESTS_QUEUE);
    const ids = msgs.map((m) => m.properties.messageId as string);
    assert.is(ids.filter((id) => id === k3.requestId).length, 1);
    // The timed-out k2 publish may have reached the queue: the retry reused its requestId, so
    // the duplicate is the same request (processed twice at worst, stored once).
    const k2Copies = ids.filter((id) => id === k2.requestId).length;
    assert.ok(k2Copies >= 1 && k2Copies <= 2, `k2 copies ${k2Copies}`);
    const status = (await (await fetch(`${base}/api/v1/requests/${k2.requestId}`)).json()) as { status: string };
    assert.is(status.status, 'queued');

    // The consumers came back too: a result published now is stored.
    const pub = await conn.createConfirmChannel();
    pub.publish(
      'processing',
      'result',
      Buffer.from(JSON.stringify({ requestId: k3.requestId, result: 'back', attempts: 1, processedAt: new Date().toISOString() })),
      {
        correlationId: k3.requestId,
      },
    );
    await pub.waitForConfirms();
    await pub.close();
    await waitFor('result stored after reconnect', async () => {
      const r = (await (await fetch(`${base}/api/v1/requests/${k3.requestId}`)).json()) as { status: string; result?: unknown };
      return r.status === 'done' && r.result === 'back' ? true : undefined;
    });
  } finally {
    await server.stop();
    await proxy.close();
  }
});

test('a nacked publish (classic queue full, reject-publish) is a 503; its key is freed', async () => {
  const nackVhost = await within(15_000, 'create vhost', createTestVhost('api-nack'));
  const compiled = compileTopology(
    parseTopology([
      {
        file: 'nack.yaml',
        text: [
          'exchanges:',
          '  processing: { type: direct }',
          'queues:',
          '  processing.requests:',
          '    type: classic',
          '    bind: { exchange: processing, routingKey: request }',
          '    maxLength: 1',
          '    overflow: reject-publish',
          '  processing.results:',
          '    type: classic',
          '    bind: { exchange: processing, routingKey: result }',
        ].join('\n'),
      },
    ]),
  );
  await within(15_000, 'apply topology', applyTopology({ amqpUrl: nackVhost.url, compiled }));
  const server = new ApiServer({ config: configFor(nackVhost.url), logger, compiled });
  const c = await amqplib.connect(nackVhost.url);
  try {
    const base = `http://127.0.0.1:${(await within(60_000, 'start api', server.start())).port}`;
    assert.is((await post(base, 'fits')).status, 202);
    const refused = await post(base, 'k', { 'idempotency-key': 'nacked' });
    assert.is(refused.status, 503);
    assert.is(refused.code, 'PUBLISH_REJECTED');
    assert.ok(Number(refused.retryAfter) > 0);
    const cch = await c.createChannel();
    assert.ok(await cch.get(DEFAULT_REQUESTS_QUEUE, { noAck: true }));
    const retried = await post(base, 'k', { 'idempotency-key': 'nacked' });
    assert.is(retried.status, 202);
    const m = await cch.get(DEFAULT_REQUESTS_QUEUE, { noAck: true });
    assert.is(m === false ? undefined : m.properties.messageId, retried.requestId);
  } finally {
    await c.close().catch(() => undefined);
    await server.stop();
    await nackVhost.cleanup();
  }
});

test.run();
