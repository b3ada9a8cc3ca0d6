// test-timeout-ms: 60000
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { context, propagation, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { BasicTracerProvider, InMemorySpanExporter, type ReadableSpan, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { pino } from 'pino';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ApiServer, readApiConfig } from '../../api/index.ts';
import { RetryableError } from '../../core/index.ts';
import { applyTopology, DEFAULT_REQUESTS_QUEUE, loadCompiledTopology } from '../../topology/index.ts';
import { defineWorker, type Worker } from '../../worker/index.ts';
import { createTestVhost, type TestVhost, waitFor, within } from '../helpers/broker.ts';

/**
 * With an OpenTelemetry SDK registered (as an application would), the API records a producer
 * span per publish, child of the caller's traceparent, and the worker a consumer span per
 * delivery, child of the producer span, with the handler's own spans inside it; a retry is a
 * second consumer span of the same trace.
 */
const exporter = new InMemorySpanExporter();
trace.setGlobalTracerProvider(new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] }));
propagation.setGlobalPropagator(new W3CTraceContextPropagator());
context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());

// One logger for the API and the worker, its JSON lines kept to check what they carry.
const lines: Array<Record<string, unknown>> = [];
const logger = pino(
  { level: 'info' },
  new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const l of chunk.toString().split('\n')) if (l) lines.push(JSON.parse(l) as Record<string, unknown>);
      done();
    },
  }),
);
const compiled = loadCompiledTopology();
const appTracer = trace.getTracer('the-application');

let vhost: TestVhost;
let dir: string;
let api: ApiServer;
let base: string;
let worker: Worker;
const failedOnce = new Set<string>();

test.before(async () => {
  vhost = await within(15_000, 'create vhost', createTestVhost('tracing'));
  await within(15_000, 'apply topology', applyTopology({ amqpUrl: vhost.url, compiled }));
  dir = mkdtempSync(join(tmpdir(), 'warren-tracing-'));
  api = new ApiServer({ config: readApiConfig({ AMQP_URL: vhost.url, PORT: '0', DATA_DIR: dir }), logger });
  base = `http://127.0.0.1:${(await within(30_000, 'api start', api.start())).port}`;
  worker = defineWorker({
    handler: async (data, ctx) => {
      // The application's own span: it must land inside Warren's consumer span.
      const span = appTracer.startSpan('handler work');
      span.end();
      if (data === 'flaky' && !failedOnce.has(ctx.requestId)) {
        failedOnce.add(ctx.requestId);
        throw new RetryableError('first attempt fails');
      }
      return 'ok';
    },
    urls: [vhost.url],
    topology: compiled,
    logger,
  });
  await within(15_000, 'worker start', worker.start());
});

test.after(async () => {
  await worker?.stop(2000);
  await api?.stop();
  await vhost?.cleanup();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function post(data: unknown, headers: Record<string, string> = {}): Promise<string> {
  const res = await fetch(`${base}/api/v1/processData`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify({ data }),
  });
  assert.is(res.status, 202);
  const { requestId } = (await res.json()) as { requestId: string };
  await waitFor(
    `${requestId} done`,
    async () => {
      const r = (await (await fetch(`${base}/api/v1/requests/${requestId}`)).json()) as { status: string };
      return r.status === 'done' ? true : undefined;
    },
    20_000,
    100,
  );
  return requestId;
}

const spansOf = (requestId: string) => exporter.getFinishedSpans().filter((s) => s.attributes['messaging.message.id'] === requestId);
const parentOf = (s: ReadableSpan) => s.parentSpanContext?.spanId;

test('the caller trace flows: HTTP traceparent -> producer span -> consumer span -> handler span', async () => {
  const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
  const callerSpan = '00f067aa0ba902b7';
  const requestId = await post('hello', { traceparent: `00-${traceId}-${callerSpan}-01` });
  const spans = spansOf(requestId);
  const producer = spans.find((s) => s.kind === SpanKind.PRODUCER);
  const consumer = spans.find((s) => s.kind === SpanKind.CONSUMER);
  assert.ok(producer && consumer, `spans: ${spans.map((s) => s.name).join(', ')}`);
  assert.is(producer.name, 'publish processing');
  assert.is(producer.spanContext().traceId, traceId);
  assert.is(parentOf(producer), callerSpan);
  assert.is(producer.attributes['messaging.system'], 'rabbitmq');
  assert.is(consumer.name, `process ${DEFAULT_REQUESTS_QUEUE}`);
  assert.is(consumer.spanContext().traceId, traceId);
  assert.is(parentOf(consumer), producer.spanContext().spanId, 'the message carried the producer span');
  assert.is(consumer.attributes['warren.outcome'], 'done');
  assert.is(consumer.attributes['warren.attempt'], 1);
  const handler = exporter.getFinishedSpans().find((s) => s.name === 'handler work' && parentOf(s) === consumer.spanContext().spanId);
  assert.ok(handler, 'the handler ran inside the consumer span');
  assert.is(handler.spanContext().traceId, traceId);

  // The API's line and the worker's outcome line name the same request, and the same trace.
  const accepted = lines.find((l) => l.msg === 'request accepted' && l.requestId === requestId);
  assert.ok(accepted, 'the API logged the accepted request');
  assert.is(accepted.queue, DEFAULT_REQUESTS_QUEUE);
  assert.is(accepted.messageId, requestId);
  assert.is(accepted.traceId, traceId);
  const processed = lines.find((l) => l.msg === 'message processed' && l.requestId === requestId);
  assert.ok(processed, 'the worker logged the outcome');
  assert.equal(
    { queue: processed.queue, messageId: processed.messageId, attempt: processed.attempt, traceId: processed.traceId },
    { queue: DEFAULT_REQUESTS_QUEUE, messageId: requestId, attempt: 1, traceId },
  );
  assert.not.match(JSON.stringify(lines), /hello/, 'message bodies never reach the log');
});

test('a retry is a second consumer span of the same trace, the first marked failed', async () => {
  const requestId = await post('flaky');
  const spans = spansOf(requestId);
  const producer = spans.find((s) => s.kind === SpanKind.PRODUCER);
  const consumers = spans
    .filter((s) => s.kind === SpanKind.CONSUMER)
    .sort((a, b) => Number(a.attributes['warren.attempt']) - Number(b.attributes['warren.attempt']));
  assert.ok(producer, 'a producer span without a caller trace');
  assert.is(parentOf(producer), undefined, 'no traceparent from the caller: a new trace');
  assert.is(consumers.length, 2);
  const [first, second] = consumers as [ReadableSpan, ReadableSpan];
  assert.is(first.attributes['warren.outcome'], 'retried');
  assert.is(first.status.code, SpanStatusCode.ERROR);
  assert.is(second.attributes['warren.outcome'], 'done');
  assert.is(second.attributes['warren.attempt'], 2);
  for (const c of consumers) {
    assert.is(c.spanContext().traceId, producer.spanContext().traceId);
    assert.is(parentOf(c), producer.spanContext().spanId);
  }
});

test.run();
