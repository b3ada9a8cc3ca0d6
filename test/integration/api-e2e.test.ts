import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import amqplib from 'amqplib';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { resultCountOf } from '../../core/index.ts';
import { applyTopology, DEFAULT_REQUESTS_QUEUE, DEFAULT_RESULTS_QUEUE, loadCompiledTopology } from '../../topology/index.ts';
import { createTestVhost, type TestVhost, waitFor, within } from '../helpers/broker.ts';
import { killAll, startApi as startApiProcess, startWarren as startWarrenProcess } from '../helpers/warren-process.ts';

/**
 * End to end, as a user runs it: `warren api` and `warren worker` as real processes on a broker
 * vhost of their own. Covers the tutorial's round trip, a dead request, and an API restart while
 * workers keep producing results.
 */
let vhost: TestVhost;
let dir: string;
let conn: amqplib.ChannelModel;
let ch: amqplib.Channel;
let api: { proc: ChildProcess; base: string } | undefined;
let worker: ChildProcess | undefined;

function startWarren(args: string[], env: Record<string, string>) {
  return startWarrenProcess(args, { AMQP_URL: vhost.url, ...env });
}

async function startApi(): Promise<{ proc: ChildProcess; base: string }> {
  const a = await startApiProcess({ AMQP_URL: vhost.url, DATA_DIR: dir });
  return { proc: a.proc, base: a.base };
}

function startWorker(): ChildProcess {
  const s = startWarren(['worker', '--replicas', '1', '--concurrency', '4'], { DEMO_DELAY_MS: '0', LOG_LEVEL: 'warn' });
  s.proc.on('exit', (code) => {
    if (code !== 0 && code !== null) process.stderr.write(`worker exited ${code}: ${s.output().slice(-2000)}\n`);
  });
  return s.proc;
}

function stop(proc: ChildProcess, ms = 15_000): Promise<number | null> {
  if (proc.exitCode !== null) return Promise.resolve(proc.exitCode);
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
  proc.kill('SIGTERM');
  return within(ms, 'process exits after SIGTERM', exited);
}

async function post(data: unknown): Promise<string> {
  const res = await within(
    10_000,
    'POST',
    fetch(`${api?.base}/api/v1/processData`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ data }) }),
  );
  assert.is(res.status, 202);
  return ((await res.json()) as { requestId: string }).requestId;
}

async function status(requestId: string): Promise<Record<string, unknown>> {
  const res = await fetch(`${api?.base}/api/v1/requests/${requestId}`);
  assert.is(res.status, 200);
  return (await res.json()) as Record<string, unknown>;
}

function until(requestId: string, wanted: string, ms = 15_000): Promise<Record<string, unknown>> {
  return waitFor(
    `${requestId} ${wanted}`,
    async () => {
      const s = await status(requestId);
      return s.status === wanted ? s : undefined;
    },
    ms,
  );
}

test.before(async () => {
  vhost = await within(15_000, 'create vhost', createTestVhost('api-e2e'));
  await within(15_000, 'apply topology', applyTopology({ amqpUrl: vhost.url, compiled: loadCompiledTopology() }));
  dir = mkdtempSync(join(tmpdir(), 'warren-api-e2e-'));
  conn = await amqplib.connect(vhost.url);
  ch = await conn.createChannel();
  worker = startWorker();
  api = await startApi();
});

test.after(async () => {
  killAll();
  await conn?.close().catch(() => undefined);
  rmSync(dir, { recursive: true, force: true });
  await vhost?.cleanup();
});

test('POST, then GET until done with my-data-processed', async () => {
  const id = await post('my-data');
  const s = await until(id, 'done');
  assert.is(s.result, 'my-data-processed');
  assert.is(s.attempts, 1);
});

test('a request the processor refuses for good ends dead, with its reason', async () => {
  const id = await post(42);
  const s = await until(id, 'dead');
  assert.is((s.error as { reason: string }).reason, 'permanent');
});

test('the API stopped while workers finish, restarted: every result is stored', async () => {
  assert.ok(worker && api);
  // Work queued with no worker, then the API goes away; only then do workers run.
  assert.is(await stop(worker), 0);
  const ids: string[] = [];
  for (let i = 0; i < 20; i++) ids.push(await post(`item-${i}`));
  assert.is((await status(ids[0] as string)).status, 'queued');
  assert.is(await stop(api.proc), 0);
  api = undefined;

  worker = startWorker();
  await waitFor('all results waiting in the queue', async () => ((await resultsWaiting()) === 20 ? true : undefined), 30_000);
  assert.is((await ch.checkQueue(DEFAULT_REQUESTS_QUEUE)).messageCount, 0);

  api = await startApi();
  for (const [i, id] of ids.entries()) assert.is((await until(id, 'done')).result, `item-${i}-processed`);
  await waitFor('results queue drained', async () => ((await ch.checkQueue(DEFAULT_RESULTS_QUEUE)).messageCount === 0 ? true : undefined));
});

/**
 * Results in the results queue, counting each of a results batch (a worker sends the results that
 * finish together in one message): every message is read and put back.
 */
async function resultsWaiting(): Promise<number> {
  const peek = await conn.createChannel();
  try {
    let n = 0;
    for (let m = await peek.get(DEFAULT_RESULTS_QUEUE); m !== false; m = await peek.get(DEFAULT_RESULTS_QUEUE)) {
      n += resultCountOf(m.properties);
    }
    return n;
  } finally {
    // Closing the channel puts back what it read and did not ack.
    await peek.close();
  }
}

test('SIGTERM: both processes exit 0', async () => {
  assert.ok(worker && api);
  assert.is(await stop(api.proc), 0);
  assert.is(await stop(worker), 0);
});

test.run();
