import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { ConfirmChannel, ConsumeMessage } from 'amqplib';
import type { Router } from 'express';
import { bounded, ChannelHolder, type ConfirmChannelSource, dropIfSilent } from '../amqp/index.ts';
import {
  type AmqpConnectionManager,
  connectBroker,
  createMetricsRegistry,
  gaugeIn,
  type Logger,
  ManagementClient,
  type Registry,
  registerQueueGauges,
} from '../core/index.ts';
import { type JobRef, Producer } from '../producer/index.ts';
import { type CompiledJob, type CompiledTopology, DEFAULT_REQUESTS_QUEUE, loadCompiledTopology } from '../topology/index.ts';
import { AlarmProbe } from './broker/alarm-probe.ts';
import { QueueConsumer } from './broker/queue-consumer.ts';
import type { ApiConfig } from './config.ts';
import { TopologyMissingError } from './errors.ts';
import { createHttpHandler } from './http/app.ts';
import { RequestAcceptor } from './http/request-acceptor.ts';
import { ApiMetrics } from './metrics.ts';
import { Readiness } from './readiness.ts';
import { createDeadEventHandler, createResultHandler } from './results/handlers.ts';
import { openResultStore } from './store/open-store.ts';
import type { ResultStore } from './store/result-store.ts';

export interface ApiServerOptions {
  config: Readonly<ApiConfig>;
  logger: Logger;
  /** Defaults to the topology `config.topologyPath` names (or the shipped one). */
  compiled?: CompiledTopology;
  /** A store the caller owns (not closed by stop); by default one is opened from the config. */
  store?: ResultStore;
  /** The queue of the job behind POST /api/v1/processData (default processing.requests; absent from the topology: no such route). */
  requestsQueue?: string;
  /** Job definitions (defineJob) whose schemas the HTTP front checks before publishing. */
  jobs?: readonly JobRef[];
  /** How long start() waits for a first topology check to fail fast on missing queues. */
  topologyWaitMs?: number;
  /** Extra HTTP routes, given the opened store (e.g. dead-letter admin routes when ADMIN_TOKEN is set). */
  routes?: (deps: { store: ResultStore; logger: Logger }) => ReadonlyArray<{ path: string; router: Router }>;
  /** The registry GET /metrics serves (default: a new one with the process metrics). */
  metrics?: Registry;
}

/**
 * The whole API process: store, two broker connections (publishes and consumers apart, so a
 * broker blocking publishers under a resource alarm does not also stall result acks), the result
 * and dead-event consumers, readiness and the HTTP server.
 */
export class ApiServer {
  private readonly opts: ApiServerOptions;
  private readonly log: Logger;
  private http: Server | undefined;
  private store: ResultStore | undefined;
  private connections: AmqpConnectionManager[] = [];
  private publishChannel: ChannelHolder<ConfirmChannel> | undefined;
  private producer: Producer | undefined;
  private acceptor: RequestAcceptor | undefined;
  private consumers: QueueConsumer[] = [];
  private readiness: Readiness | undefined;
  private alarmProbe: AlarmProbe | undefined;
  private stopping: Promise<void> | undefined;

  constructor(options: ApiServerOptions) {
    this.opts = options;
    this.log = options.logger.child({ component: 'api' });
  }

  /** The port listened on (after start). */
  get port(): number {
    return (this.http?.address() as AddressInfo | null)?.port ?? 0;
  }

  /** Starts everything; on failure, closes what was opened and rethrows. */
  async start(): Promise<{ port: number }> {
    try {
      return await this.startAll();
    } catch (err) {
      await this.stop();
      throw err;
    }
  }

  private async startAll(): Promise<{ port: number }> {
    const { config, logger } = this.opts;
    const compiled = this.opts.compiled ?? loadCompiledTopology(config.topologyPath);
    const jobs = Object.values(compiled.jobs);
    const requestsQueue = this.opts.requestsQueue ?? DEFAULT_REQUESTS_QUEUE;
    const defaultJob = jobs.find((j) => j.queue === requestsQueue);
    const publicJobs = Object.fromEntries(jobs.filter((j) => j.public).map((j) => [j.name, j]));
    // The API records the outcome of every job it can accept: their results and dead events.
    const accepted = uniqueJobs([...(defaultJob ? [defaultJob] : []), ...Object.values(publicJobs)]);
    const resultsQueues = [...new Set(accepted.flatMap((j) => (j.results ? [j.results.queue] : [])))];
    const eventsQueues = [...new Set(accepted.flatMap((j) => compiled.routes[j.queue]?.deadLetter?.eventsQueue ?? []))];

    const store =
      this.opts.store ??
      (await openResultStore({
        databaseUrl: config.databaseUrl,
        databaseSchema: config.databaseSchema,
        dataDir: config.dataDir,
        logger,
        retention: config.retention,
      }));
    this.store = store;
    const registry = this.opts.metrics ?? createMetricsRegistry();
    const metrics = new ApiMetrics(registry);
    const publishConn = connectBroker({ urls: config.amqpUrls, logger, connectionName: 'warren-api publisher', metrics: registry });
    const consumeConn = connectBroker({ urls: config.amqpUrls, logger, connectionName: 'warren-api consumers', metrics: registry });
    const probeConn = connectBroker({ urls: config.amqpUrls, logger, connectionName: 'warren-api alarm probe', metrics: registry });
    this.connections = [publishConn, consumeConn, probeConn];
    const probe = new AlarmProbe(probeConn, logger);
    this.alarmProbe = probe;
    probe.start();

    const slot = new ChannelHolder<ConfirmChannel>({ connection: publishConn, name: 'publish', create: (m) => m.createConfirmChannel(), logger });
    this.publishChannel = slot;
    slot.start();
    // Blocked when the publish connection is, or as soon as the probe finds a resource alarm.
    const channels: ConfirmChannelSource = {
      get current() {
        return slot.current;
      },
      get blocked() {
        return slot.blocked || probe.blocked;
      },
      addBlockedListener: (listener) => slot.addBlockedListener(listener),
    };
    const producer = new Producer({
      channels,
      topology: compiled,
      jobs: this.opts.jobs,
      publishTimeoutMs: config.publishTimeoutMs,
      maxInFlight: config.maxInFlight,
      logger,
      metrics: metrics.publish,
      // A silent node (cut off, no TCP reset): move to the next node now, not after the
      // heartbeats. A node that still answers keeps the connection, and the next publishes go on a
      // new channel (ChannelHolder.renew); the waiting ones keep their deadline.
      onSilent: (giveUp) =>
        dropIfSilent(publishConn, 'the broker answered no publish for a while', logger, {
          beforeDrop: giveUp,
          onAnswered: () => slot.renew(config.publishTimeoutMs),
        }),
      onLateOutcome: (requestId, enqueued) => acceptor.lateOutcome(requestId, enqueued),
    });
    this.producer = producer;
    const acceptor = new RequestAcceptor({
      publisher: producer,
      store,
      logger,
      publishTimeoutMs: config.publishTimeoutMs,
      defaultJob: defaultJob?.name,
    });
    this.acceptor = acceptor;
    gaugeIn(registry, 'warren_publishes_in_flight', 'Request publishes awaiting their broker confirm (bounded by API_MAX_IN_FLIGHT).', [], {
      collect() {
        this.set(producer.unconfirmed);
      },
    });
    gaugeIn(registry, 'warren_broker_blocked', '1 while the broker blocks publishing (a memory or disk alarm), else 0.', [], {
      collect() {
        this.set(channels.blocked ? 1 : 0);
      },
    });
    registerQueueGauges(registry, {
      management: new ManagementClient({ amqpUrl: config.amqpUrls[0] as string, managementUrl: config.managementUrl }),
      queues: compiled.queues.map((q) => q.name),
      logger: this.log,
    });

    const consume = (queue: string, handle: (msg: ConsumeMessage) => Promise<void>) =>
      new QueueConsumer({ connection: consumeConn, queue, prefetch: config.resultsPrefetch, handle, logger });
    this.consumers = [
      ...resultsQueues.map((q) => consume(q, createResultHandler(store, logger.child({ queue: q }), metrics))),
      ...eventsQueues.map((q) => consume(q, createDeadEventHandler(store, logger.child({ queue: q }), deliveryLimitsOf(compiled), metrics))),
    ];
    for (const c of this.consumers) c.start();

    const readiness = new Readiness({
      channels,
      connection: consumeConn,
      store,
      needs: {
        exchanges: [...new Set(accepted.map((j) => j.publish.exchange))],
        queues: [...accepted.map((j) => j.queue), ...resultsQueues, ...eventsQueues],
      },
      logger,
    });
    this.readiness = readiness;
    readiness.start();

    const handler = createHttpHandler({
      publisher: producer,
      acceptor,
      defaultJob,
      publicJobs,
      schemaOf: (job) => producer.schemaOf(job),
      store,
      logger,
      config,
      readiness,
      metrics,
      routes: this.opts.routes?.({ store, logger }) ?? [],
    });
    const http = createServer(handler);
    this.http = http;
    await new Promise<void>((resolve, reject) => {
      http.once('error', reject);
      http.listen(config.port, () => {
        http.off('error', reject);
        resolve();
      });
    });
    this.log.info({ port: this.port, store: store.description, jobs: accepted.map((j) => j.name) }, 'api listening');

    const topology = await readiness.topologyCheck(this.opts.topologyWaitMs ?? 3000);
    if (topology.missing?.length) {
      throw new TopologyMissingError(topology.missing);
    }
    return { port: this.port };
  }

  /** Stops HTTP, lets in-flight requests and store commits finish, closes broker and store. */
  stop(): Promise<void> {
    this.stopping ??= this.shutdown();
    return this.stopping;
  }

  private async shutdown(): Promise<void> {
    const http = this.http;
    if (http) {
      const closed = new Promise<void>((resolve) => http.close(() => resolve()));
      http.closeIdleConnections();
      // In-flight requests end within the publish timeout; past that, cut them.
      const cut = setTimeout(() => http.closeAllConnections(), this.opts.config.publishTimeoutMs + 2000);
      await closed;
      clearTimeout(cut);
    }
    await Promise.all(this.consumers.map((c) => c.stop()));
    this.readiness?.stop();
    this.alarmProbe?.stop();
    // Confirms still on their way end by their deadline; the channel closes after them.
    await this.producer?.close();
    await this.acceptor?.drain();
    await this.publishChannel?.close();
    // Bounded: a node cut off without a TCP reset never answers a close, and the store must still close.
    await Promise.all(this.connections.map((c) => bounded(c.close(), 'broker connection close', this.log)));
    if (this.store && !this.opts.store) await this.store.close().catch((err: unknown) => this.log.warn({ err }, 'store close failed'));
    this.log.info('api stopped');
  }
}

function uniqueJobs(jobs: readonly CompiledJob[]): CompiledJob[] {
  return [...new Map(jobs.map((j) => [j.name, j])).values()];
}

function deliveryLimitsOf(compiled: CompiledTopology): Record<string, number> {
  const out: Record<string, number> = {};
  for (const r of Object.values(compiled.routes)) if (r.deliveryLimit !== undefined) out[r.queue] = r.deliveryLimit;
  return out;
}
