import { randomBytes } from 'node:crypto';
import { Queue } from 'bullmq';
import { pino } from 'pino';
import { type ManagementClient, portAnswers } from '../../core/index.ts';
import type { CompiledTopology } from '../../topology/index.ts';
import { inOrder, medianRound, runRounds } from '../lib/pair-rounds.ts';
import { withPgSchema } from '../lib/pg-schema.ts';
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
  /** Timed rounds of both sides (odd: the median round is reported). */
  rounds: number;
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

/** One side of the peer comparison, started and warmed once, then run for several timed rounds. */
interface PeerSide {
  /** `count` jobs enqueued with `window` outstanding, timed from the first enqueue to the last result stored. */
  run(count: number): Promise<PeerRun>;
  stop(): Promise<void>;
}

/**
 * Warren: `producer.enqueue` (createProducer, confirms) -> processing.requests -> 2 worker
 * replicas (no-op processor) -> result -> the API's consumer -> the embedded store. Completion
 * and latency come from the API's counters and its end-to-end histogram (acceptedAt is stamped by
 * the producer). Started and warmed here (opts.warmup jobs through the whole path, untimed).
 */
export async function startWarrenPeer(
  url: string,
  mgmt: ManagementClient,
  compiled: CompiledTopology,
  port: number,
  opts: PeerOptions,
  apiEnv: NodeJS.ProcessEnv = {},
): Promise<PeerSide> {
  const base = `http://127.0.0.1:${port}`;
  const api = startApi(url, port, apiEnv);
  const workers = startWorkers(url, 2, opts.concurrency, { DEMO_DELAY_MS: '0' });
  const stopServices = () => Promise.all([api.stop(), workers.stop()]);
  const { createProducer } = (await warren()).producer;
  const producer = await createProducer({ urls: [url], topology: compiled, maxInFlight: opts.window, publishTimeoutMs: 10_000, logger: silent }).catch(
    async (err: unknown) => {
      await stopServices();
      throw err;
    },
  );
  const data = jobData();
  const stop = async () => {
    await producer.close().catch(() => undefined);
    await stopServices();
    await purge(url, 'processing.requests').catch(() => undefined);
    await purge(url, 'processing.results').catch(() => undefined);
  };
  await warmOrStop(stop, async () => {
    await waitHttp(`${base}/readyz`, 60_000);
    await waitConsumers(mgmt, 'processing.requests', 2, 30_000);
    const stored0 = metricSum(await scrapeMetrics(base), STORED);
    await inWindow(opts.warmup, opts.window, () => producer.enqueue('processing.requests', data));
    await waitStored(base, stored0 + opts.warmup, 120_000);
  });
  return {
    stop,
    run: async (count) => {
      const before = await scrapeMetrics(base);
      const started = performance.now();
      await inWindow(count, opts.window, () => producer.enqueue('processing.requests', data));
      const enqueued = performance.now();
      await waitStored(base, metricSum(before, STORED) + count, 120_000);
      const finished = performance.now();
      const after = await scrapeMetrics(base);
      const buckets = bucketDelta(histogramBuckets(after, E2E), histogramBuckets(before, E2E));
      return {
        count,
        enqueuePerSecond: (count / (enqueued - started)) * 1000,
        e2ePerSecond: (count / (finished - started)) * 1000,
        e2eP50Ms: quantileMs(buckets, 0.5),
        e2eP99Ms: quantileMs(buckets, 0.99),
        workerPeakRssMb: workers.peakRssMb(),
      };
    },
  };
}

/**
 * BullMQ on the Redis at `redisPort`: `queue.add` with `window` adds outstanding -> 2 worker
 * processes (`Worker`, no-op processor returning a small result) -> the result kept as the job's
 * return value. Completion is the completed count; latency is each job's finishedOn - timestamp
 * (both set by BullMQ, on one machine's clock). The queue lives under a prefix of its own and is
 * obliterated at stop(), so the machine's shared Redis keeps nothing of the run. Started and
 * warmed here.
 */
export async function startBullmqPeer(redisPort: number, opts: PeerOptions): Promise<PeerSide> {
  const name = `bench-${randomBytes(3).toString('hex')}`;
  const prefix = 'warren-bench';
  const queue = new Queue(name, { connection: { host: '127.0.0.1', port: redisPort }, prefix });
  const env = { BULLMQ_PORT: String(redisPort), BULLMQ_QUEUE: name, BULLMQ_PREFIX: prefix, BULLMQ_CONCURRENCY: String(opts.concurrency) };
  const workers = [startService(['--import', 'tsx', BULLMQ_WORKER], env), startService(['--import', 'tsx', BULLMQ_WORKER], env)];
  const data = jobData();
  const stop = async () => {
    await Promise.all(workers.map((w) => w.stop()));
    await queue.obliterate({ force: true }).catch(() => undefined);
    await queue.close();
  };
  /** Jobs completed so far (BullMQ keeps them, with their results): what the next round adds to. */
  let completedBefore = 0;
  let round = 0;
  await warmOrStop(stop, async () => {
    await waitFor(async () => (await queue.getWorkersCount()) >= 2, 30_000, 'two BullMQ workers on the queue');
    await inWindow(opts.warmup, opts.window, () => queue.add('warm', { data }));
    await waitCompleted(queue, opts.warmup, 120_000);
    completedBefore = (await queue.getJobCounts('completed')).completed ?? 0;
  });
  return {
    stop,
    run: async (count) => {
      const label = `bench-${++round}`;
      const started = performance.now();
      const startedAt = Date.now();
      await inWindow(count, opts.window, () => queue.add(label, { data }));
      const enqueued = performance.now();
      const total = completedBefore + count;
      await waitCompleted(queue, total, 120_000);
      const latencies: number[] = [];
      let lastFinished = startedAt;
      // Newest first: this round's jobs are the first `count` of the completed set.
      for (let from = 0; from < total; from += 1000) {
        for (const job of await queue.getJobs(['completed'], from, from + 999)) {
          if (job.name !== label || job.finishedOn === undefined) continue;
          latencies.push(job.finishedOn - job.timestamp);
          lastFinished = Math.max(lastFinished, job.finishedOn);
        }
        if (latencies.length >= count) break;
      }
      if (latencies.length !== count) throw new Error(`BullMQ: ${latencies.length} of ${count} jobs read back as completed`);
      completedBefore = total;
      const buckets = bucketize(latencies);
      return {
        count,
        enqueuePerSecond: (count / (enqueued - started)) * 1000,
        // The last finishedOn, not the poll that saw it: BullMQ's own clock, no polling error.
        e2ePerSecond: (count / Math.max(1, lastFinished - startedAt)) * 1000,
        e2eP50Ms: quantileMs(buckets, 0.5),
        e2eP99Ms: quantileMs(buckets, 0.99),
        exactP50Ms: exactQuantile(latencies, 0.5),
        exactP99Ms: exactQuantile(latencies, 0.99),
        workerPeakRssMb: workers.reduce((n, w) => n + w.peakRssMb(), 0),
      };
    },
  };
}

/** Runs a side's start-up and warm-up; on failure, stops what it started before rethrowing. */
async function warmOrStop(stop: () => Promise<void>, warm: () => Promise<void>): Promise<void> {
  try {
    await warm();
  } catch (err) {
    await stop();
    throw err;
  }
}

async function waitCompleted(queue: Queue, count: number, ms: number): Promise<void> {
  await waitFor(async () => ((await queue.getJobCounts('completed')).completed ?? 0) >= count, ms, `${count} completed BullMQ jobs`, 50);
}

/**
 * Polls the API's stored count until it reaches `stored`: every 100 ms, and every 10 ms once fewer
 * than 2 000 are left (about the last quarter second), so the end is seen within ~10 ms, as
 * BullMQ's is by its exact last finishedOn, without a scrape every 10 ms through the whole run
 * (each costs the API's CPU).
 */
async function waitStored(base: string, stored: number, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    // The one counter, not a full scrape: ~2 ms of the API's CPU each at 10-100 per run, which the
    // system under test would otherwise spend on the harness (BullMQ's side polls one count).
    const now = metricSum(await scrapeMetrics(base, [STORED]), STORED);
    if (now >= stored) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${stored} results stored by the API (${now} stored)`);
    await new Promise((r) => setTimeout(r, stored - now < 2000 ? 10 : 100));
  }
}

/** One round: both sides one after the other (`order`), and Warren's rate over BullMQ's. */
export interface PeerRound {
  order: 'warren-first' | 'bullmq-first';
  warren: PeerRun;
  bullmq: PeerRun;
  ratio: number;
}

/** Rounds of one Warren side against BullMQ on the durable Redis, and the round with the median ratio. */
export interface PeerComparison {
  /** Warren's side of the round whose ratio is the median (as the pair sections report). */
  warren: PeerRun;
  /** BullMQ on a redis-server the bench started (appendonly yes, appendfsync everysec): the same round. */
  bullmqDurable: PeerRun;
  /** Every round, in the order run. */
  rounds: PeerRound[];
}

export interface PeersResult extends PeerComparison {
  options: PeerOptions;
  /**
   * The same rounds with the API on PostgreSQL (a schema of its own, dropped after) against the
   * same BullMQ side, after the embedded store's rounds, or why not measured. For the record: the
   * target is the default store's (`warren`).
   */
  postgres: PeerComparison | { skipped: string };
  /** BullMQ on the machine's Redis at 127.0.0.1:6379 as it runs (here: no persistence), one run, or why not. */
  bullmqMachine: PeerRun | { skipped: string };
}

/**
 * `count` timed rounds of a Warren side against BullMQ (runRounds: BullMQ, the baseline, first in
 * the first round, then alternating, as in the pair sections), reported by the round with the
 * median ratio (medianRound).
 */
async function compare(rounds: number, count: number, warrenSide: PeerSide, bullmqSide: PeerSide): Promise<PeerComparison> {
  // Each round carries both sides' whole runs beside the two rates it is judged by.
  const all = await runRounds(
    rounds,
    async (order) => {
      const runs = await inOrder(
        order,
        () => bullmqSide.run(count),
        () => warrenSide.run(count),
      );
      return { raw: runs.raw.e2ePerSecond, warren: runs.warren.e2ePerSecond, warrenRun: runs.warren, bullmqRun: runs.raw };
    },
    true,
  );
  const median = medianRound(all);
  return {
    warren: median.warrenRun,
    bullmqDurable: median.bullmqRun,
    rounds: all.map(
      (r): PeerRound => ({
        order: r.order === 'warren-first' ? 'warren-first' : 'bullmq-first',
        warren: r.warrenRun,
        bullmq: r.bullmqRun,
        ratio: r.warren / r.raw,
      }),
    ),
  };
}

/**
 * Warren's producer path and BullMQ on a durable private Redis, both started and warmed, then
 * `rounds` timed rounds (compare). One run was not a measure: on this shared machine a side's
 * figure moved by a quarter between runs minutes apart. With a `databaseUrl`, the Warren side is
 * then started again with the API on PostgreSQL (the first one stopped: both would consume the
 * same queues) and compared with the same BullMQ side in as many rounds. Then one run of BullMQ on
 * the machine's Redis.
 */
export async function benchPeers(
  url: string,
  mgmt: ManagementClient,
  compiled: CompiledTopology,
  port: number,
  opts: PeerOptions,
  databaseUrl?: string,
): Promise<PeersResult> {
  let redisPort = 6391;
  while (await portAnswers(redisPort)) redisPort++;
  const redis = await startPrivateRedis(redisPort);
  let embedded: PeerComparison;
  let postgres: PeerComparison | { skipped: string } = { skipped: 'no database URL given' };
  try {
    const warrenSide = await startWarrenPeer(url, mgmt, compiled, port, opts);
    let bullmqSide: PeerSide;
    try {
      bullmqSide = await startBullmqPeer(redisPort, opts);
      embedded = await compare(opts.rounds, opts.count, warrenSide, bullmqSide).catch(async (err: unknown) => {
        await bullmqSide.stop();
        throw err;
      });
    } finally {
      await warrenSide.stop();
    }
    try {
      if (databaseUrl) {
        // For the record only: a failure here is reported in its place, and the embedded rounds stand.
        const onPg = await withPgSchema(databaseUrl, async (schema) => {
          const pgSide = await startWarrenPeer(url, mgmt, compiled, port, opts, { DATABASE_URL: databaseUrl, DATABASE_SCHEMA: schema });
          try {
            return await compare(opts.rounds, opts.count, pgSide, bullmqSide);
          } finally {
            await pgSide.stop();
          }
        }).catch((err: unknown) => ({ skipped: `failed: ${err instanceof Error ? err.message : String(err)}` }));
        postgres = 'value' in onPg ? onPg.value : onPg;
      }
    } finally {
      await bullmqSide.stop();
    }
  } finally {
    await redis.stop();
  }
  let bullmqMachine: PeerRun | { skipped: string } = { skipped: 'no Redis on 127.0.0.1:6379' };
  if (await portAnswers(6379)) {
    const machine = await startBullmqPeer(6379, opts);
    try {
      bullmqMachine = await machine.run(opts.count);
    } finally {
      await machine.stop();
    }
  }
  return { options: opts, ...embedded, postgres, bullmqMachine };
}
