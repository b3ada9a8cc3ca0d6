import { ConfigError, isStandardSchema, type StandardSchemaV1 } from '../core/index.ts';
import type { Handler } from './handler.ts';

/**
 * How a job's messages are written. `warren` (default): the body is Warren's request
 * `{requestId, data, acceptedAt}` (what the producer and the API send). `raw`: a plain JSON body
 * another service wrote; the handler gets the whole body as `data`, and the requestId is the
 * message's messageId (else its correlationId, else a digest of the body).
 */
export type JobEnvelope = 'warren' | 'raw';

export interface JobOptions<TData = unknown, TResult = unknown> {
  /** The job's queue, or its name in the topology. */
  queue: string;
  handler: Handler<TData, TResult>;
  /** Validates `data` (zod or any Standard Schema validator): at enqueue, at the HTTP front, and in the worker (a failure dead-letters the message as malformed). */
  schema?: StandardSchemaV1<unknown, TData>;
  /** A handler running longer fails with TimeoutError (retried); default: the worker's. */
  timeoutMs?: number;
  /** Handlers of this job running at once per process (its prefetch is four times that); default: the worker's. */
  concurrency?: number;
  /**
   * Messages of this job a process holds at once (the AMQP prefetch), at least `concurrency`;
   * default: the worker's, else four times the concurrency. Lower it for slow handlers and many
   * replicas, so that one replica does not hold messages another could be running.
   */
  prefetch?: number;
  envelope?: JobEnvelope;
}

const JOB = Symbol.for('warren.job');

/** A job as defineJob() returns it: validated options, frozen. */
export interface JobDefinition<TData = unknown, TResult = unknown> extends Readonly<JobOptions<TData, TResult>> {
  readonly [JOB]: true;
  readonly envelope: JobEnvelope;
}

/**
 * Defines a job: the queue it consumes and the handler that does its work. A module's default
 * export (or an array of them) is what `warren worker --handler <module>` runs. Throws ConfigError
 * naming the option.
 */
export function defineJob<TData = unknown, TResult = unknown>(options: JobOptions<TData, TResult>): JobDefinition<TData, TResult> {
  if (typeof options !== 'object' || options === null) throw new ConfigError('defineJob', 'expected an options object { queue, handler }');
  if (typeof options.queue !== 'string' || options.queue === '') throw new ConfigError('queue', 'expected the name of the job or of its queue');
  if (typeof options.handler !== 'function') throw new ConfigError('handler', `expected a function for job "${options.queue}"`);
  if (options.schema !== undefined && !isStandardSchema(options.schema)) {
    throw new ConfigError('schema', `expected a Standard Schema validator (zod, valibot, arktype...) for job "${options.queue}"`);
  }
  positiveInt('timeoutMs', options.timeoutMs, 86_400_000);
  positiveInt('concurrency', options.concurrency, 10_000);
  positiveInt('prefetch', options.prefetch, 65_535);
  if (options.prefetch !== undefined && options.concurrency !== undefined && options.prefetch < options.concurrency) {
    throw new ConfigError('prefetch', `expected at least the job's concurrency, ${options.concurrency} (got ${options.prefetch}), for job "${options.queue}"`);
  }
  const envelope = options.envelope ?? 'warren';
  if (envelope !== 'warren' && envelope !== 'raw') throw new ConfigError('envelope', `expected "warren" or "raw" (got ${JSON.stringify(envelope)})`);
  return Object.freeze({ ...options, envelope, [JOB]: true as const });
}

/** True for what defineJob() returned (also across copies of the package loaded twice). */
export function isJobDefinition(v: unknown): v is JobDefinition {
  return typeof v === 'object' && v !== null && (v as Record<symbol, unknown>)[JOB] === true;
}

function positiveInt(name: string, value: number | undefined, max: number): void {
  if (value === undefined) return;
  if (!Number.isInteger(value) || value < 1 || value > max) throw new ConfigError(name, `expected an integer from 1 to ${max} (got ${value})`);
}
