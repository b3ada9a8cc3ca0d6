import { type Context, context, propagation, ROOT_CONTEXT, type Span, SpanKind, SpanStatusCode, type TextMapGetter, trace } from '@opentelemetry/api';
import { HEADERS, stringHeader } from './message.ts';

/**
 * OpenTelemetry spans through @opentelemetry/api. Without an SDK registered by the application
 * every call here is a no-op (non-recording spans), and the W3C `traceparent` header still
 * travels as received: HTTP request -> request message -> retries and dead letters -> result.
 * With an SDK (e.g. @opentelemetry/sdk-node), the API records a producer span per publish and
 * the worker a consumer span per delivery, with the handler running inside it, and the message
 * carries the producer span's context.
 */

const TRACER_NAME = 'warren';
/** A proxy tracer: it follows whatever provider the application registers, even later. */
const tracer = trace.getTracer(TRACER_NAME);

/** Reads AMQP header values, which amqplib may hand over as Buffers. */
const amqpGetter: TextMapGetter<Record<string, unknown>> = {
  keys: (carrier) => Object.keys(carrier),
  get: (carrier, key) => stringHeader(carrier, key),
};

/** The context a message's headers carry (the trace it belongs to), under `base`. */
export function contextFromHeaders(headers: Record<string, unknown> | undefined, base: Context = ROOT_CONTEXT): Context {
  return headers ? propagation.extract(base, headers, amqpGetter) : base;
}

export interface ProducerSpan {
  /** Headers to publish with: the span's context when recording, else the given trace headers. */
  headers: Record<string, string | number>;
  end(error?: Error): void;
}

/**
 * A producer span for publishing to `exchange`, child of the active span (an HTTP server span
 * of the application's instrumentation) or else of the trace context in `traceHeaders`.
 */
export function startProducerSpan(
  exchange: string,
  routingKey: string,
  messageId: string,
  traceHeaders: Record<string, string> | undefined,
): ProducerSpan | undefined {
  const active = context.active();
  const parent = trace.getSpan(active) ? active : contextFromHeaders(traceHeaders, active);
  const span = startMessagingSpan('publish', exchange, SpanKind.PRODUCER, parent);
  if (!span) return undefined;
  span.setAttributes({ 'messaging.rabbitmq.destination.routing_key': routingKey, 'messaging.message.id': messageId });
  const headers: Record<string, string> = {};
  propagation.inject(trace.setSpan(parent, span), headers);
  // A propagator that writes nothing (none registered): keep the caller's trace headers.
  if (!headers[HEADERS.traceparent]) Object.assign(headers, traceHeaders);
  return { headers, end: (error) => endSpan(span, error) };
}

export interface ConsumerSpan {
  /** Runs `fn` with the span active, so spans the handler starts are its children. */
  run<T>(fn: () => T): T;
  setAttribute(key: string, value: string | number | boolean): void;
  /** Marks the span failed with the handler's error (a retry or a dead letter follows). */
  fail(error: unknown): void;
  end(): void;
}

/**
 * A consumer span for one delivery from `queue`, child of the trace context its headers carry.
 * Undefined when no SDK records spans (nothing to do per message then).
 */
export function startConsumerSpan(
  queue: string,
  message: { messageId: string | undefined; headers: Record<string, unknown> | undefined; redelivered: boolean; attempt: number },
): ConsumerSpan | undefined {
  const parent = contextFromHeaders(message.headers);
  const span = startMessagingSpan('process', queue, SpanKind.CONSUMER, parent);
  if (!span) return undefined;
  span.setAttributes({
    ...(message.messageId ? { 'messaging.message.id': message.messageId } : {}),
    'warren.attempt': message.attempt,
    'warren.redelivered': message.redelivered,
  });
  const active = trace.setSpan(parent, span);
  return {
    run: (fn) => context.with(active, fn),
    setAttribute: (key, value) => {
      span.setAttribute(key, value);
    },
    fail: (error) => failSpan(span, error),
    end: () => span.end(),
  };
}

/**
 * A span named `<operation> <destination>` with the messaging attributes every Warren span has;
 * undefined when nothing records it (no SDK), so that nothing more is built per message.
 */
function startMessagingSpan(operation: 'publish' | 'process', destination: string, kind: SpanKind, parent: Context): Span | undefined {
  const span = tracer.startSpan(`${operation} ${destination}`, { kind }, parent);
  if (!span.isRecording()) return undefined;
  span.setAttributes({ 'messaging.system': 'rabbitmq', 'messaging.operation.type': operation, 'messaging.destination.name': destination });
  return span;
}

function endSpan(span: Span, error: unknown): void {
  if (error !== undefined) failSpan(span, error);
  span.end();
}

function failSpan(span: Span, error: unknown): void {
  const err = error instanceof Error ? error : new Error(String(error));
  span.recordException(err);
  span.setStatus({ code: SpanStatusCode.ERROR, message: err.message });
}

/** The trace id of a W3C traceparent (version-traceid-spanid-flags). */
export function traceIdOf(traceparent: string | undefined): string | undefined {
  if (traceparent === undefined) return undefined;
  const m = /^[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}/.exec(traceparent);
  return m?.[1];
}
