// test-timeout-ms: 90000
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import amqplib from 'amqplib';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ApiServer, readApiConfig } from '../../api/index.ts';
import { createLogger, LocalRabbitNode, ManagementClient, portAnswers } from '../../core/index.ts';
import { applyTopology, type CompiledTopology, compileTopology, DEFAULT_REQUESTS_QUEUE, parseTopology } from '../../topology/index.ts';
import { defineWorker, type Worker } from '../../worker/index.ts';
import { loud, waitFor, within } from '../helpers/broker.ts';

/**
 * Issue 7, back-pressure (ARCHITECTURE.md invariant 4), against a PRIVATE RabbitMQ node this file
 * starts and stops (a memory alarm must never be raised on the shared broker on 5672):
 *
 * 1. The main queue is full (max length, reject-publish): the API answers 503 with Retry-After at
 *    once, and 202 again by itself once a worker drains the queue.
 * 2. The broker raises a memory alarm and blocks publishers: 503 with Retry-After at once, /readyz
 *    not ready saying why, and ready/202 again by itself when the alarm clears.
 * 3. Nothing answered 202 is lost: every such requestId is in the store, and ends done.
 */

const NODE = { nodeName: 'warren-bp@localhost', amqpPort: 5731, managementPort: 15731, distPort: 25731 } as const;
const MAX_LENGTH = 10;
/** Far above what an immediate refusal takes, so "answered at once" cannot be a timeout. */
const PUBLISH_TIMEOUT_MS = 8000;
/** "At once": generous for a loaded 2-core machine, still well under PUBLISH_TIMEOUT_MS. */
const PROMPT_MS = 3000;

/**
 * The shipped queue type, quorum, with a small max length. rabbitmq-local.md: a quorum queue
 * does not nack a burst at max length, only publishes made one at a time (it holds within one).
 * The API publishes one message per request and waits for its confirm, so the POSTs below are
 * sent one after another: that is the regime in which the broker's max length really is the
 * back-pressure signal for a quorum queue (for concurrent bursts, API_MAX_IN_FLIGHT bounds the
 * API instead). A classic queue would nack exactly, but would not prove anything about the
 * queue type Warren ships.
 */
const compiled: CompiledTopology = compileTopology(
  parseTopology([
    {
      file: 'backpressure.yaml',
      text: [
        'exchanges:',
        '  processing: { type: direct }',
        'queues:',
        '  processing.requests:',
        '    type: quorum',
        '    bind: { exchange: processing, routingKey: request }',
        `    maxLength: ${MAX_LENGTH}`,
        '    overflow: reject-publish',
        '    deadLetter: true',
        '  processing.results:',
        '    type: quorum',
        '    bind: { exchange: processing, routingKey: result }',
      ].join('\n'),
    },
  ]),
);

const logger = createLogger({ name: 'test', level: process.env.LOG_LEVEL ?? 'silent' });
let base: string;
let node: LocalRabbitNode | undefined;
let nodeStopped = false;
let api: ApiServer | undefined;
let apiBase: string;
let conn: amqplib.ChannelModel | undefined;
let ch: amqplib.Channel;
let mgmt: ManagementClient;
let worker: Worker | undefined;
/** Every requestId answered 202 in this file, with the data it was posted with. */
const accepted = new Map<string, string>();
/** Every requestId a worker handled, with how many times. */
const handled = new Map<string, number>();
let seq = 0;

// If the file dies between start and the after hook (an uncaught error), the node must not outlive it.
const killNodeOnExit = () => {
  if (node && !nodeStopped) node.kill();
};
process.on('exit', killNodeOnExit);

interface Answer {
  status: number;
  retryAfter: string | null;
  code: string | undefined;
  requestId: string | undefined;
  ms: number;
}

async function post(options: { data?: string; idempotencyKey?: string } = {}): Promise<Answer> {
  const data = options.data ?? `bp-${++seq}`;
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (options.idempotencyKey) headers['idempotency-key'] = options.idempotencyKey;
  const started = Date.now();
  const res = await within(15_000, 'POST processData', fetch(`${apiBase}/api/v1/processData`, { method: 'POST', headers, body: JSON.stringify({ data }) }));
  const body = (await res.json()) as { requestId?: string; error?: { code: string } };
  const ms = Date.now() - started;
  if (res.status === 202 && body.requestId) accepted.set(body.requestId, data);
  return { status: res.status, retryAfter: res.headers.get('retry-after'), code: body.error?.code, requestId: body.requestId, ms };
}

function assertPromptRefusal(a: Answer, code: string, what: string): void {
  assert.is(a.status, 503, `${what}: status`);
  assert.is(a.code, code, `${what}: error code`);
  assert.ok(Number(a.retryAfter) > 0, `${what}: Retry-After ${a.retryAfter}`);
  assert.ok(a.ms < PROMPT_MS, `${what}: answered in ${a.ms} ms (the publish timeout is ${PUBLISH_TIMEOUT_MS} ms)`);
}

interface Readyz {
  status: number;
  body: { status: string; checks: { broker: { ok: boolean; detail?: string } } };
}

async function readyz(): Promise<Readyz> {
  const res = await within(10_000, 'GET /readyz', fetch(`${apiBase}/readyz`));
  return { status: res.status, body: (await res.json()) as Readyz['body'] };
}

async function depth(): Promise<number> {
  return (await ch.checkQueue(DEFAULT_REQUESTS_QUEUE)).messageCount;
}

/** The broker's own alarm list (the management API's node stats lag by several seconds). */
async function memAlarm(): Promise<boolean> {
  const out = (await node?.ctl(['eval', 'rabbit_alarm:get_alarms().'], 10_000)) ?? '';
  return /resource_limit,\s*memory/.test(out);
}

async function startWorker(): Promise<Worker> {
  const w = defineWorker<string, string>({
    handler: (data, ctx) => {
      handled.set(ctx.requestId, (handled.get(ctx.requestId) ?? 0) + 1);
      return `${data}-done`;
    },
    urls: [node?.url ?? ''],
    topology: compiled,
    logger,
    concurrency: 20,
    shutdownGraceMs: 5000,
  });
  await within(20_000, 'worker start', w.start());
  return w;
}

async function stopWorker(): Promise<void> {
  const w = worker;
  worker = undefined;
  if (w) await within(15_000, 'worker stop', w.stop());
}

test.before(
  loud(async () => {
    if (!LocalRabbitNode.installed()) throw new Error('rabbitmq-server is not installed: this test starts a private RabbitMQ node');
    for (const port of [NODE.amqpPort, NODE.managementPort, NODE.distPort]) {
      if (await portAnswers(port)) throw new Error(`port ${port} is in use (a leftover warren-bp node?); this test needs it for its private node`);
    }
    base = mkdtempSync(join(tmpdir(), 'warren-bp-'));
    node = new LocalRabbitNode({ ...NODE, baseDir: join(base, 'rabbit') });
    await node.start(60_000);
    mgmt = new ManagementClient({ amqpUrl: node.url, managementUrl: node.managementUrl });
    await waitFor('management API', async () => ((await mgmt.available()) ? true : undefined), 30_000, 250);
    await within(30_000, 'apply topology', applyTopology({ amqpUrl: node.url, managementUrl: node.managementUrl, compiled }));
    conn = await amqplib.connect(node.url);
    ch = await conn.createChannel();
    const config = readApiConfig({
      AMQP_URL: node.url,
      AMQP_MANAGEMENT_URL: node.managementUrl,
      PORT: '0',
      DATA_DIR: join(base, 'data'),
      API_PUBLISH_TIMEOUT_MS: String(PUBLISH_TIMEOUT_MS),
    });
    api = new ApiServer({ config, logger, compiled });
    apiBase = `http://127.0.0.1:${(await within(30_000, 'api start', api.start())).port}`;
    await waitFor('api ready', async () => ((await readyz()).status === 200 ? true : undefined), 20_000);
  }),
);

test.after(
  loud(async () => {
    await stopWorker().catch((err: unknown) => console.error('worker stop failed:', err));
    if (api) await within(30_000, 'api stop', api.stop()).catch((err: unknown) => console.error('api stop failed:', err));
    await conn?.close().catch(() => undefined);
    if (node) {
      const pid = node.pid();
      await within(20_000, 'node stop', node.stop()).catch(() => node?.kill());
      if (pid !== undefined) {
        const gone = await waitFor('node VM exit', () => (isAlive(pid) ? undefined : true), 15_000, 200).catch(() => false);
        if (!gone) {
          node.kill();
          await waitFor('node VM exit after SIGKILL', () => (isAlive(pid) ? undefined : true), 5000, 100).catch(() => undefined);
        }
      }
      nodeStopped = true;
    }
    process.off('exit', killNodeOnExit);
    if (base) rmSync(base, { recursive: true, force: true });
  }),
);

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

test('full main queue: 202 until full, then 503 + Retry-After at once; 202 again once drained, no restart', async () => {
  assert.is(await depth(), 0);
  // One at a time (see the topology comment): accept until the first refusal.
  const answers: Answer[] = [];
  for (let i = 0; i < MAX_LENGTH + 5; i++) {
    const a = await post();
    answers.push(a);
    if (a.status !== 202) break;
  }
  const acceptedCount = answers.filter((a) => a.status === 202).length;
  // A quorum queue holds its max length "within one" for one-at-a-time publishes.
  assert.ok(acceptedCount >= MAX_LENGTH && acceptedCount <= MAX_LENGTH + 1, `accepted ${acceptedCount} before the first refusal (max length ${MAX_LENGTH})`);
  const first = answers.at(-1) as Answer;
  assertPromptRefusal(first, 'PUBLISH_REJECTED', 'first refusal');

  // Still full: every further request is refused the same way, and nothing was buffered.
  for (let i = 0; i < 3; i++) assertPromptRefusal(await post(), 'PUBLISH_REJECTED', `refusal ${i + 2}`);
  assert.is(await depth(), acceptedCount, 'the queue holds exactly the accepted requests');
  // A full queue is back-pressure, not a broken API: /readyz stays ready.
  assert.is((await readyz()).status, 200);

  // Drain with a real worker; the same API, untouched, accepts again.
  worker = await startWorker();
  await waitFor('queue drained', async () => ((await depth()) === 0 ? true : undefined), 20_000, 200);
  for (let i = 0; i < 5; i++) {
    const a = await post();
    assert.is(a.status, 202, `after the drain, POST ${i + 1}: ${a.status} ${a.code ?? ''}`);
  }
  await stopWorker();
});

test('memory alarm: 503 + Retry-After at once, /readyz not ready saying why; ready and 202 again when it clears', async () => {
  assert.ok(node);
  const before = await post();
  assert.is(before.status, 202, 'a request is accepted before the alarm');
  assert.is((await readyz()).status, 200);

  await node.ctl(['set_vm_memory_high_watermark', '0.0000001']);
  try {
    await waitFor('memory alarm raised', async () => ((await memAlarm()) ? true : undefined), 15_000, 200);
    // RabbitMQ blocks a connection only once it publishes under the alarm. The API's alarm probe
    // publishes on a connection of its own every 2 s, so /readyz turns not ready before any
    // request has run into the alarm.
    const r = await waitFor(
      '/readyz not ready before any POST',
      async () => {
        const res = await readyz();
        return res.status === 503 ? res : undefined;
      },
      10_000,
      200,
    );
    assert.is(r.body.status, 'not ready');
    assert.is(r.body.checks.broker.ok, false);
    assert.match(r.body.checks.broker.detail ?? '', /block/i);
    // Refused at once, not after the publish timeout. The first carries an Idempotency-Key: a
    // publish the broker held when it blocked may still reach the queue after the alarm, so a
    // retry with the key must reuse its requestId (checked in the last test: no work under an
    // unknown id).
    const keyed = await post({ data: 'bp-keyed', idempotencyKey: 'bp-alarm-key' });
    assertPromptRefusal(keyed, 'BROKER_BLOCKED', 'first POST under a memory alarm');
    for (let i = 0; i < 3; i++) assertPromptRefusal(await post(), 'BROKER_BLOCKED', `POST ${i + 2} under the alarm`);
    assert.is((await readyz()).status, 503, '/readyz while blocked');
  } finally {
    await node.ctl(['set_vm_memory_high_watermark', '0.4']);
  }

  await waitFor('memory alarm cleared', async () => ((await memAlarm()) ? undefined : true), 15_000, 200);
  await waitFor('/readyz ready again', async () => ((await readyz()).status === 200 ? true : undefined), 15_000, 200);
  const retried = await post({ data: 'bp-keyed', idempotencyKey: 'bp-alarm-key' });
  assert.is(retried.status, 202, `the keyed request retried after the alarm: ${retried.status} ${retried.code ?? ''}`);
  for (let i = 0; i < 3; i++) {
    const a = await post();
    assert.is(a.status, 202, `after the alarm, POST ${i + 1}: ${a.status} ${a.code ?? ''}`);
  }
});

test('nothing answered 202 is lost: each requestId is in the store, ends done, and no work runs under an id never answered 202', async () => {
  // At least test 1's: MAX_LENGTH (+1) and 5 more (test 2 adds 5 when it passes).
  assert.ok(accepted.size >= MAX_LENGTH + 5, `202s recorded: ${accepted.size}`);
  const get = async (id: string) => {
    const res = await within(10_000, `GET ${id}`, fetch(`${apiBase}/api/v1/requests/${id}`));
    return { http: res.status, ...((await res.json()) as { status?: string; result?: unknown }) };
  };
  for (const id of accepted.keys()) {
    const r = await get(id);
    assert.is(r.http, 200, `${id} in the store`);
    assert.ok(r.status === 'queued' || r.status === 'done', `${id}: ${r.status}`);
  }
  worker = await startWorker();
  const notDone = async () => {
    const left: string[] = [];
    for (const id of accepted.keys()) if ((await get(id)).status !== 'done') left.push(id);
    return left;
  };
  await waitFor(`all ${accepted.size} accepted requests done`, async () => ((await notDone()).length === 0 ? true : undefined), 30_000, 250).catch(
    async (err: Error) => {
      throw new Error(`${err.message}; not done: ${(await notDone()).join(', ')}`);
    },
  );
  await waitFor('queue drained', async () => ((await depth()) === 0 ? true : undefined), 10_000, 200);
  await stopWorker();
  for (const [id, data] of accepted) assert.is((await get(id)).result, `${data}-done`, `${id} result`);
  // Refused requests (nacked, or refused while blocked) never ran; the one publish a block held
  // unconfirmed ran under the requestId its Idempotency-Key retry was given, at most twice.
  const unknown = [...handled.keys()].filter((id) => !accepted.has(id));
  assert.equal(unknown, [], 'work ran under requestIds never answered 202');
  for (const [id, n] of handled) assert.ok(n <= 2, `${id} handled ${n} times`);
});

test.run();
