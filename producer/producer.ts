import { createHash, randomUUID } from 'node:crypto';
import type { ConfirmChannel, Options } from 'amqplib';
import { pino } from 'pino';
import { ChannelHolder, type ConfirmChannelSource, ConfirmPublisher, dropIfSilent, exists } from '../amqp/index.ts';
import {
  type AmqpConnectionManager,
  ConfigError,
  connectBroker,
  type Logger,
  PublishMetrics,
  type Registry,
  type StandardSchemaV1,
  startProducerSpan,
  validateWith,
  WarrenError,
} from '../core/index.ts';
import { type CompiledJob, type CompiledTopology, jobFor, loadCompiledTopology } from '../topology/index.ts';
import { type EnqueueError, enqueueErrorOf, JobValidationError } from './errors.ts';

/** A job as the producer needs it: its name (or queue) and, optionally, the schema its data must pass. */
export interface JobRef {
  readonly queue: string;
  readonly schema?: StandardSchemaV1 | undefined;
}

export interface EnqueueOptions {
  /** The same key gives the same requestId, so a retried enqueue is recorded once downstream. */
  idempotencyKey?: string;
  /** Extra AMQP headers (string values), e.g. the caller's W3C traceparent. */
  headers?: Record<string, string>;
}

export interface ProducerSettings {
  /** Where publishes go: a ChannelHolder of confirm channels (or a fake in tests). */
  channels: ConfirmChannelSource;
  topology: CompiledTopology;
  /** Jobs whose schemas enqueue checks (defineJob results or { queue, schema }). */
  jobs?: readonly JobRef[] | undefined;
  logger: Logger;
  /** Unconfirmed publishes at once; past it enqueue fails at once with OVERLOADED. Default 1000. */
  maxInFlight?: number | undefined;
  /** A confirm deadline; past it enqueue fails with TIMEOUT (outcome unknown). Default 5000. */
  publishTimeoutMs?: number | undefined;
  metrics?: PublishMetrics | undefined;
  /** Called when the broker answers nothing within a confirm deadline (see ConfirmPublisher's onSilent). */
  onSilent?: ((giveUp: () => void) => unknown) | undefined;
  /**
   * Told the late outcome of an enqueue that failed with TIMEOUT: `true` when the broker confirmed
   * it after all, `false` when it surely was not enqueued (nacked, unroutable). A connection that
   * closed first tells nothing, and nothing is called.
   */
  onLateOutcome?: ((requestId: string, enqueued: boolean) => void) | undefined;
}

const IDEMPOTENCY_HEADER = 'x-warren-idempotency-key';

/**
 * Enqueues jobs from any process: resolved by name through the topology, checked against their
 * schema, published persistent and mandatory, and resolved with the requestId only after the
 * broker confirmed. Never buffers: a refusal is an EnqueueError with a code and a retryAfterMs.
 * The HTTP API is built on it.
 */
export class Producer {
  private readonly settings: ProducerSettings;
  private readonly publisher: ConfirmPublisher;
  private readonly schemas = new Map<string, StandardSchemaV1>();
  /** Jobs resolved so far, by the name or queue they were asked by (enqueue's hot path). */
  private readonly jobs = new Map<string, CompiledJob>();
  private readonly onClose: Array<() => Promise<void>> = [];

  constructor(settings: ProducerSettings) {
    this.settings = settings;
    this.publisher = new ConfirmPublisher({
      channels: settings.channels,
      timeoutMs: settings.publishTimeoutMs ?? 5000,
      maxInFlight: settings.maxInFlight ?? 1000,
      failWhenBlocked: true,
      logger: settings.logger,
      ...(settings.metrics ? { metrics: settings.metrics } : {}),
      ...(settings.onSilent ? { onSilent: settings.onSilent } : {}),
      onLate: (envelope, outcome) => {
        const requestId = envelope.options.messageId;
        if (typeof requestId !== 'string' || outcome === 'closed') return;
        settings.onLateOutcome?.(requestId, outcome === 'ack');
      },
    });
    for (const ref of settings.jobs ?? []) {
      if (ref.schema) this.schemas.set(this.job(ref.queue).name, ref.schema);
    }
  }

  /** Publishes awaiting their confirm now. */
  get unconfirmed(): number {
    return this.publisher.unconfirmed;
  }

  /** The job a name (or queue) names in the topology; ConfigError listing the jobs otherwise. */
  job(nameOrQueue: string): CompiledJob {
    let job = this.jobs.get(nameOrQueue);
    if (!job) {
      job = jobFor(this.settings.topology, nameOrQueue);
      this.jobs.set(nameOrQueue, job);
    }
    return job;
  }

  /** The schema enqueue checks for a job, if any. */
  schemaOf(job: CompiledJob): StandardSchemaV1 | undefined {
    return this.schemas.get(job.name);
  }

  /**
   * Enqueues `data` for `job` (its name, its queue, or a defineJob result, whose schema is then
   * checked). Resolves with the requestId once the broker confirmed; rejects with
   * JobValidationError (nothing sent) or EnqueueError (code, retryAfterMs, outcome).
   */
  enqueue(job: string | JobRef, data: unknown, options: EnqueueOptions = {}): Promise<string> {
    let compiled: CompiledJob;
    try {
      compiled = this.job(typeof job === 'string' ? job : job.queue);
    } catch (err) {
      return Promise.reject(err);
    }
    if (data === undefined) return Promise.reject(new JobValidationError(compiled.name, 'data is required (undefined cannot be sent as JSON)', []));
    const schema = (typeof job === 'string' ? undefined : job.schema) ?? this.schemas.get(compiled.name);
    // Without a schema the hot path has no await of its own: one promise per enqueue, the publisher's.
    if (!schema) return this.send(compiled, data, options);
    return validateWith<unknown>(schema, data).then((valid) => {
      if (!valid.ok) throw new JobValidationError(compiled.name, valid.message, valid.issues);
      return this.send(compiled, valid.value, options);
    });
  }

  private send(job: CompiledJob, data: unknown, options: EnqueueOptions): Promise<string> {
    const key = options.idempotencyKey;
    const requestId = key === undefined ? randomUUID() : requestIdForKey(job.name, key);
    const headers = key === undefined ? options.headers : { ...options.headers, [IDEMPOTENCY_HEADER]: key };
    return this.publish(job, requestId, data, headers).then(() => requestId);
  }

  /** Why a publish for `job` would be refused at once now (EnqueueError), or undefined. */
  refusal(job: CompiledJob, requestId: string): EnqueueError | undefined {
    const refused = this.publisher.refusal();
    return refused ? (enqueueErrorOf(refused, job.name, requestId) as EnqueueError) : undefined;
  }

  /**
   * Publishes one request under a requestId the caller chose (the API: its idempotency claims
   * pick it), with confirm. Rejects with EnqueueError.
   */
  publish(job: CompiledJob, requestId: string, data: unknown, headers?: Record<string, string>): Promise<void> {
    const { exchange, routingKey } = job.publish;
    const span = startProducerSpan(exchange, routingKey, requestId, headers);
    const h = span?.headers ?? headers;
    const now = Date.now();
    const content = Buffer.from(JSON.stringify({ requestId, data, acceptedAt: now }));
    const options: Options.Publish = {
      persistent: true,
      mandatory: true,
      messageId: requestId,
      correlationId: requestId,
      contentType: 'application/json',
      timestamp: Math.floor(now / 1000),
      appId: 'warren',
    };
    if (h) options.headers = h;
    const sent = this.publisher.publish({ exchange, routingKey, content, options });
    return sent.then(
      () => span?.end(),
      (err: unknown) => {
        span?.end(err instanceof Error ? err : new Error(String(err)));
        throw enqueueErrorOf(err, job.name, requestId);
      },
    );
  }

  /** Waits for the confirms still pending (up to their deadline), then closes what createProducer opened. */
  async close(): Promise<void> {
    await this.publisher.whenIdle();
    this.publisher.close();
    for (const close of this.onClose.splice(0)) await close();
  }

  /** Registers what close() releases after the last confirm (createProducer's connection). */
  closeWith(close: () => Promise<void>): void {
    this.onClose.push(close);
  }
}

/** A stable requestId per (job, key): a UUID-shaped digest, so a retried enqueue lands on the same row. */
export function requestIdForKey(job: string, key: string): string {
  const h = createHash('sha256').update(`${job}\n${key}`).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-5${h.slice(13, 16)}-${((Number.parseInt(h.slice(16, 17), 16) & 3) | 8).toString(16)}${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

export interface CreateProducerOptions {
  /** Broker URLs, amqp:// or amqps://; several are tried in turn (a cluster). */
  urls: readonly string[];
  /** A topology file or folder, or a compiled topology. */
  topology: string | CompiledTopology;
  /** defineJob results (or { queue, schema }) whose schemas enqueue checks. */
  jobs?: readonly JobRef[];
  logger?: Logger;
  maxInFlight?: number;
  publishTimeoutMs?: number;
  /** How long createProducer waits for the broker (default 30000). */
  connectTimeoutMs?: number;
  connectionName?: string;
  /** Records warren_publishes_total and the confirm metrics here. */
  metrics?: Registry;
}

/** The producer could not start: the broker did not answer in time, or the topology is missing. */
export class ProducerStartError extends WarrenError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('PRODUCER_START', message, options);
  }
}

/**
 * Connects a producer for your own server: `await producer.enqueue('thumbnails', data)`. Waits
 * until the broker answers and every job's exchange exists (fails fast, naming what is missing).
 */
export async function createProducer(options: CreateProducerOptions): Promise<Producer> {
  if (!Array.isArray(options.urls) || options.urls.length === 0) throw new ConfigError('urls', 'expected at least one amqp:// or amqps:// URL');
  for (const u of options.urls) if (!/^amqps?:\/\//.test(u)) throw new ConfigError('urls', 'expected amqp:// or amqps:// URLs');
  const topology = typeof options.topology === 'string' ? loadCompiledTopology(options.topology) : options.topology;
  const logger = options.logger ?? pino({ level: 'warn' });
  const manager: AmqpConnectionManager = connectBroker({
    urls: options.urls,
    logger,
    connectionName: options.connectionName ?? `warren-producer pid ${process.pid}`,
    ...(options.metrics ? { metrics: options.metrics } : {}),
  });
  const holder = new ChannelHolder<ConfirmChannel>({ connection: manager, name: 'producer', create: (m) => m.createConfirmChannel(), logger });
  const closeAll = async () => {
    await holder.close();
    await manager.close().catch(() => undefined);
  };
  try {
    holder.start();
    await withDeadline(holder.whenOpen(), options.connectTimeoutMs ?? 30_000, 'the broker did not answer in time');
    await checkExchanges(manager, topology);
  } catch (err) {
    await closeAll();
    throw err instanceof WarrenError ? err : new ProducerStartError(`producer not started: ${(err as Error).message}`, { cause: err });
  }
  const producer = new Producer({
    channels: holder,
    topology,
    jobs: options.jobs,
    logger,
    maxInFlight: options.maxInFlight,
    publishTimeoutMs: options.publishTimeoutMs,
    metrics: options.metrics ? new PublishMetrics(options.metrics) : undefined,
    // A silent link: dropped for the next node when the node does not answer either; else the
    // next publishes go on a new channel (ChannelHolder.renew), the waiting ones keep their deadline.
    onSilent: (giveUp) =>
      dropIfSilent(manager, 'the broker answered no publish for a while', logger, {
        beforeDrop: giveUp,
        onAnswered: () => holder.renew(options.publishTimeoutMs ?? 5000),
      }),
  });
  producer.closeWith(closeAll);
  return producer;
}

async function checkExchanges(manager: AmqpConnectionManager, topology: CompiledTopology): Promise<void> {
  const connection = manager.connection;
  if (!connection) throw new ProducerStartError('lost the broker connection during start; try again');
  const missing: string[] = [];
  for (const x of new Set(Object.values(topology.jobs).map((j) => j.publish.exchange))) {
    if (x !== '' && !(await exists(connection, (ch) => ch.checkExchange(x)))) missing.push(`exchange "${x}"`);
  }
  if (missing.length > 0) throw new ProducerStartError(`the broker lacks ${missing.join(', ')}; declare the topology first: npx warren topology apply`);
}

function withDeadline<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new ProducerStartError(`${what} (${ms} ms)`)), ms);
  });
  return Promise.race([p, deadline]).finally(() => clearTimeout(timer));
}
