import { type Counter, counterIn, type Histogram, histogramIn, PublishMetrics, type Registry } from '../core/index.ts';

/** End-to-end buckets: a request waits in queues and retry tiers for seconds to hours. */
const END_TO_END_BUCKETS = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600];

/**
 * The API's metrics, in one registry served at GET /metrics:
 * - `warren_requests_accepted_total`: answered 202 (an Idempotency-Key replay included);
 * - `warren_requests_rejected_total{reason}`: refused, by the error code the client got
 *   (OVERLOADED, BROKER_BLOCKED, PUBLISH_REJECTED, MALFORMED_JSON, PAYLOAD_TOO_LARGE, ...);
 * - `warren_publishes_total`, `warren_publish_confirms_total{outcome}`, `warren_publish_confirm_seconds`;
 * - `warren_results_stored_total{status}`: done and dead outcomes stored (duplicates not counted);
 * - `warren_end_to_end_seconds{status}`: accepted (the confirm) to outcome stored;
 * - plus the broker (reconnects, blocked), in-flight publishes and queue depths (api/server.ts).
 */
export class ApiMetrics {
  readonly publish: PublishMetrics;
  readonly accepted: Counter;
  private readonly rejected: Counter<'reason'>;
  private readonly stored: Counter<'status'>;
  private readonly endToEnd: Histogram<'status'>;

  constructor(readonly registry: Registry) {
    this.publish = new PublishMetrics(registry);
    this.accepted = counterIn(registry, 'warren_requests_accepted_total', 'Requests answered 202 (accepted: the broker confirmed them).');
    this.rejected = counterIn(registry, 'warren_requests_rejected_total', 'Requests refused, by the error code returned to the client.', ['reason']);
    this.stored = counterIn(registry, 'warren_results_stored_total', 'Outcomes stored: done (a result) or dead (a dead letter).', ['status']);
    this.endToEnd = histogramIn(
      registry,
      'warren_end_to_end_seconds',
      'From a request accepted to its outcome stored (done or dead).',
      ['status'],
      END_TO_END_BUCKETS,
    );
  }

  rejectedWith(code: string): void {
    this.rejected.labels(code).inc();
  }

  /** An outcome newly stored; `acceptedAtMs` the request's acceptedAt when it has one. */
  outcomeStored(status: 'done' | 'dead', acceptedAtMs: number | undefined): void {
    this.stored.labels(status).inc();
    if (acceptedAtMs !== undefined) this.endToEnd.labels(status).observe(Math.max(0, Date.now() - acceptedAtMs) / 1000);
  }
}
