import type { ManagementClient, ManagementQueue } from '../../core/index.ts';
import { type FixedRateResult, offerFixedRate } from '../lib/fixed-rate.ts';
import { withPgSchema } from '../lib/pg-schema.ts';
import { type Service, startApi, startWorkers, waitHttp } from '../lib/procs.ts';
import { scrapeMetrics, waitFor } from '../lib/scrape.ts';
import { type Bucket, bucketDelta, histogramBuckets, judgeStep, metricSum, observations, quantileMs, sustainedRate } from '../lib/steps.ts';
import { purge } from './amqp.ts';

const E2E = 'warren_end_to_end_seconds';
const ACCEPTED = 'warren_requests_accepted_total';
const STORED = 'warren_results_stored_total';

export interface SustainedOptions {
  url: string;
  mgmt: ManagementClient;
  port: number;
  /** Offered rates, ascending; the ramp stops at the first step that does not hold. */
  rates: readonly number[];
  stepSeconds: number;
  warmupSeconds: number;
  connections: number;
  /** Extra environment of the API (DATABASE_URL and DATABASE_SCHEMA for PostgreSQL). */
  apiEnv?: NodeJS.ProcessEnv;
}

export interface SustainedStep {
  offeredPerSecond: number;
  /** 2xx answers per second of the step (the generator's count). */
  acceptedPerSecond: number;
  /** Requests the API counted as accepted in the step (its own counter; matches the generator's). */
  apiAccepted: number;
  /** Outcomes stored per second while the load ran. */
  processedPerSecond: number;
  non2xx: number;
  errors: number;
  /** Accepted - stored (the API's counters) when the load stopped. */
  backlogAtEnd: number;
  /** The step's requests still not stored after the drain. */
  undrained: number;
  drainSeconds: number;
  /** Messages in processing.requests + processing.results, sampled from the management API each second. */
  queueDepth: number[];
  e2eCount: number;
  e2eP50Ms: number | undefined;
  e2eP99Ms: number | undefined;
  e2eP999Ms: number | undefined;
  /** POST answered, from the time each request was due (the generator is open-loop). */
  httpP50Ms: number | undefined;
  httpP99Ms: number | undefined;
  /** The generator's worst delay in sending a request after it fell due (it falling behind). */
  maxSendLagMs: number;
  /** The step's end-to-end histogram (seconds, cumulative). */
  buckets: Bucket[];
  holds: boolean;
  reasons: string[];
}

export interface SustainedResult {
  store: string;
  sustainedPerSecond: number;
  /** e2e percentiles at the sustained step (undefined when no step held). */
  p50Ms: number | undefined;
  p99Ms: number | undefined;
  p999Ms: number | undefined;
  steps: SustainedStep[];
  apiPeakRssMb: number;
  workerPeakRssMb: number;
}

/**
 * Sustained end to end, the way messaging benchmarks report it (the OpenMessaging Benchmark's
 * habit): one API and two worker replicas (no-op processor); an open-loop generator offers a
 * fixed rate on an even schedule through POST /api/v1/processData, stepping it up. Each step records accepted/s, processed/s,
 * the backlog, and e2e latency from the API's own histogram `warren_end_to_end_seconds`
 * (acceptance, the time the message carries, to outcome stored), read before the step and after
 * its drain: every request of the step is counted, and the bench adds no client polling to the
 * API's load. The histogram's buckets (10, 25, 50, 100, 250, 500, 1000 ms, ...) bound the
 * precision of p50/p99; the 1 s verdict is exact, as 1 s is a bound.
 */
export async function benchSustained(opts: SustainedOptions): Promise<SustainedResult> {
  const { url, mgmt, port } = opts;
  const base = `http://127.0.0.1:${port}`;
  const api = startApi(url, port, { API_MAX_IN_FLIGHT: '5000', ...opts.apiEnv });
  let workers: Service | undefined;
  const steps: SustainedStep[] = [];
  try {
    workers = startWorkers(url, 2, 50, { DEMO_DELAY_MS: '0' });
    await waitHttp(`${base}/readyz`, 60_000);
    await waitConsumers(mgmt, 'processing.requests', 2, 30_000);
    const target = `${base}/api/v1/processData`;
    // Warm-up at the first rate, then drained: compiled code and a settled store, not timed.
    await offerFixedRate(target, {
      rate: opts.rates[0] ?? 100,
      seconds: opts.warmupSeconds,
      connections: opts.connections,
      body: (i) => JSON.stringify({ data: `warm-${i}` }),
    });
    await drain(base, 0, 30_000);
    for (const rate of opts.rates) {
      const step = await runStep(opts, base, target, rate);
      steps.push(step);
      console.error(
        `    ${rate}/s offered: ${step.acceptedPerSecond.toFixed(0)} accepted/s, ${step.processedPerSecond.toFixed(0)} processed/s, backlog ${step.backlogAtEnd}, e2e p50/p99 ${fmt(step.e2eP50Ms)}/${fmt(step.e2eP99Ms)} ms${step.holds ? '' : ` - not sustained: ${step.reasons.join('; ')}`}`,
      );
      if (!step.holds) break;
    }
  } finally {
    await Promise.all([api.stop(), workers?.stop()]);
    await purge(url, 'processing.requests').catch(() => undefined);
    await purge(url, 'processing.results').catch(() => undefined);
  }
  const sustainedPerSecond = sustainedRate(steps);
  const at = steps.filter((s) => s.holds && s.offeredPerSecond === sustainedPerSecond).at(-1);
  return {
    store: opts.apiEnv?.DATABASE_URL ? 'postgres' : 'embedded',
    sustainedPerSecond,
    p50Ms: at?.e2eP50Ms,
    p99Ms: at?.e2eP99Ms,
    p999Ms: at?.e2eP999Ms,
    steps,
    apiPeakRssMb: api.peakRssMb(),
    workerPeakRssMb: workers?.peakRssMb() ?? 0,
  };
}

async function runStep(opts: SustainedOptions, base: string, target: string, rate: number): Promise<SustainedStep> {
  const before = await scrapeMetrics(base);
  const depths: number[] = [];
  const sampler = setInterval(() => void queueDepth(opts.mgmt).then((d) => depths.push(d)), 1000);
  let load: FixedRateResult;
  try {
    load = await offerFixedRate(target, {
      rate,
      seconds: opts.stepSeconds,
      connections: opts.connections,
      body: (i) => JSON.stringify({ data: `sustained-${rate}-${i}` }),
    });
  } finally {
    clearInterval(sampler);
  }
  // The generator returns once every request was answered: the API's count is final for the step.
  const atEnd = await scrapeMetrics(base);
  const acceptedInStep = metricSum(atEnd, ACCEPTED) - metricSum(before, ACCEPTED);
  const storedInStep = metricSum(atEnd, STORED) - metricSum(before, STORED);
  const backlogAtEnd = Math.max(0, acceptedInStep - storedInStep);
  const drainStarted = performance.now();
  const beforeBacklog = metricSum(before, ACCEPTED) - metricSum(before, STORED);
  const after = await drain(base, beforeBacklog, Math.max(10_000, opts.stepSeconds * 1000));
  const undrained = Math.max(0, metricSum(after, ACCEPTED) - metricSum(after, STORED) - beforeBacklog);
  const buckets = bucketDelta(histogramBuckets(after, E2E), histogramBuckets(before, E2E));
  const figures = { offeredPerSecond: rate, acceptedPerSecond: load.acceptedPerSecond, backlogAtEnd, undrained, buckets, httpP99Ms: load.p99Ms };
  const verdict = judgeStep(figures);
  return {
    ...figures,
    apiAccepted: acceptedInStep,
    processedPerSecond: storedInStep / opts.stepSeconds,
    non2xx: load.offered - load.errors - Object.entries(load.statusCounts).reduce((n, [code, c]) => (code.startsWith('2') ? n + c : n), 0),
    errors: load.errors,
    maxSendLagMs: Math.round(load.maxSendLagMs),
    drainSeconds: Math.round((performance.now() - drainStarted) / 100) / 10,
    queueDepth: depths,
    e2eCount: observations(buckets),
    e2eP50Ms: quantileMs(buckets, 0.5),
    e2eP99Ms: quantileMs(buckets, 0.99),
    e2eP999Ms: quantileMs(buckets, 0.999),
    httpP50Ms: load.p50Ms,
    holds: verdict.holds,
    reasons: verdict.reasons,
  };
}

/** Scrapes until accepted - stored is back to `backlog` (or the deadline); returns the last scrape. */
async function drain(base: string, backlog: number, ms: number): Promise<string> {
  const deadline = Date.now() + ms;
  for (;;) {
    const text = await scrapeMetrics(base);
    if (metricSum(text, ACCEPTED) - metricSum(text, STORED) <= backlog || Date.now() >= deadline) return text;
    await new Promise((r) => setTimeout(r, 250));
  }
}

async function queueDepth(mgmt: ManagementClient): Promise<number> {
  const qs = await mgmt.get<ManagementQueue[]>(`${mgmt.path('queues', mgmt.vhost)}?columns=name,messages`, 2000).catch(() => undefined);
  return (qs ?? []).filter((q) => q.name === 'processing.requests' || q.name === 'processing.results').reduce((n, q) => n + (q.messages ?? 0), 0);
}

/** Waits until `queue` has `count` consumers (the workers are up), asking the management API. */
export async function waitConsumers(mgmt: ManagementClient, queue: string, count: number, ms: number): Promise<void> {
  await waitFor(
    async () => ((await mgmt.get<ManagementQueue>(mgmt.path('queues', mgmt.vhost, queue), 2000).catch(() => undefined))?.consumers ?? 0) >= count,
    ms,
    `${count} consumers on ${queue} (workers started?)`,
    250,
  );
}

function fmt(ms: number | undefined): string {
  return ms === undefined ? '-' : ms.toFixed(0);
}

export interface SustainedStores {
  embedded: SustainedResult;
  /** On PostgreSQL in a schema of its own (dropped after), or why it was not measured. */
  postgres: SustainedResult | { skipped: string };
}

/** The sustained ramp on the embedded store, then on PostgreSQL at `databaseUrl`. */
export async function benchSustainedStores(opts: SustainedOptions & { databaseUrl: string; postgresPort: number }): Promise<SustainedStores> {
  const { databaseUrl, postgresPort, ...common } = opts;
  const embedded = await benchSustained(common);
  const pg = await withPgSchema(databaseUrl, (schema) =>
    benchSustained({ ...common, port: postgresPort, apiEnv: { ...common.apiEnv, DATABASE_URL: databaseUrl, DATABASE_SCHEMA: schema } }),
  );
  return { embedded, postgres: 'value' in pg ? pg.value : pg };
}
