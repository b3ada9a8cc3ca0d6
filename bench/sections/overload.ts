import amqplib from 'amqplib';
import type { ManagementClient } from '../../core/index.ts';
import { type HttpLoadResult, postLoad } from '../lib/http-load.ts';
import { type RssSample, recordRss, startApi, waitHttp } from '../lib/procs.ts';
import { purge } from './amqp.ts';

const QUEUE = 'processing.requests';
const POLICY = 'warren-bench-overload';

/**
 * "Flat": the API's resident set grew by less than this share of its resident set at the start
 * of the load, and by less than FLAT_MAX_GROWTH_MB, between the first and the last quarter of
 * the run (medians, so one GC spike does not decide).
 */
export const FLAT_MAX_GROWTH_SHARE = 0.15;
export const FLAT_MAX_GROWTH_MB = 64;
/** The API's RSS has settled after start-up once it is below this share of its peak (VmHWM). */
const SETTLED_SHARE_OF_PEAK = 0.8;

export interface OverloadOptions {
  url: string;
  mgmt: ManagementClient;
  port: number;
  /** Accepted per second the API sustains (the HTTP section's figure); twice it is offered. */
  sustainablePerSecond: number;
  seconds: number;
  /** Warm-up at 50 connections before the run, and at most this long while the RSS has not settled. */
  warmupSeconds: number;
  maxWarmupSeconds: number;
  connections: number;
}

export interface OverloadResult {
  seconds: number;
  warmupSeconds: number;
  /** False when the warm-up ended before the start-up RSS had fallen (the baseline is then too high). */
  rssSettled: boolean;
  connections: number;
  offeredPerSecond: number;
  /** Answers of any kind per second. */
  achievedPerSecond: number;
  /** 202 per second. */
  acceptedPerSecond: number;
  /** 503 per second. */
  rejectedPerSecond: number;
  statusCounts: Record<string, number>;
  /** 503 answers by error code (OVERLOADED: window full, PUBLISH_REJECTED: queue full, ...). */
  rejectCodes: Record<string, number>;
  rejectedWithoutRetryAfter: number;
  /** Answers other than 202 and 503, plus connection errors and timeouts. */
  otherFailures: number;
  errors: number;
  timeouts: number;
  p50Ms: number;
  /**
   * Includes connections waiting in the kernel's accept queue: a busy Node process accepts one
   * connection per event-loop turn (libuv >= 1.45), so the first request of some of the
   * connections autocannon opens at once waits for seconds. Recorded, not judged.
   */
  p99Ms: number;
  /** The queue's max length for this run (a vhost policy; the smaller of it and the topology's wins). */
  queueMaxLength: number;
  queueDepthAfter: number;
  rss: {
    startMb: number;
    peakMb: number;
    firstQuarterMb: number;
    endMb: number;
    growthMb: number;
    samples: number;
    /** The largest sample of each second of the run, for the record. */
    bySecondMb: number[];
    /** Growth under the limits; undefined when the RSS had not settled (no verdict). */
    flat: boolean | undefined;
  };
}

/**
 * Twice the sustainable rate against a fresh API, no worker consuming: the API must shed the
 * excess with 503 + Retry-After (queue full, window full) while its memory stays flat.
 *
 * The queue's max length is lowered for the run by a vhost policy, to what the warm-up left in it
 * plus about an eighth of the run at the sustainable rate, so the queue fills early and most of
 * the run is spent refusing (with the topology's 100 000 it would take longer than the run).
 */
export async function benchOverload(opts: OverloadOptions): Promise<OverloadResult> {
  const { url, mgmt, port, seconds, connections } = opts;
  const offered = Math.max(1, Math.round(opts.sustainablePerSecond * 2));
  // The default in-flight window; refusals are expected here, so only errors are logged.
  const api = startApi(url, port, { LOG_LEVEL: 'error' });
  const target = `http://127.0.0.1:${port}/api/v1/processData`;
  try {
    await waitHttp(`http://127.0.0.1:${port}/readyz`);
    // A fresh API holds its start-up memory (about 850-1000 MiB with the embedded store; it stays
    // there while idle) until some thousands of requests have been stored; then it settles around
    // 550-650 MiB. The warm-up goes on, a second at
    // a time, until that has happened, so that the baseline is the settled RSS: a release in the
    // middle of the run would hide growth.
    let warmupSeconds = 0;
    let settled = false;
    for (let chunk = opts.warmupSeconds; ; chunk = 1) {
      await postLoad(target, { connections: 50, seconds: chunk });
      warmupSeconds += chunk;
      settled = api.rssMb() < SETTLED_SHARE_OF_PEAK * api.peakRssMb();
      if (settled || warmupSeconds >= opts.maxWarmupSeconds) break;
    }

    const room = Math.max(100, Math.round((opts.sustainablePerSecond * seconds) / 8));
    const queueMaxLength = (await queueDepth(url)) + room;
    await mgmt.put(mgmt.path('policies', mgmt.vhost, POLICY), {
      pattern: `^${QUEUE.replace(/\./g, '\\.')}$`,
      definition: { 'max-length': queueMaxLength },
      'apply-to': 'queues',
      priority: 100,
    });
    // The broker applies a policy as it is set (the management API only shows it at its next
    // statistics tick, seconds later); queueDepthAfter tells whether the limit held. The pause
    // also lets the warm-up's last publishes and garbage settle before the baseline is read.
    await new Promise((r) => setTimeout(r, 500));

    const rejectCodes: Record<string, number> = {};
    let rejectedWithoutRetryAfter = 0;
    const startMb = api.rssMb();
    const recorder = recordRss(api, 100);
    let samples: RssSample[] = [];
    let load: HttpLoadResult;
    try {
      load = await postLoad(target, {
        connections,
        seconds,
        overallRate: offered,
        onResponse: (status, body, headers) => {
          if (status !== 503) return;
          const code = /"code":"([A-Z_]+)"/.exec(body)?.[1] ?? 'unknown';
          rejectCodes[code] = (rejectCodes[code] ?? 0) + 1;
          if (!Object.keys(headers).some((h) => h.toLowerCase() === 'retry-after')) rejectedWithoutRetryAfter++;
        },
      });
    } finally {
      samples = recorder.stop();
    }
    const accepted = load.statusCounts['202'] ?? 0;
    const rejected = load.statusCounts['503'] ?? 0;
    const rss = summarize(samples, startMb, settled);
    return {
      seconds,
      warmupSeconds,
      rssSettled: settled,
      connections,
      offeredPerSecond: offered,
      achievedPerSecond: load.requestsPerSecond,
      acceptedPerSecond: accepted / seconds,
      rejectedPerSecond: rejected / seconds,
      statusCounts: load.statusCounts,
      rejectCodes,
      rejectedWithoutRetryAfter,
      otherFailures: load.total - accepted - rejected + load.errors,
      errors: load.errors,
      timeouts: load.timeouts,
      p50Ms: load.p50Ms,
      p99Ms: load.p99Ms,
      queueMaxLength,
      queueDepthAfter: await queueDepth(url),
      rss,
    };
  } finally {
    await api.stop();
    await mgmt.delete(mgmt.path('policies', mgmt.vhost, POLICY)).catch(() => undefined);
    await purge(url, QUEUE);
  }
}

function summarize(samples: RssSample[], startMb: number, settled: boolean): OverloadResult['rss'] {
  const end = samples.at(-1)?.atMs ?? 0;
  const first = samples.filter((s) => s.atMs <= end / 4).map((s) => s.mb);
  const last = samples.filter((s) => s.atMs >= (end * 3) / 4).map((s) => s.mb);
  const firstQuarterMb = median(first);
  const endMb = median(last);
  const growthMb = endMb - firstQuarterMb;
  return {
    startMb,
    peakMb: Math.max(startMb, ...samples.map((s) => s.mb)),
    firstQuarterMb,
    endMb,
    growthMb,
    samples: samples.length,
    bySecondMb: bySecond(samples),
    flat: settled ? growthMb < Math.min(FLAT_MAX_GROWTH_MB, startMb * FLAT_MAX_GROWTH_SHARE) : undefined,
  };
}

function bySecond(samples: RssSample[]): number[] {
  const out: number[] = [];
  for (const s of samples) {
    const i = Math.floor(s.atMs / 1000);
    out[i] = Math.round(Math.max(out[i] ?? 0, s.mb));
  }
  return Array.from(out, (v) => v ?? 0);
}

function median(values: number[]): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? (sorted[mid] ?? 0) : ((sorted[mid - 1] ?? 0) + (sorted[mid] ?? 0)) / 2;
}

async function queueDepth(url: string): Promise<number> {
  const conn = await amqplib.connect(url);
  try {
    const ch = await conn.createChannel();
    return (await ch.checkQueue(QUEUE)).messageCount;
  } finally {
    await conn.close();
  }
}
