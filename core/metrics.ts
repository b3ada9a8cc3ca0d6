import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  AggregatorRegistry,
  Counter,
  collectDefaultMetrics,
  Gauge,
  Histogram,
  type Metric,
  type MetricObjectWithValues,
  type MetricValue,
  Registry,
} from 'prom-client';
import type { Logger } from './logger.ts';
import type { ManagementClient, ManagementQueue } from './management.ts';

/**
 * Prometheus metrics (prom-client). One registry per process: the API's, a worker's, or a
 * supervisor's, which serves the sum of its replicas' registries (they answer over IPC).
 *
 * Names are a contract dashboards are built on; they all start with `warren_`, and the
 * process-level ones (CPU, memory, event loop lag) keep prom-client's standard names.
 */
export type { Registry };

export type MetricsJson = MetricObjectWithValues<MetricValue<string>>[];

/** Latency buckets in seconds, from a fast confirm (1 ms) to a handler at its timeout. */
export const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

/** A registry with the process metrics (CPU, RSS, heap, event loop lag) already in it. */
export function createMetricsRegistry(options: { processMetrics?: boolean } = {}): Registry {
  const registry = new Registry();
  if (options.processMetrics !== false) collectDefaultMetrics({ register: registry });
  return registry;
}

/** The metric of this name in the registry, created on first use (several parts share one). */
export function counterIn<L extends string>(registry: Registry, name: string, help: string, labelNames: readonly L[] = []): Counter<L> {
  return (registry.getSingleMetric(name) as Counter<L> | undefined) ?? new Counter({ name, help, labelNames, registers: [registry] });
}

export function histogramIn<L extends string>(
  registry: Registry,
  name: string,
  help: string,
  labelNames: readonly L[] = [],
  buckets: number[] = LATENCY_BUCKETS,
): Histogram<L> {
  return (registry.getSingleMetric(name) as Histogram<L> | undefined) ?? new Histogram({ name, help, labelNames, buckets, registers: [registry] });
}

export function gaugeIn<L extends string>(
  registry: Registry,
  name: string,
  help: string,
  labelNames: readonly L[] = [],
  options: { collect?: (this: Gauge<L>) => void | Promise<void>; aggregator?: 'sum' | 'first' | 'min' | 'max' | 'average' | 'omit' } = {},
): Gauge<L> {
  const existing = registry.getSingleMetric(name) as Gauge<L> | undefined;
  if (existing) return existing;
  return new Gauge({
    name,
    help,
    labelNames,
    registers: [registry],
    ...(options.collect ? { collect: options.collect } : {}),
    aggregator: options.aggregator ?? 'sum',
  });
}

/** How a confirm-mode publish ended ('blocked': given up on when the broker blocked the connection). */
export type PublishOutcome = 'ack' | 'nack' | 'timeout' | 'closed' | 'unroutable' | 'blocked';

/**
 * Publishes and their confirms, for the API's and the workers' publishers alike:
 * `warren_publishes_total`, `warren_publish_confirms_total{outcome}` and
 * `warren_publish_confirm_seconds` (send to broker confirm).
 */
export class PublishMetrics {
  private readonly sent: Counter;
  private readonly outcomes: Record<PublishOutcome, Counter.Internal>;
  private readonly latency: Histogram;

  constructor(registry: Registry) {
    this.sent = counterIn(registry, 'warren_publishes_total', 'Messages published in confirm mode (requests, results, retry copies, dead letters).');
    const confirms = counterIn(registry, 'warren_publish_confirms_total', 'Publishes by how they ended: ack, nack, timeout, closed, unroutable, blocked.', [
      'outcome',
    ]);
    this.outcomes = {
      ack: confirms.labels('ack'),
      nack: confirms.labels('nack'),
      timeout: confirms.labels('timeout'),
      closed: confirms.labels('closed'),
      unroutable: confirms.labels('unroutable'),
      blocked: confirms.labels('blocked'),
    };
    // Every series from the start: a rate() over a series that appears late misses its first count.
    for (const c of Object.values(this.outcomes)) c.inc(0);
    this.latency = histogramIn(registry, 'warren_publish_confirm_seconds', 'Time from a publish to its broker confirm (acked publishes only).');
  }

  /** Counts a publish; returns its start time for settled(). */
  published(): number {
    this.sent.inc();
    return performance.now();
  }

  settled(outcome: PublishOutcome, startedAt: number): void {
    this.outcomes[outcome].inc();
    if (outcome === 'ack') this.latency.observe((performance.now() - startedAt) / 1000);
  }
}

/** `warren_broker_reconnects_total{connection}`: connections re-established after a loss. */
export function reconnectCounter(registry: Registry): Counter<'connection'> {
  return counterIn(registry, 'warren_broker_reconnects_total', 'Broker connections re-established after a loss.', ['connection']);
}

/**
 * Queue depth gauges sampled from the management API when Prometheus scrapes:
 * `warren_queue_messages{queue}`, `warren_queue_messages_ready`, `warren_queue_messages_unacked`
 * and `warren_queue_consumers`. One sample serves every gauge of a scrape (cached 1 s); when the
 * management API does not answer, the gauges keep no stale values and
 * `warren_queue_sample_errors_total` counts the failure.
 */
export function registerQueueGauges(registry: Registry, options: { management: ManagementClient; queues: readonly string[]; logger: Logger }): void {
  const { management, logger } = options;
  const wanted = new Set(options.queues);
  const errors = counterIn(registry, 'warren_queue_sample_errors_total', 'Scrapes whose queue sample from the management API failed.');
  let cached: { at: number; sample: Promise<ManagementQueue[] | undefined> } | undefined;
  let lastError = '';
  const sample = (): Promise<ManagementQueue[] | undefined> => {
    const now = Date.now();
    if (cached && now - cached.at < 1000) return cached.sample;
    const p = management
      .get<ManagementQueue[]>(`${management.path('queues', management.vhost)}?columns=name,messages,messages_ready,messages_unacknowledged,consumers`, 2000)
      .then((qs) => (qs ?? []).filter((q) => wanted.has(q.name)))
      .catch((err: unknown) => {
        errors.inc();
        const message = (err as Error).message;
        if (message !== lastError) logger.warn({ err: { message } }, 'queue depth sample failed; queue gauges left empty');
        lastError = message;
        return undefined;
      });
    cached = { at: now, sample: p };
    return p;
  };
  const gauge = (name: string, help: string, pick: (q: ManagementQueue) => number | undefined) =>
    gaugeIn(registry, name, help, ['queue'], {
      aggregator: 'max',
      async collect() {
        const queues = await sample();
        this.reset();
        for (const q of queues ?? []) {
          const v = pick(q);
          if (v !== undefined) this.set({ queue: q.name }, v);
        }
      },
    });
  gauge('warren_queue_messages', 'Messages in the queue (ready + unacked), sampled from the management API.', (q) => q.messages);
  gauge('warren_queue_messages_ready', 'Messages ready for delivery, sampled from the management API.', (q) => q.messages_ready);
  gauge('warren_queue_messages_unacked', 'Messages delivered and not yet acked, sampled from the management API.', (q) => q.messages_unacknowledged);
  gauge('warren_queue_consumers', 'Consumers on the queue, sampled from the management API.', (q) => q.consumers);
}

/** What a /metrics endpoint serves: a registry, or a function producing the text (aggregation). */
export type MetricsSource = Registry | (() => Promise<string>);

/**
 * The metric families a scrape asks for with `?name=` (repeatable: `/metrics?name=a&name=b`), or
 * undefined for a plain scrape of everything. A script or an autoscaler that reads one counter
 * then costs the process that family's text, not every family's, nor the management API sample
 * behind the queue gauges (the bench polls `warren_results_stored_total` this way while it runs).
 */
export function metricNamesOf(url: string | undefined): string[] | undefined {
  const query = url?.split('?')[1];
  if (!query) return undefined;
  const names = new URLSearchParams(query).getAll('name').filter((n) => n !== '');
  return names.length > 0 ? [...new Set(names)] : undefined;
}

/** The exposition text of `source`, or of only the families named (unknown names give nothing). */
async function exposition(source: MetricsSource, names: readonly string[] | undefined): Promise<string> {
  if (!names) return typeof source === 'function' ? source() : source.metrics();
  let blocks: string[];
  if (typeof source !== 'function') {
    blocks = await Promise.all(names.filter((n) => source.getSingleMetric(n) !== undefined).map((n) => source.getSingleMetricAsString(n)));
  } else {
    // An aggregated text: families are separated by a blank line and open with their # HELP line.
    const wanted = new Set(names);
    blocks = (await source())
      .split('\n\n')
      .map((b) => b.replace(/\n+$/, ''))
      .filter((b) => wanted.has(/^# HELP (\S+)/.exec(b)?.[1] ?? ''));
  }
  return blocks.length > 0 ? `${blocks.join('\n\n')}\n` : '';
}

/**
 * Express-free handler for GET /metrics (mounted by the API; served alone by workers): every
 * family, or those `names` asks for (metricNamesOf).
 */
export async function writeMetrics(source: MetricsSource, res: ServerResponse, names?: readonly string[]): Promise<void> {
  try {
    const body = await exposition(source, names);
    res.writeHead(200, { 'content-type': Registry.PROMETHEUS_CONTENT_TYPE, 'cache-control': 'no-store' });
    res.end(body);
  } catch (err) {
    res.writeHead(500, { 'content-type': 'text/plain' });
    res.end(`metrics collection failed: ${(err as Error).message}\n`);
  }
}

/**
 * A small HTTP server for a process without one (a worker, a supervisor): GET /metrics, and 404
 * for anything else. Port 0 picks a free port (logged). A port in use is logged and skipped:
 * metrics are not worth refusing to process messages for.
 */
export async function serveMetrics(options: { source: MetricsSource; port: number; host?: string; logger: Logger }): Promise<Server | undefined> {
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method === 'GET' && path === '/metrics') {
      void writeMetrics(options.source, res, metricNamesOf(req.url));
      return;
    }
    res.writeHead(404, { 'content-type': 'text/plain' });
    res.end('only GET /metrics here\n');
  });
  const host = options.host ?? '0.0.0.0';
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(options.port, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
  } catch (err) {
    options.logger.warn({ err: { message: (err as Error).message }, port: options.port }, 'metrics endpoint not started');
    return undefined;
  }
  server.unref();
  options.logger.info({ port: (server.address() as AddressInfo).port }, 'metrics at GET /metrics');
  return server;
}

/** Sums several processes' `getMetricsAsJSON()` into one exposition (counters and histograms add up). */
export async function aggregateMetrics(parts: MetricsJson[]): Promise<string> {
  return AggregatorRegistry.aggregate(parts as Parameters<typeof AggregatorRegistry.aggregate>[0]).metrics();
}

export type { Counter, Gauge, Histogram, Metric };
