import { setMaxListeners } from 'node:events';
import { hostname } from 'node:os';
import type { ConfirmChannel } from 'amqplib';
import { ChannelHolder, ConfirmPublisher, Consumer, type Delivery, type Envelope } from '../amqp/index.ts';
import { type AmqpConnectionManager, connectBroker, type Logger, PublishMetrics, type Registry, redactUrl, WarrenError } from '../core/index.ts';
import { checkTopology, type TopologyNeeds } from './check-topology.ts';
import type { Decoder } from './decode.ts';
import type { WorkerSettings } from './define-worker.ts';
import { type Handler, HandlerAbandonedError } from './handler.ts';
import { HandlerSlots } from './handler-slots.ts';
import { WorkerMetrics } from './metrics.ts';
import { OverdueHandlers } from './overdue.ts';
import { type DeliveryContext, type Outcome, processDelivery } from './process-delivery.ts';
import { ResultBatcher } from './result-batcher.ts';
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

/** One job a worker runs: its routes, handler, decoder and limits, resolved by defineWorker. */
export interface WorkerJob {
  name: string;
  routes: WorkerRoutes;
  handler: Handler;
  decode: Decoder;
  /** Handlers of this job running at once (worker/handler-slots.ts). */
  concurrency: number;
  /** Messages of this job held at once (AMQP prefetch): at least the concurrency; by default HANDLER_PREFETCH_FACTOR times it. */
  prefetch: number;
  timeoutMs: number;
}

/** A job at run time: its consumer and what processDelivery needs. */
interface RunningJob {
  job: WorkerJob;
  consumer: Consumer;
  metrics: WorkerMetrics;
  context: DeliveryContext;
}

export interface StopSummary {
  /** Messages still unfinished at the deadline, nacked back to the queue. */
  requeued: number;
  counts: OutcomeCounts;
}

/**
 * A worker process's runtime: one connection, one consumer per job (each bounded by its prefetch,
 * on a channel of its own), one confirm publisher, and a graceful stop. Create it with defineWorker().
 */
export class Worker {
  private readonly log: Logger;
  private manager: AmqpConnectionManager | undefined;
  private publishChannel: ChannelHolder<ConfirmChannel> | undefined;
  private publisher: ConfirmPublisher | undefined;
  private running: RunningJob[] = [];
  /** Messages being handled, each with the promise that settles when it is done with. */
  private readonly inFlight = new Map<Delivery, Promise<void>>();
  /** Aborted when stop() is called; each message waiting for a handler slot listens on it (bounded by prefetch). */
  private readonly stopRequested = withUnboundedListeners(new AbortController());
  /**
   * Aborted when a shutdown gives up on the messages still in flight (all at once). Each running
   * handler listens on it, so it has up to `concurrency` listeners by design (bounded by prefetch).
   */
  private readonly abandon = withUnboundedListeners(new AbortController());
  private started = false;
  private stopping: Promise<StopSummary> | undefined;
  private readonly counts: OutcomeCounts = { done: 0, retried: 0, dead: 0, malformed: 0, requeued: 0, abandoned: 0, redelivery: 0 };
  private readonly publishMetrics: PublishMetrics;
  /** Results that finish while a results message awaits its confirm share the next (worker/result-batcher.ts). */
  private readonly results: ResultBatcher;

  constructor(readonly settings: WorkerSettings) {
    this.log = settings.logger.child({ component: 'worker' });
    this.publishMetrics = new PublishMetrics(settings.metrics);
    this.results = new ResultBatcher((envelope) => this.publishEnvelope(envelope), settings.resultBatch);
  }

  /** The Prometheus registry this worker records into (serve it with serveMetrics). */
  get registry(): Registry {
    return this.settings.metrics;
  }

  /** The routes of each job, in the order given. */
  get routes(): readonly WorkerRoutes[] {
    return this.settings.jobs.map((j) => j.routes);
  }

  /** What must exist on the broker for every job. */
  get needs(): TopologyNeeds {
    const needs = this.routes.map(topologyNeeds);
    return { queues: needs.flatMap((n) => n.queues), exchanges: needs.flatMap((n) => n.exchanges) };
  }

  /** Connects (waiting for the broker as long as it takes), checks the topology, consumes. */
  async start(): Promise<void> {
    if (this.started) throw new Error('worker already started');
    this.started = true;
    const s = this.settings;
    const jobs = s.jobs.map((j) => ({ job: j.name, queue: j.routes.queue, concurrency: j.concurrency, prefetch: j.prefetch, timeoutMs: j.timeoutMs }));
    this.log.info({ brokers: s.urls.map(redactUrl), jobs }, 'worker starting');
    const manager = connectBroker({
      urls: s.urls,
      logger: s.logger,
      connectionName: s.connectionName ?? defaultConnectionName(),
      metrics: s.metrics,
    });
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
      await this.unlessStopped(checkTopology(connection, this.needs));
      const holder = new ChannelHolder<ConfirmChannel>({ connection: manager, name: 'publish', create: (m) => m.createConfirmChannel(), logger: s.logger });
      this.publishChannel = holder;
      holder.start();
      this.publisher = new ConfirmPublisher({ channels: holder, timeoutMs: s.publishTimeoutMs, logger: s.logger, metrics: this.publishMetrics });
      await this.unlessStopped(holder.whenOpen());
      this.running = s.jobs.map((job) => this.run(manager, job));
      await this.unlessStopped(Promise.all(this.running.map((r) => r.consumer.waitUntilConsuming())));
      this.log.info({ jobs: jobs.length }, 'worker started');
    } catch (err) {
      await this.closeConnections();
      throw err;
    }
  }

  private run(manager: AmqpConnectionManager, job: WorkerJob): RunningJob {
    const log = this.settings.logger.child({ component: 'worker', queue: job.routes.queue });
    let inFlight = 0;
    const overdue = new OverdueHandlers(job.concurrency);
    const slots = new HandlerSlots(job.concurrency);
    const metrics = new WorkerMetrics(
      this.settings.metrics,
      job.routes.queue,
      () => inFlight,
      this.publishMetrics,
      () => overdue.count,
    );
    const consumer = new Consumer({
      connection: manager,
      queue: job.routes.queue,
      prefetch: job.prefetch,
      logger: this.settings.logger,
      onDelivery: (d) => {
        inFlight += 1;
        this.onDelivery(running, d).finally(() => {
          inFlight -= 1;
        });
      },
    });
    const context: DeliveryContext = {
      routes: job.routes,
      handler: job.handler,
      decode: job.decode,
      timeoutMs: job.timeoutMs,
      logger: log,
      metrics,
      publish: (envelope) => this.publishEnvelope(envelope),
      publishResult: (envelope) => this.results.add(envelope),
      ack: (d) => consumer.ack(d),
      reject: (d) => consumer.reject(d, true),
      requeue: (d) => consumer.nack(d, true),
      overdue,
      slots,
      stopping: this.stopRequested.signal,
    };
    const running: RunningJob = { job, consumer, metrics, context };
    consumer.start();
    return running;
  }

  private publishEnvelope(envelope: Envelope): Promise<void> {
    if (!this.publisher) return Promise.reject(new Error('publisher not ready'));
    return this.publisher.publish(envelope);
  }

  /** True while every job's consumer is subscribed (false while one waits for its queue). */
  get consuming(): boolean {
    return this.running.length > 0 && this.running.every((r) => r.consumer.consuming);
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
   * Graceful stop: cancel the consumers, let in-flight handlers finish until `graceMs`, requeue
   * the rest, close. Idempotent: every call returns the same promise.
   */
  stop(graceMs = this.settings.shutdownGraceMs): Promise<StopSummary> {
    this.stopping ??= this.shutdown(graceMs);
    return this.stopping;
  }

  private onDelivery(running: RunningJob, delivery: Delivery): Promise<void> {
    running.metrics.delivered(delivery.message.fields.redelivered);
    // One chain per message: count the outcome and leave the in-flight set in the same callbacks.
    const settled = processDelivery(delivery, running.context, this.abandon.signal).then(
      (outcome) => {
        this.counts[outcome] += 1;
        running.metrics.settled(outcome);
        this.inFlight.delete(delivery);
      },
      (err: unknown) => {
        this.inFlight.delete(delivery);
        this.log.error({ err }, 'message processing failed unexpectedly');
      },
    );
    this.inFlight.set(delivery, settled);
    return settled;
  }

  private async shutdown(graceMs: number): Promise<StopSummary> {
    this.stopRequested.abort();
    const started = Date.now();
    this.log.info({ inFlight: this.inFlight.size, graceMs }, 'stopping: consumer cancelled, finishing in-flight messages');
    await Promise.all(this.running.map((r) => r.consumer.cancel()));
    await this.drain(started + graceMs);
    let requeued = 0;
    if (this.inFlight.size > 0) this.abandon.abort(new HandlerAbandonedError());
    for (const delivery of this.inFlight.keys()) {
      if (this.runningOf(delivery)?.consumer.nack(delivery, true)) requeued += 1;
    }
    if (requeued > 0) this.log.warn({ requeued }, 'shutdown deadline passed; requeued unfinished messages');
    await this.closeConnections();
    this.log.info({ durationMs: Date.now() - started, requeuedAtDeadline: requeued, outcomes: this.counts }, 'worker stopped');
    return { requeued, counts: { ...this.counts } };
  }

  /** The job whose consumer delivered this message (a delivery knows its channel). */
  private runningOf(delivery: Delivery): RunningJob | undefined {
    return this.running.find((r) => r.consumer.owns(delivery));
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
    await Promise.all(this.running.map((r) => r.consumer.close()));
    this.publisher?.close();
    await this.publishChannel?.close();
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
