import amqplib from 'amqplib';
import { resultCountOf } from '../../core/index.ts';
import { type HttpLoadResult, postLoad } from '../lib/http-load.ts';
import { inOrder, medianRound, type Order, runRounds } from '../lib/pair-rounds.ts';
import { type RssSample, recordRss, type Service, startApi, startService, WARREN_BIN, waitHttp } from '../lib/procs.ts';
import { purge } from './amqp.ts';

const BARE = new URL('../bare-server.ts', import.meta.url).pathname;

export interface HttpComparison {
  /** Warren's API and bare express in the round whose ratio is the median of the rounds. */
  warren: HttpLoadResult;
  bare: HttpLoadResult;
  /** The API's high-water mark (VmHWM) over every round: start-up included. */
  apiPeakRssMb: number;
  /** The largest RSS sample (recordRss, every 100 ms) over every round, from ready through the warm-up and the load. */
  apiLoadPeakRssMb: number;
  /** Every round: accepted/s of each side, their ratio, p99, and which side ran first. */
  rounds: Array<{ warren: number; bare: number; ratio: number; warrenP99Ms: number; bareP99Ms: number; order: Order }>;
}

/** The API of the HTTP and end-to-end runs: a window wide enough that 50 clients never fill it. */
const API_ENV = { API_MAX_IN_FLIGHT: '5000' };

/**
 * autocannon at `connections` against Warren's API (`apiEnv` picks its store) and against a bare
 * express 202 endpoint, in `rounds` rounds, the side that goes first alternating; each side is a
 * fresh process that first takes `warmupSeconds` of the same load, not counted (the steady state
 * is measured, not how fast each side's code gets compiled). The round with the median ratio is
 * reported (as the pair sections do, bench/lib/pair-rounds.ts): a shared machine's speed drifts
 * between two measurements seconds apart, and one pair was a draw of that drift.
 */
export async function benchHttp(
  url: string,
  o: { seconds: number; warmupSeconds: number; connections: number; port: number; rounds: number; apiEnv?: NodeJS.ProcessEnv },
): Promise<HttpComparison> {
  let apiPeakRssMb = 0;
  let apiLoadPeakRssMb = 0;
  // Each round carries both sides' whole results beside the two figures it is judged by.
  const all = await runRounds(
    o.rounds,
    async (order) => {
      const sides = await inOrder(
        order,
        () => benchBare(url, o.seconds, o.warmupSeconds, o.connections, o.port + 1),
        () => benchHttpApi(url, o.seconds, o.warmupSeconds, o.connections, o.port, o.apiEnv),
      );
      apiPeakRssMb = Math.max(apiPeakRssMb, sides.warren.apiPeakRssMb);
      apiLoadPeakRssMb = Math.max(apiLoadPeakRssMb, sides.warren.apiLoadPeakRssMb);
      const bare = sides.raw;
      const warren = sides.warren.warren;
      return { raw: bare.acceptedPerSecond, warren: warren.acceptedPerSecond, bareResult: bare, warrenResult: warren };
    },
    true,
  );
  const rounds = all.map((r) => ({
    warren: r.warren,
    bare: r.raw,
    ratio: r.warren / r.raw,
    warrenP99Ms: r.warrenResult.p99Ms,
    bareP99Ms: r.bareResult.p99Ms,
    order: r.order ?? 'raw-first',
  }));
  const median = medianRound(all);
  return { warren: median.warrenResult, bare: median.bareResult, apiPeakRssMb, apiLoadPeakRssMb, rounds };
}

/** The bare express endpoint (bench/bare-server.ts) in a process of its own, under the same load as the API. */
async function benchBare(url: string, seconds: number, warmupSeconds: number, connections: number, port: number): Promise<HttpLoadResult> {
  const bare = startService(['--import', 'tsx', BARE], { PORT: String(port) });
  try {
    await waitHttp(`http://127.0.0.1:${port}/readyz`);
    return await httpLoad(url, `http://127.0.0.1:${port}/api/v1/processData`, seconds, warmupSeconds, connections);
  } finally {
    await bare.stop();
  }
}

/** Warren's side of one benchHttp round; `apiEnv` picks the store (DATABASE_URL, DATABASE_SCHEMA). */
async function benchHttpApi(
  url: string,
  seconds: number,
  warmupSeconds: number,
  connections: number,
  port: number,
  apiEnv: NodeJS.ProcessEnv = {},
): Promise<{ warren: HttpLoadResult; apiPeakRssMb: number; apiLoadPeakRssMb: number }> {
  const api = startApi(url, port, { ...API_ENV, ...apiEnv });
  try {
    await waitHttp(`http://127.0.0.1:${port}/readyz`, 60_000);
    const recorder = recordRss(api, 100);
    let samples: RssSample[] = [];
    let warren: HttpLoadResult;
    try {
      warren = await httpLoad(url, `http://127.0.0.1:${port}/api/v1/processData`, seconds, warmupSeconds, connections);
    } finally {
      samples = recorder.stop();
    }
    return { warren, apiPeakRssMb: api.peakRssMb(), apiLoadPeakRssMb: Math.max(0, ...samples.map((x) => x.mb)) };
  } finally {
    await api.stop();
    await purge(url, 'processing.requests');
  }
}

async function httpLoad(url: string, target: string, seconds: number, warmupSeconds: number, connections: number): Promise<HttpLoadResult> {
  await postLoad(target, { connections, seconds: warmupSeconds });
  // Nothing consumes the requests queue here: emptied every 3 s, it stays far below its max
  // length (100000), past which the broker would refuse publishes and the API answer 503.
  await purge(url, 'processing.requests');
  const purger = setInterval(() => void purge(url, 'processing.requests').catch(() => undefined), 3000);
  try {
    return await postLoad(target, { connections, seconds });
  } finally {
    clearInterval(purger);
  }
}

export interface E2eResult {
  accepted: number;
  perSecond: number;
  apiPeakRssMb: number;
  workerPeakRssMb: number;
}

/**
 * POST to result stored: `clients` concurrent clients post for `seconds`, then every accepted
 * request is polled until it is done. One API, two worker replicas, a no-op processor.
 */
export async function benchE2e(url: string, seconds: number, clients: number, port: number): Promise<E2eResult> {
  const api = startApi(url, port, API_ENV);
  const workers = startService([WARREN_BIN, 'worker', '--replicas', '2', '--concurrency', '50'], { AMQP_URL: url, DEMO_DELAY_MS: '0' });
  const base = `http://127.0.0.1:${port}`;
  try {
    await waitHttp(`${base}/readyz`);
    const ids: string[] = [];
    const started = performance.now();
    const stopAt = Date.now() + seconds * 1000;
    await Promise.all(
      Array.from({ length: clients }, async (_, c) => {
        for (let i = 0; Date.now() < stopAt; i++) {
          const res = await fetch(`${base}/api/v1/processData`, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({ data: `e2e-${c}-${i}` }),
          });
          const body = (await res.json()) as { requestId?: string };
          if (res.status === 202 && body.requestId) ids.push(body.requestId);
        }
      }),
    );
    let pending = ids;
    const deadline = Date.now() + 120_000;
    while (pending.length > 0 && Date.now() < deadline) {
      const still: string[] = [];
      for (let i = 0; i < pending.length; i += 50) {
        const batch = pending.slice(i, i + 50);
        const states = await Promise.all(batch.map(async (id) => ((await (await fetch(`${base}/api/v1/requests/${id}`)).json()) as { status: string }).status));
        batch.forEach((id, k) => {
          if (states[k] !== 'done') still.push(id);
        });
      }
      pending = still;
      if (pending.length > 0) await new Promise((r) => setTimeout(r, 200));
    }
    if (pending.length > 0) throw new Error(`${pending.length} of ${ids.length} requests not done after 120 s`);
    const secs = (performance.now() - started) / 1000;
    return { accepted: ids.length, perSecond: ids.length / secs, apiPeakRssMb: api.peakRssMb(), workerPeakRssMb: workers.peakRssMb() };
  } finally {
    await Promise.all([api.stop(), workers.stop()]);
  }
}

export interface ScalingRow {
  replicas: number;
  perSecond: number;
  workerPeakRssMb: number;
}

/** Processed per second for an I/O-bound handler (DEMO_DELAY_MS=20, concurrency 10) by replicas. */
export async function benchScaling(url: string, perRun: number, replicaCounts: readonly number[]): Promise<ScalingRow[]> {
  const rows: ScalingRow[] = [];
  for (const replicas of replicaCounts) {
    const count = perRun * replicas;
    await prefill(url, count);
    const conn = await amqplib.connect(url);
    const ch = await conn.createChannel();
    let got = 0;
    let firstCount = 1;
    let first = 0;
    let last = 0;
    const done = new Promise<void>((resolve) => {
      void ch.consume(
        'processing.results',
        (msg) => {
          // A results batch (results that finished together) counts each of its results.
          const n = msg ? resultCountOf(msg.properties) : 1;
          if (got === 0) {
            first = performance.now();
            firstCount = n;
          }
          got += n;
          last = performance.now();
          if (got >= count) resolve();
        },
        { noAck: true },
      );
    });
    let workers: Service | undefined;
    try {
      workers = startService([WARREN_BIN, 'worker', '--replicas', String(replicas), '--concurrency', '10'], { AMQP_URL: url, DEMO_DELAY_MS: '20' });
      await Promise.race([done, new Promise((_, reject) => setTimeout(() => reject(new Error(`scaling run with ${replicas} replicas timed out`)), 120_000))]);
      rows.push({ replicas, perSecond: ((got - firstCount) / (last - first)) * 1000, workerPeakRssMb: workers.peakRssMb() });
    } finally {
      await workers?.stop();
      await conn.close();
      await purge(url, 'processing.results');
    }
  }
  return rows;
}

async function prefill(url: string, count: number): Promise<void> {
  const conn = await amqplib.connect(url);
  const ch = await conn.createConfirmChannel();
  for (let i = 0; i < count; i++) {
    const requestId = `scale-${i}`;
    ch.publish('processing', 'request', Buffer.from(JSON.stringify({ requestId, data: requestId })), { persistent: true, messageId: requestId });
    if (i % 500 === 499) await ch.waitForConfirms();
  }
  await ch.waitForConfirms();
  await conn.close();
}
