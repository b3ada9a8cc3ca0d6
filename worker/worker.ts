import { setMaxListeners } from 'node:events';
import { hostname } from 'node:os';
import { type AmqpConnectionManager, connectBroker, type Logger, type Registry, redactUrl, WarrenError } from '../core/index.ts';
import { checkTopology } from './check-topology.ts';
import { Consumer, type Delivery } from './consumer.ts';
import type { WorkerSettings } from './define-worker.ts';
import { HandlerAbandonedError } from './handler.ts';
import { WorkerMetrics } from './metrics.ts';
import { type DeliveryContext, type Outcome, processDelivery } from './process-delivery.ts';
import { Publisher } from './publisher.ts';
import { topologyNeeds, type WorkerRoutes } from './routes.ts';

const CLOSE_TIMEOUT_MS = 5000;

/** start() gave up because stop() was called first (e.g. SIGTERM while waiting for the broker). */
export class WorkerStoppedError extends WarrenError {
  constructor() {
    super('WORKER_STOPPED', 'the worker was stopped before it started consuming');
  }
}

/** The broker refused the credentials (ACCESS_REFUSED): retrying with the same ones cannot help. */
export class BrokerRefusedError extends WarrenError {
  constructor(cause: unknown) {
    super('BROKER_ACCESS_REFUSED', 'the broker refused the credentials in AMQP_URL (ACCESS_REFUSED); check the user, password and vhost permissions', {
      cause,
    });
  }
}

export type OutcomeCounts = Record<Outcome, number>;

export interface StopSummary {
  /** Messages still unfinished at the deadline, nacked back to the queue. */
  requeued: number;
  counts: OutcomeCounts;
}

/**
 * A worker process's runtime: one connection, a consumer bounded by prefetch, a confirm
 * publisher, and a graceful stop. Create it with defineWorker().
 */
export class Worker {
  private readonly log: Logger;
  private manager: AmqpConnectionManager | undefined;
  private consumer: Consumer | undefined;
  private publisher: Publisher | undefined;
  /** Messages being handled, each with the promise that settles when it is done with. */
  private readonly inFlight = new Map<Delivery, Promise<void>>();
  private readonly stopRequested = new AbortController();
  /**
   * Aborted when a shutdown gives up on the messages still in flight (all at once). Each running
   * handler listens on it, so it has up to `concurrency` listeners by design (bounded by prefetch).
   */
  private readonly abandon = withUnboundedListeners(new AbortController());
  private started = false;
  private stopping: Promise<StopSummary> | undefined;
  private deliveryContext: DeliveryContext | undefined;
  private readonly counts: OutcomeCounts = { done: 0, retried: 0, dead: 0, malformed: 0, requeued: 0, abandoned: 0, redelivery: 0 };
  private readonly metrics: WorkerMetrics;

  constructor(
    readonly settings: WorkerSettings,
    readonly routes: WorkerRoutes,
  ) {
    this.log = settings.logger.child({ component: 'worker', queue: routes.queue });
    this.metrics = new WorkerMetrics(settings.metrics, routes.queue, () => this.inFlight.size);
  }

  /** The Prometheus registry this worker records into (serve it with serveMetrics). */
  get registry(): Registry {
    return this.settings.metrics;
  }

  /** Connects (waiting for the broker as long as it takes), checks the topology, consumes. */
  async start(): Promise<void> {
    if (this.started) throw new Error('worker already started');
    this.started = true;
    const s = this.settings;
    this.log.info({ brokers: s.urls.map(redactUrl), concurrency: s.concurrency, timeoutMs: s.timeoutMs }, 'worker starting');
    const manager = connectBroker({ urls: s.urls, logger: s.logger, connectionName: s.connectionName ?? defaultConnectionName(), metrics: s.metrics });
    this.manager = manager;
    try {
      // connect() resolves on the first connection however long the broker takes (core logs
      // "waiting for the broker"). It rejects on a failure whose message contains "ACCESS-REFUSED"
      // or "403", which also matches "connect ECONNREFUSED 127.0.0.1:40312": only a real refusal
      // of the credentials ends the wait.
      while (!manager.isConnected()) {
        try {
          await this.unlessStopped(manager.connect());
        } catch (err) {
          if (err instanceof WorkerStoppedError) throw err;
          if (/ACCESS[-_]REFUSED/.test((err as Error).message ?? '')) throw new BrokerRefusedError(err);
        }
      }
      const connection = manager.connection;
      if (!connection) throw new Error('lost the broker connection during startup; try again');
      await this.unlessStopped(checkTopology(connection, topologyNeeds(this.routes)));
      this.publisher = new Publisher(manager, s.logger, s.publishTimeoutMs, this.metrics.publish);
      this.consumer = new Consumer(manager, { queue: this.routes.queue, prefetch: s.concurrency, logger: s.logger, onDelivery: (d) => this.onDelivery(d) });
      await this.unlessStopped(this.consumer.waitUntilConsuming());
      this.log.info({ concurrency: s.concurrency }, 'worker started');
    } catch (err) {
      await this.closeConnections();
      throw err;
    }
  }

  /** Messages being handled now. */
  get inFlightCount(): number {
    return this.inFlight.size;
  }

  /** How the messages handled so far ended. */
  stats(): Readonly<OutcomeCounts> {
    return { ...this.counts };
  }

  /**
   * Graceful stop: cancel the consumer, let in-flight handlers finish until `graceMs`, requeue
   * the rest, close. Idempotent: every call returns the same promise.
   */
  stop(graceMs = this.settings.shutdownGraceMs): Promise<StopSummary> {
    this.stopping ??= this.shutdown(graceMs);
    return this.stopping;
  }

  private onDelivery(delivery: Delivery): void {
    this.deliveryContext ??= this.createDeliveryContext();
    const ctx = this.deliveryContext;
    this.metrics.delivered(delivery.message.fields.redelivered);
    // One chain per message: count the outcome and leave the in-flight set in the same callbacks.
    const settled = processDelivery(delivery, ctx, this.abandon.signal).then(
      (outcome) => {
        this.counts[outcome] += 1;
        this.metrics.settled(outcome);
        this.inFlight.delete(delivery);
      },
      (err: unknown) => {
        this.inFlight.delete(delivery);
        this.log.error({ err }, 'message processing failed unexpectedly');
      },
    );
    this.inFlight.set(delivery, settled);
  }

  private async shutdown(graceMs: number): Promise<StopSummary> {
    this.stopRequested.abort();
    const started = Date.now();
    this.log.info({ inFlight: this.inFlight.size, graceMs }, 'stopping: consumer cancelled, finishing in-flight messages');
    await this.consumer?.cancel();
    await this.drain(started + graceMs);
    let requeued = 0;
    if (this.inFlight.size > 0) this.abandon.abort(new HandlerAbandonedError());
    for (const delivery of this.inFlight.keys()) {
      if (this.consumer?.nack(delivery, true)) requeued += 1;
    }
    if (requeued > 0) this.log.warn({ requeued }, 'shutdown deadline passed; requeued unfinished messages');
    await this.closeConnections();
    this.log.info({ durationMs: Date.now() - started, requeuedAtDeadline: requeued, outcomes: this.counts }, 'worker stopped');
    return { requeued, counts: { ...this.counts } };
  }

  /** Waits until nothing is in flight or the deadline passes. */
  private async drain(deadline: number): Promise<void> {
    while (this.inFlight.size > 0 && Date.now() < deadline) {
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<void>((resolve) => {
        timer = setTimeout(resolve, deadline - Date.now());
      });
      try {
        await Promise.race([Promise.all(this.inFlight.values()), timeout]);
      } finally {
        clearTimeout(timer);
      }
    }
  }

  private async closeConnections(): Promise<void> {
    await this.consumer?.close();
    await this.publisher?.close();
    const manager = this.manager;
    if (!manager) return;
    // close() first waits for a connection attempt in progress, which against an unreachable
    // host lasts as long as the OS's connect timeout: bounded here so a shutdown always ends.
    let timer: NodeJS.Timeout | undefined;
    const bounded = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), CLOSE_TIMEOUT_MS);
    });
    try {
      const outcome = await Promise.race([manager.close().then(() => 'closed' as const), bounded]);
      if (outcome === 'timeout') this.log.warn({ timeoutMs: CLOSE_TIMEOUT_MS }, 'broker connection did not close in time; leaving it');
    } catch (err) {
      this.log.debug({ err }, 'broker connection already closed');
    } finally {
      clearTimeout(timer);
    }
  }

  /** What processDelivery needs; it settles through the consumer that delivered. */
  private createDeliveryContext(): DeliveryContext {
    return {
      routes: this.routes,
      handler: this.settings.handler,
      timeoutMs: this.settings.timeoutMs,
      logger: this.log,
      metrics: this.metrics,
      publish: (envelope) => {
        if (!this.publisher) return Promise.reject(new Error('publisher not ready'));
        return this.publisher.publish(envelope);
      },
      ack: (d) => this.consumer?.ack(d) ?? false,
      nack: (d, requeue) => this.consumer?.nack(d, requeue) ?? false,
    };
  }

  /** Rejects with WorkerStoppedError as soon as stop() is called. */
  private unlessStopped<T>(p: Promise<T>): Promise<T> {
    const signal = this.stopRequested.signal;
    if (signal.aborted) return Promise.reject(new WorkerStoppedError());
    return new Promise<T>((resolve, reject) => {
      const onStop = () => reject(new WorkerStoppedError());
      signal.addEventListener('abort', onStop, { once: true });
      p.then(resolve, reject).finally(() => signal.removeEventListener('abort', onStop));
    });
  }
}

function defaultConnectionName(): string {
  return `warren-worker ${hostname()} pid ${process.pid}`;
}

function withUnboundedListeners(c: AbortController): AbortController {
  setMaxListeners(0, c.signal);
  return c;
}
