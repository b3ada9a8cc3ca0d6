import { setTimeout as sleep } from 'node:timers/promises';
import type { Delivery, Envelope } from '../amqp/index.ts';
import {
  type ConsumerSpan,
  errorCode,
  HEADERS,
  isPermanent,
  type Logger,
  numberHeader,
  requestIdOf,
  startConsumerSpan,
  stringHeader,
  traceIdOf,
} from '../core/index.ts';
import type { Decoder } from './decode.ts';
import { copyEnvelope, resultEnvelope } from './envelopes.ts';
import { buildDeadLetterHeaders, buildRetryHeaders, describeFailure, type FailureInfo, type Headers } from './failure-headers.ts';
import { type Handler, runHandler } from './handler.ts';
import type { HandlerSlots } from './handler-slots.ts';
import type { OverdueHandlers } from './overdue.ts';
import { decideFailure } from './retry-policy.ts';
import type { WorkerRoutes } from './routes.ts';

/**
 * One delivery from start to settlement: decode, run the handler, publish what replaces the
 * message (result, retry copy or dead letter), and ack only once the broker confirmed that.
 * Never rejects: every path ends in an ack, a nack (requeue), or, when the delivering channel is
 * gone, nothing at all (the broker redelivers).
 */

const REQUEUE_DELAY_MS = 1000;

export type Outcome = 'done' | 'retried' | 'dead' | 'malformed' | 'requeued' | 'abandoned' | 'redelivery';

export interface DeliveryContext {
  routes: WorkerRoutes;
  handler: Handler;
  /** The job's envelope and schema: what the handler gets, or why the message is malformed. */
  decode: Decoder;
  timeoutMs: number;
  publish: (envelope: Envelope) => Promise<void>;
  /** Publishes a result message (sharing a message with others under load); `publish` when absent. */
  publishResult?: (envelope: Envelope) => Promise<void>;
  ack: (delivery: Delivery) => boolean;
  /** Requeues a message whose processing failed (basic.reject: counted toward the delivery limit on 4.3). */
  reject: (delivery: Delivery) => boolean;
  /** Handlers still running past their timeout; past its cap, a timed-out message holds its handler and prefetch slots. */
  overdue?: OverdueHandlers;
  /** The job's concurrency: a message waits for a slot before its handler runs, and frees it once the handler returned. */
  slots?: HandlerSlots;
  /** Aborted when the worker starts to stop: a message still waiting for a slot is requeued instead of run. */
  stopping?: AbortSignal;
  /** Requeues a message that is not at fault (basic.nack): one that never reached its handler. */
  requeue?: (delivery: Delivery) => boolean;
  logger: Logger;
  /** Told each handler run's outcome and time. */
  metrics?: { handled(ok: boolean, seconds: number): void };
  now?: () => Date;
}

interface Replacement {
  /** undefined: nothing replaces the message (a job without a result message): ack at once. */
  envelope: Envelope | undefined;
  outcome: 'done' | 'retried' | 'dead' | 'malformed';
  /** A timed-out handler still running, past the cap: the ack (and the prefetch slot) waits for it. */
  hold?: Promise<unknown> | undefined;
}

export function processDelivery(delivery: Delivery, ctx: DeliveryContext, shutdown: AbortSignal): Promise<Outcome> {
  const msg = delivery.message;
  const headers: Headers = msg.properties.headers ?? {};
  const priorFailures = numberHeader(headers, HEADERS.attempt);
  const messageId = typeof msg.properties.messageId === 'string' ? msg.properties.messageId : undefined;
  const span = startConsumerSpan(ctx.routes.queue, { messageId, headers, redelivered: msg.fields.redelivered, attempt: priorFailures + 1 });
  if (!span) return settle(delivery, ctx, shutdown, priorFailures, undefined);
  return span
    .run(() => settle(delivery, ctx, shutdown, priorFailures, span))
    .then((outcome) => {
      span.setAttribute('warren.outcome', outcome);
      span.end();
      return outcome;
    });
}

async function settle(
  delivery: Delivery,
  ctx: DeliveryContext,
  shutdown: AbortSignal,
  priorFailures: number,
  span: ConsumerSpan | undefined,
): Promise<Outcome> {
  const msg = delivery.message;
  const attempt = priorFailures + 1;
  // The child logger is built on first use: at levels that skip the per-message info line it
  // would be built and thrown away for every message. Its fields are on every outcome line.
  let child: Logger | undefined;
  const log = lazyLogger(() => {
    child ??= ctx.logger.child(logFields(msg, attempt));
    return child;
  }, ctx.logger);
  try {
    const slots = ctx.slots;
    if (slots && !(await slots.acquire(ctx.stopping ?? shutdown))) {
      // Stopping before its handler started: back to the queue at once, for another replica.
      if (shutdown.aborted) return 'abandoned';
      return ctx.requeue?.(delivery) ? 'requeued' : 'redelivery';
    }
    let replacement: Replacement | undefined;
    try {
      replacement = await replace(delivery, ctx, shutdown, log, priorFailures, span);
    } finally {
      // The handler has returned: the next message's runs while this one's replacement is
      // confirmed. One past its timeout beyond the overdue cap keeps its slot until it returns.
      const hold = replacement?.hold;
      if (hold) void hold.finally(() => slots?.release());
      else slots?.release();
    }
    if (!replacement || shutdown.aborted) return 'abandoned';
    try {
      if (replacement.envelope) {
        if (replacement.outcome === 'done' && ctx.publishResult) await ctx.publishResult(replacement.envelope);
        else await ctx.publish(replacement.envelope);
      }
    } catch (err) {
      if (shutdown.aborted) return 'abandoned';
      log.warn({ err, delayMs: REQUEUE_DELAY_MS }, 'replacement not confirmed; requeueing the message');
      // A pause before the requeue, so a lasting fault (a full or missing retry queue) does not
      // spin the message through the handler; the quorum queue's delivery limit still caps it.
      await sleep(REQUEUE_DELAY_MS, undefined, { signal: shutdown }).catch(() => undefined);
      if (shutdown.aborted) return 'abandoned';
      return ctx.reject(delivery) ? 'requeued' : 'redelivery';
    }
    if (replacement.hold) {
      log.warn({ overdue: ctx.overdue?.count }, 'handlers past their timeout reached the cap; holding this slot until the handler returns');
      await Promise.race([replacement.hold.catch(() => undefined), aborted(shutdown)]);
    }
    // Shutdown already nacked it: the confirmed copy will be a duplicate, which is allowed.
    if (shutdown.aborted) return 'abandoned';
    if (!ctx.ack(delivery)) {
      log.info({ generation: delivery.source.generation }, 'delivering channel gone before the ack; the broker redelivers');
      return 'redelivery';
    }
    return replacement.outcome;
  } catch (err) {
    // Only a defect of ours lands here; requeue rather than lose the message.
    log.error({ err }, 'unexpected error settling a message; requeueing');
    if (shutdown.aborted) return 'abandoned';
    return ctx.reject(delivery) ? 'requeued' : 'redelivery';
  }
}

async function replace(
  delivery: Delivery,
  ctx: DeliveryContext,
  shutdown: AbortSignal,
  log: Logger,
  priorFailures: number,
  span: ConsumerSpan | undefined,
): Promise<Replacement | undefined> {
  const msg = delivery.message;
  const headers = msg.properties.headers;
  const { routes } = ctx;
  const now = ctx.now ?? (() => new Date());
  const attempt = priorFailures + 1;
  const decoded = await ctx.decode(msg);
  if (!decoded.ok) {
    log.warn({ reason: decoded.reason }, 'malformed message; dead-lettering');
    span?.fail(new Error(`malformed message: ${decoded.reason}`));
    const failure: FailureInfo = { code: 'MALFORMED', message: decoded.reason, stack: undefined, at: now() };
    return dead(delivery, routes, 'malformed', attempt, failure, now(), undefined);
  }
  const { requestId, data, acceptedAt } = decoded;
  log.debug({ redelivered: msg.fields.redelivered, generation: delivery.source.generation }, 'handling message');
  const started = Date.now();
  let hold: Promise<unknown> | undefined;
  try {
    const result = await runHandler(
      ctx.handler,
      data,
      { requestId, attempt, maxAttempts: routes.retry.maxAttempts, redelivered: msg.fields.redelivered, headers: headers ?? {}, logger: log },
      ctx.timeoutMs,
      shutdown,
      (work) => {
        hold = ctx.overdue?.add(work);
      },
    );
    const envelope = routes.result
      ? resultEnvelope(routes.result, { requestId, result, attempts: attempt, processedAt: now(), requestHeaders: headers, acceptedAt })
      : undefined;
    const durationMs = Date.now() - started;
    ctx.metrics?.handled(true, durationMs / 1000);
    log.info({ durationMs }, 'message processed');
    return { envelope, outcome: 'done' };
  } catch (err) {
    if (shutdown.aborted) return undefined;
    ctx.metrics?.handled(false, (Date.now() - started) / 1000);
    span?.fail(err);
    const failure = describeFailure(err, now());
    const decision = decideFailure({ priorFailures, permanent: isPermanent(err), policy: routes.retry });
    if (decision.action === 'dead') {
      log.warn({ err, code: errorCode(err), reason: decision.reason, attempts: decision.attempts }, 'handler failed; dead-lettering');
      return { ...dead(delivery, routes, decision.reason, decision.attempts, failure, now(), requestId), hold };
    }
    const exchange = routes.retry.exchange;
    if (exchange === undefined) return dead(delivery, routes, 'max-attempts', decision.failures, failure, now(), requestId);
    log.warn({ err, code: errorCode(err), tier: decision.tier.tier, delayMs: decision.tier.delayMs }, 'handler failed; retrying later');
    const retryHeaders = buildRetryHeaders(headers, { failures: decision.failures, failure, originQueue: routes.queue });
    return { envelope: copyEnvelope(msg, { exchange, routingKey: decision.tier.routingKey }, retryHeaders, requestId), outcome: 'retried', hold };
  }
}

function aborted(signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) resolve();
    else signal.addEventListener('abort', () => resolve(), { once: true });
  });
}

function dead(
  delivery: Delivery,
  routes: WorkerRoutes,
  reason: 'malformed' | 'permanent' | 'max-attempts',
  attempts: number,
  failure: FailureInfo,
  deadAt: Date,
  /** The id a copy gets when the message has no messageId of its own (a raw body). */
  requestId: string | undefined,
): Replacement {
  const msg = delivery.message;
  const headers = buildDeadLetterHeaders(msg.properties.headers, { reason, attempts, failure, originQueue: routes.queue, deadAt });
  // A malformed message is dead-lettered like any other, and counted apart.
  return { envelope: copyEnvelope(msg, routes.deadLetter, headers, requestId), outcome: reason === 'malformed' ? 'malformed' : 'dead' };
}

/**
 * A Logger whose child is made only when a line at an enabled level is written or the child
 * itself is asked for (the handler's context). Level checks go to the parent, which has the same
 * level.
 */
function lazyLogger(make: () => Logger, parent: Logger): Logger {
  return new Proxy(parent, {
    get(target, prop) {
      if (prop === 'isLevelEnabled' || prop === 'level' || prop === 'levelVal') return Reflect.get(target, prop, target);
      if (typeof prop === 'string' && prop in LEVELS && !target.isLevelEnabled(prop)) return noop;
      const real = make();
      const v = Reflect.get(real, prop, real);
      return typeof v === 'function' ? v.bind(real) : v;
    },
  });
}

/**
 * What every line about a message carries: its requestId (the same as in the API's lines),
 * messageId, attempt, and the trace id of its traceparent (the queue comes from the parent).
 */
function logFields(msg: Delivery['message'], attempt: number): Record<string, unknown> {
  const fields: Record<string, unknown> = { requestId: requestIdOf(msg), attempt };
  const { messageId } = msg.properties;
  if (typeof messageId === 'string') fields.messageId = messageId;
  const traceId = traceIdOf(stringHeader(msg.properties.headers, HEADERS.traceparent));
  if (traceId) fields.traceId = traceId;
  return fields;
}

const LEVELS = { trace: 10, debug: 20, info: 30, warn: 40, error: 50, fatal: 60 };
const noop = () => undefined;
