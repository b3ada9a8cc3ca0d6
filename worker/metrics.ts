import { type Counter, counterIn, gaugeIn, type Histogram, histogramIn, PublishMetrics, type Registry } from '../core/index.ts';
import type { Outcome } from './process-delivery.ts';

/** The outcome label of `warren_messages_processed_total`, per processDelivery outcome. */
const OUTCOME_LABELS: Record<Outcome, string> = {
  done: 'ok',
  retried: 'retried',
  dead: 'dead-lettered',
  malformed: 'malformed',
  requeued: 'requeued',
  abandoned: 'abandoned',
  redelivery: 'redelivery',
};

/**
 * A worker's metrics, labelled with the queue it consumes:
 * - `warren_messages_processed_total{queue,outcome}`: ok, retried, dead-lettered, malformed, and
 *   the rarer requeued (a replacement not confirmed), abandoned (shutdown) and redelivery (the
 *   delivering channel was gone before the ack);
 * - `warren_redeliveries_total{queue}`: deliveries the broker flagged as redelivered;
 * - `warren_processing_seconds{queue,outcome}`: handler time, outcome ok or failed;
 * - `warren_messages_in_flight{queue}`: messages being handled (at most the prefetch);
 * - `warren_handlers_overdue{queue}`: handlers still running after their timeout (see OverdueHandlers);
 * - the publish metrics of core (results, retry copies and dead letters are publishes).
 */
export class WorkerMetrics {
  readonly publish: PublishMetrics;
  private readonly outcomes: Record<Outcome, Counter.Internal>;
  private readonly redeliveries: Counter.Internal;
  private readonly handlerTime: Histogram<'queue' | 'outcome'>;
  private readonly okLabels: { queue: string; outcome: string };
  private readonly failedLabels: { queue: string; outcome: string };

  constructor(registry: Registry, queue: string, inFlight: () => number, publish?: PublishMetrics, overdue?: () => number) {
    this.publish = publish ?? new PublishMetrics(registry);
    const processed = counterIn(registry, 'warren_messages_processed_total', 'Messages settled, by outcome.', ['queue', 'outcome']);
    this.outcomes = Object.fromEntries(Object.entries(OUTCOME_LABELS).map(([k, label]) => [k, processed.labels(queue, label)])) as Record<
      Outcome,
      Counter.Internal
    >;
    this.redeliveries = counterIn(registry, 'warren_redeliveries_total', 'Deliveries flagged redelivered by the broker.', ['queue']).labels(queue);
    // Every series from the start: a rate() over a series that appears late misses its first count.
    for (const c of [...Object.values(this.outcomes), this.redeliveries]) c.inc(0);
    this.handlerTime = histogramIn(registry, 'warren_processing_seconds', 'Handler run time, by outcome (ok or failed).', ['queue', 'outcome']);
    this.okLabels = { queue, outcome: 'ok' };
    this.failedLabels = { queue, outcome: 'failed' };
    queueGaugeSources(registry, 'warren_messages_in_flight', 'Messages being handled now (bounded by the prefetch).').set(queue, inFlight);
    if (overdue) {
      const help = 'Handlers still running after their timeout (past the concurrency, their messages hold their handler and prefetch slots).';
      queueGaugeSources(registry, 'warren_handlers_overdue', help).set(queue, overdue);
    }
  }

  settled(outcome: Outcome): void {
    this.outcomes[outcome].inc();
  }

  delivered(redelivered: boolean): void {
    if (redelivered) this.redeliveries.inc();
  }

  handled(ok: boolean, seconds: number): void {
    this.handlerTime.observe(ok ? this.okLabels : this.failedLabels, seconds);
  }
}

/** Per registry and gauge name, the source of each queue's value (several workers may share a registry). */
const perQueueSources = new WeakMap<Registry, Map<string, Map<string, () => number>>>();

/** A gauge labelled by queue whose value is read from each queue's source at scrape time. */
function queueGaugeSources(registry: Registry, name: string, help: string): Map<string, () => number> {
  let byName = perQueueSources.get(registry);
  if (!byName) {
    byName = new Map();
    perQueueSources.set(registry, byName);
  }
  let map = byName.get(name);
  if (!map) {
    const m = new Map<string, () => number>();
    map = m;
    byName.set(name, m);
    gaugeIn(registry, name, help, ['queue'], {
      collect() {
        for (const [queue, count] of m) this.set({ queue }, count());
      },
    });
  }
  return map;
}
