import { randomBytes } from 'node:crypto';
import { Queue } from 'bullmq';
import { pino } from 'pino';
import { type ManagementClient, portAnswers } from '../../core/index.ts';
import type { CompiledTopology } from '../../topology/index.ts';
import { startApi, startService, startWorkers, waitHttp } from '../lib/procs.ts';
import { payload } from '../lib/raw-amqp.ts';
import { startPrivateRedis } from '../lib/redis-server.ts';
import { scrapeMetrics, waitFor } from '../lib/scrape.ts';
import { bucketDelta, bucketize, exactQuantile, histogramBuckets, metricSum, quantileMs } from '../lib/steps.ts';
import { warren } from '../lib/warren.ts';
import { purge } from './amqp.ts';
import { waitConsumers } from './sustained.ts';

const silent = pino({ level: 'silent' });
const BULLMQ_WORKER = new URL('../lib/bullmq-worker.ts', import.meta.url).pathname;
const STORED = 'warren_results_stored_total';
const E2E = 'warren_end_to_end_seconds';

/** One side of the peer comparison: `count` jobs enqueued as fast as a window allows, to results stored. */
export interface PeerRun {
  count: number;
  enqueuePerSecond: number;
  /** First enqueue to last result stored. */
  e2ePerSecond: number;
  /** Interpolated in the API histogram's buckets (Warren's only measure; BullMQ's read the same way). */
  e2eP50Ms: number | undefined;
  e2eP99Ms: number | undefined;
  /** BullMQ only: from every job's timestamps (Warren's histogram has no exact figure). */
  exactP50Ms?: number | undefined;
  exactP99Ms?: number | undefined;
  workerPeakRssMb: number;
}

export interface PeerOptions {
  count: number;
  /** Enqueues outstanding at once on each side. */
  window: number;
  /** Handler concurrency of each of the two worker processes. */
  concurrency: number;
  /**
   * Jobs through the whole path before the timed run, on each side: compiled code (V8's optimizing
   * tiers, PGlite's WebAssembly), connections and stores warmed. 1 000 left Warren's processes
   * still compiling: in four timed runs of one set of processes, the workers' CPU per job fell by
   * half from the first to the fourth (bench/README.md).
   */
  warmup: number;
}

/** The job's data: 216 characters, the enqueue section's 256 B body, on both sides. */
function jobData(): string {
  return JSON.parse(payload(256, 0).toString()).data as string;
}

async function inWindow(count: number, window: number, each: (i: number) => Promise<unknown>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(window, count) }, async () => {
      while (next < count) await each(next++);
    }),
  );
}

/**
 * Warren: `producer.enqueue` (createProducer, confirms) -> processing.requests -> 2 worker
 * replicas (no-op processor) -> result -> the API's consumer -> the embedded store. Completion
 * and latency come from the API's counters and its end-to-end histogram (acceptedAt is stamped by
 * the producer), scraped every 100 ms.
 */
export async function benchWarrenPeer(url: string, mgmt: ManagementClient, compiled: CompiledTopology, port: number, opts: PeerOptions): Promise<PeerRun> {
  const base = `http://127.0.0.1:${port}`;
  const api = startApi(url, port);
  const workers = startWorkers(url, 2, opts.concurrency, { DEMO_DELAY_MS: '0' });
  const { createProducer } = (await warren()).producer;
  const producer = await createProducer({ urls: [url], topology: compiled, maxInFlight: opts.window, publishTimeoutMs: 10_000, logger: silent });
  const data = jobData();
  try {
    await waitHttp(`${base}/readyz`, 60_000);
    await waitConsumers(mgmt, 'processing.requests', 2, 30_000);
    const stored0 = metricSum(await scrapeMetrics(base), STORED);
    await inWindow(opts.warmup, opts.window, () => producer.enqueue('processing.requests', data));
    await waitStored(base, stored0 + opts.warmup, 120_000);
    const before = await scrapeMetrics(base);
    const started = performance.now();
    await inWindow(opts.count, opts.window, () => producer.enqueue('processing.requests', data));
    const enqueued = performance.now();
    const after = await waitStored(base, metricSum(before, STORED) + opts.count, 120_000);
    const finished = performance.now();
    const buckets = bucketDelta(histogramBuckets(after, E2E), histogramBuckets(before, E2E));
    return {
      count: opts.count,
      enqueuePerSecond: (opts.count / (enqueued - started)) * 1000,
      e2ePerSecond: (opts.count / (finished - started)) * 1000,
      e2eP50Ms: quantileMs(buckets, 0.5),
      e2eP99Ms: quantileMs(buckets, 0.99),
      workerPeakRssMb: workers.peakRssMb(),
    };
  } finally {
    await producer.close().catch(() => undefined);
    await Promise.all([api.stop(), workers.stop()]);
    await purge(url, 'processing.requests').catch(() => undefined);
    await purge(url, 'processing.results').catch(() => undefined);
  }
}

/**
 * BullMQ on the Redis at `redisPort`: `queue.add` with `window` adds outstanding -> 2 worker
 * processes (`Worker`, no-op processor returning a small result) -> the result kept as the job's
 * return value. Completion is the completed count; latency is each job's finishedOn - timestamp
 * (both set by BullMQ, on one machine's clock). The queue lives under a prefix of its own and is
 * obliterated after, so the machine's shared Redis keeps nothing of the run.
 */
export async function benchBullmq(redisPort: number, opts: PeerOptions): Promise<PeerRun> {
  const name = `bench-${randomBytes(3).toString('hex')}`;
  const prefix = 'warren-bench';
  const queue = new Queue(name, { connection: { host: '127.0.0.1', port: redisPort }, prefix });
  const env = { BULLMQ_PORT: String(redisPort), BULLMQ_QUEUE: name, BULLMQ_PREFIX: prefix, BULLMQ_CONCURRENCY: String(opts.concurrency) };
  const workers = [startService(['--import', 'tsx', BULLMQ_WORKER], env), startService(['--import', 'tsx', BULLMQ_WORKER], env)];
  const data = jobData();
  try {
    await waitFor(async () => (await queue.getWorkersCount()) >= 2, 30_000, 'two BullMQ workers on the queue');
    await inWindow(opts.warmup, opts.window, () => queue.add('warm', { data }));
    await waitCompleted(queue, opts.warmup, 120_000);
    const started = performance.now();
    const startedAt = Date.now();
    await inWindow(opts.count, opts.window, () => queue.add('bench', { data }));
    const enqueued = performance.now();
    await waitCompleted(queue, opts.warmup + opts.count, 120_000);
    const latencies: number[] = [];
    let lastFinished = startedAt;
    for (let from = 0; from < opts.warmup + opts.count; from += 1000) {
      for (const job of await queue.getJobs(['completed'], from, from + 999)) {
        if (job.name !== 'bench' || job.finishedOn === undefined) continue;
        latencies.push(job.finishedOn - job.timestamp);
        lastFinished = Math.max(lastFinished, job.finishedOn);
      }
    }
    if (latencies.length !== opts.count) throw new Error(`BullMQ: ${latencies.length} of ${opts.count} jobs read back as completed`);
    const buckets = bucketize(latencies);
    return {
      count: opts.count,
      enqueuePerSecond: (opts.count / (enqueued - started)) * 1000,
      // The last finishedOn, not the poll that saw it: BullMQ's own clock, no polling error.
      e2ePerSecond: (opts.count / Math.max(1, lastFinished - startedAt)) * 1000,
      e2eP50Ms: quantileMs(buckets, 0.5),
      e2eP99Ms: quantileMs(buckets, 0.99),
      exactP50Ms: exactQuantile(latencies, 0.5),
      exactP99Ms: exactQuantile(latencies, 0.99),
      workerPeakRssMb: workers.reduce((n, w) => n + w.peakRssMb(), 0),
    };
  } finally {
    await Promise.all(workers.map((w) => w.stop()));
    await queue.obliterate({ force: true }).catch(() => undefined);
    await queue.close();
  }
}

async function waitCompleted(queue: Queue, count: number, ms: number): Promise<void> {
  await waitFor(async () => ((await queue.getJobCounts('completed')).completed ?? 0) >= count, ms, `${count} completed BullMQ jobs`, 50);
}

async function waitStored(base: string, stored: number, ms: number): Promise<string> {
  let last = '';
  await waitFor(
    async () => {
      last = await scrapeMetrics(base);
      return metricSum(last, STORED) >= stored;
    },
    ms,
    `${stored} results stored by the API`,
    100,
  );
  return last;
}

export interface PeersResult {
  options: PeerOptions;
  warren: PeerRun;
  /** BullMQ on a redis-server the bench started: appendonly yes, appendfsync everysec. */
  bullmqDurable: PeerRun;
  /** BullMQ on the machine's Redis at 127.0.0.1:6379 as it runs (here: no persistence), or why not. */
  bullmqMachine: PeerRun | { skipped: string };
}

/** Warren's producer path, then BullMQ on a durable private Redis, then on the machine's Redis. */
export async function benchPeers(url: string, mgmt: ManagementClient, compiled: CompiledTopology, port: number, opts: PeerOptions): Promise<PeersResult> {
  const warren = await benchWarrenPeer(url, mgmt, compiled, port, opts);
  let redisPort = 6391;
  while (await portAnswers(redisPort)) redisPort++;
  const redis = await startPrivateRedis(redisPort);
  let bullmqDurable: PeerRun;
  try {
    bullmqDurable = await benchBullmq(redisPort, opts);
  } finally {
    await redis.stop();
  }
  const bullmqMachine = (await portAnswers(6379)) ? await benchBullmq(6379, opts) : { skipped: 'no Redis on 127.0.0.1:6379' };
  return { options: opts, warren, bullmqDurable, bullmqMachine };
}
