// test-timeout-ms: 90000
import { mkdtempSync, rmSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import amqplib from 'amqplib';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ApiServer, readApiConfig } from '../../api/index.ts';
import { createLogger, PermanentError, serveMetrics } from '../../core/index.ts';
import { applyTopology, DEFAULT_REQUESTS_QUEUE, loadCompiledTopology, routesFor } from '../../topology/index.ts';
import { defineWorker, type Worker } from '../../worker/index.ts';
import { createTestVhost, type TestVhost, waitFor, within } from '../helpers/broker.ts';
import { startWarren } from '../helpers/warren-process.ts';

/**
 * GET /metrics on the API, on a worker and on a supervisor (the sum of its replicas): the
 * counters move with real traffic through a real broker, by outcome.
 */
const logger = createLogger({ name: 'test', level: process.env.LOG_LEVEL ?? 'silent' });
const compiled = loadCompiledTopology();
const requestRoute = routesFor(compiled, DEFAULT_REQUESTS_QUEUE).publish as { exchange: string; routingKey: string };
const Q = DEFAULT_REQUESTS_QUEUE;

let vhost: TestVhost;
let dir: string;
let api: ApiServer;
let base: string;
let worker: Worker;
let workerMetrics: Server | undefined;

test.before(async () => {
  vhost = await within(15_000, 'create vhost', createTestVhost('metrics'));
  await within(15_000, 'apply topology', applyTopology({ amqpUrl: vhost.url, compiled }));
  dir = mkdtempSync(join(tmpdir(), 'warren-metrics-'));
  api = new ApiServer({ config: readApiConfig({ AMQP_URL: vhost.url, PORT: '0', DATA_DIR: dir }), logger });
  const { port } = await within(30_000, 'api start', api.start());
  base = `http://127.0.0.1:${port}`;
  worker = defineWorker({
    handler: (data) => {
      if (data === 'fail') throw new PermanentError('this one always fails');
      return `${String(data)}-ok`;
    },
    urls: [vhost.url],
    topology: compiled,
    logger,
    concurrency: 4,
  });
  await within(15_000, 'worker start', worker.start());
  workerMetrics = await serveMetrics({ source: worker.registry, port: 0, host: '127.0.0.1', logger });
});

test.after(async () => {
  workerMetrics?.close();
  await worker?.stop(2000);
  await api?.stop();
  await vhost?.cleanup();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test('API and worker count requests, publishes, outcomes and times', async () => {
  const ids: string[] = [];
  for (const data of ['a', 'b', 'c', 'fail']) {
    const res = await fetch(`${base}/api/v1/processData`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ data }) });
    assert.is(res.status, 202);
    ids.push(((await res.json()) as { requestId: string }).requestId);
  }
  const bad = await fetch(`${base}/api/v1/processData`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"data": ' });
  assert.is(bad.status, 400);
  // A malformed message straight onto the queue: the worker dead-letters it as malformed.
  const conn = await amqplib.connect(vhost.url);
  try {
    const ch = await conn.createConfirmChannel();
    ch.publish(requestRoute.exchange, requestRoute.routingKey, Buffer.from('not json'), { persistent: true, messageId: 'malformed-1' });
    await ch.waitForConfirms();
  } finally {
    await conn.close();
  }
  for (const id of [...ids, 'malformed-1']) {
    await waitFor(`${id} settled`, async () => {
      const res = await fetch(`${base}/api/v1/requests/${id}`);
      if (res.status !== 200) return undefined;
      const { status } = (await res.json()) as { status: string };
      return status === 'done' || status === 'dead' ? status : undefined;
    });
  }

  const a = await scrape(`${base}/metrics`);
  assert.is(value(a, 'warren_requests_accepted_total'), 4);
  assert.is(value(a, 'warren_requests_rejected_total', { reason: 'MALFORMED_JSON' }), 1);
  assert.is(value(a, 'warren_publishes_total'), 4);
  assert.is(value(a, 'warren_publish_confirms_total', { outcome: 'ack' }), 4);
  assert.is(value(a, 'warren_publish_confirm_seconds_count'), 4);
  assert.is(value(a, 'warren_results_stored_total', { status: 'done' }), 3);
  assert.is(value(a, 'warren_results_stored_total', { status: 'dead' }), 2);
  // Only requests the API accepted carry the accepted-at time: the malformed one is not timed.
  assert.is(value(a, 'warren_end_to_end_seconds_count', { status: 'done' }), 3);
  assert.is(value(a, 'warren_end_to_end_seconds_count', { status: 'dead' }), 1);
  assert.ok((value(a, 'warren_end_to_end_seconds_sum', { status: 'done' }) ?? 0) > 0);
  assert.is(value(a, 'warren_publishes_in_flight'), 0);
  assert.is(value(a, 'warren_broker_blocked'), 0);
  // Sampled from the management API, whose figures trail by its stats interval (5 s): only the
  // presence of a number is certain at once.
  await waitFor(
    'queue gauges',
    async () => {
      const t = await scrape(`${base}/metrics`);
      return value(t, 'warren_queue_messages', { queue: Q }) !== undefined && value(t, 'warren_queue_consumers', { queue: Q }) !== undefined ? t : undefined;
    },
    15_000,
    500,
  );
  assert.ok((value(a, 'process_resident_memory_bytes') ?? 0) > 0, 'process metrics');
  // One family on request (what the bench polls while it runs): the same figures, nothing else.
  const stored = await scrape(`${base}/metrics?name=warren_results_stored_total`);
  assert.equal(
    [...stored.matchAll(/^# HELP (\S+)/gm)].map((m) => m[1]),
    ['warren_results_stored_total'],
  );
  assert.is(value(stored, 'warren_results_stored_total', { status: 'done' }), 3);

  assert.ok(workerMetrics, 'the worker metrics server listens');
  const port = (workerMetrics.address() as AddressInfo).port;
  const w = await scrape(`http://127.0.0.1:${port}/metrics`);
  const processed = (outcome: string) => value(w, 'warren_messages_processed_total', { queue: Q, outcome });
  assert.is(processed('ok'), 3);
  assert.is(processed('dead-lettered'), 1);
  assert.is(processed('malformed'), 1);
  assert.is(processed('retried'), 0);
  assert.is(value(w, 'warren_processing_seconds_count', { queue: Q, outcome: 'ok' }), 3);
  assert.is(value(w, 'warren_processing_seconds_count', { queue: Q, outcome: 'failed' }), 1);
  assert.is(value(w, 'warren_publish_confirms_total', { outcome: 'ack' }), 5, '3 results and 2 dead letters');
  assert.is(value(w, 'warren_messages_in_flight', { queue: Q }), 0);
  assert.is(value(w, 'warren_redeliveries_total', { queue: Q }), 0);
});

test('a supervisor serves the sum of its replicas', async () => {
  // Only the replicas consume from here on.
  await worker.stop(2000);
  const port = await freePort();
  const workers = startWarren(['worker', '--replicas', '2', '--concurrency', '5'], {
    AMQP_URL: vhost.url,
    DEMO_DELAY_MS: '20',
    WORKER_METRICS_PORT: String(port),
    LOG_LEVEL: 'info',
  });
  try {
    await waitFor('two replicas consuming', async () => ((await queueConsumers()) >= 2 ? true : undefined), 30_000, 250);
    const conn = await amqplib.connect(vhost.url);
    try {
      const ch = await conn.createConfirmChannel();
      for (let i = 0; i < 40; i++) {
        const requestId = `sup-${i}`;
        ch.publish(requestRoute.exchange, requestRoute.routingKey, Buffer.from(JSON.stringify({ requestId, data: requestId })), {
          persistent: true,
          messageId: requestId,
        });
      }
      await ch.waitForConfirms();
    } finally {
      await conn.close();
    }
    const text = await waitFor(
      '40 processed in the sum',
      async () => {
        const t = await scrape(`http://127.0.0.1:${port}/metrics`).catch(() => undefined);
        return t && value(t, 'warren_messages_processed_total', { queue: Q, outcome: 'ok' }) === 40 ? t : undefined;
      },
      30_000,
      250,
    );
    // Results that finish together share a message (WORKER_RESULT_BATCH): 40 results are 40
    // confirmed publishes at most, and at least one per replica.
    const confirms = value(text, 'warren_publish_confirms_total', { outcome: 'ack' }) ?? 0;
    assert.ok(confirms >= 2 && confirms <= 40, `${confirms} confirmed publishes for 40 results`);
    assert.is(value(text, 'warren_processing_seconds_count', { queue: Q, outcome: 'ok' }), 40);
    assert.is(value(text, 'warren_messages_in_flight', { queue: Q }), 0);
    // Both replicas took a share, so 40 in the sum is the sum, not one replica's count.
    const processedBy = (r: number) =>
      workers
        .output()
        .split('\n')
        .filter((l) => l.includes(`"replica":${r}`) && l.includes('message processed')).length;
    assert.ok(processedBy(0) > 0 && processedBy(1) > 0, `replica 0: ${processedBy(0)}, replica 1: ${processedBy(1)}`);
    assert.is(processedBy(0) + processedBy(1), 40);
  } finally {
    await workers.stop();
  }
});

/** Consumers on the requests queue (passive declare: exact, unlike the management API's figures). */
async function queueConsumers(): Promise<number> {
  const conn = await amqplib.connect(vhost.url);
  try {
    const ch = await conn.createChannel();
    return (await ch.checkQueue(Q)).consumerCount;
  } finally {
    await conn.close();
  }
}

async function scrape(url: string): Promise<string> {
  const res = await within(10_000, `GET ${url}`, fetch(url));
  assert.is(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /text\/plain/);
  return res.text();
}

/** The value of one sample in Prometheus text, matching every given label; undefined if absent. */
function value(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const have = Object.fromEntries([...(m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((l) => [l[1], l[2]]));
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) return Number(m[3]);
  }
  return undefined;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

test.run();
