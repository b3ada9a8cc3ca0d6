import type { Message } from 'amqplib';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ConfigError, decodeResult, PermanentError } from '../../core/index.ts';
import { compileTopology, parseTopology } from '../../topology/index.ts';
import { copyProperties, readDemoConfig, readWorkerConfig, resolveWorkerRoutes, resultEnvelope } from '../../worker/index.ts';

test('a result carries requestId as messageId and correlationId, persistent, trace context only', () => {
  const e = resultEnvelope(
    { exchange: 'processing', routingKey: 'result' },
    {
      requestId: 'r-1',
      result: 'x-processed',
      attempts: 3,
      processedAt: new Date('2030-01-01T00:00:00Z'),
      requestHeaders: { traceparent: 'tp', 'x-warren-attempt': 2 },
      acceptedAt: 1893456000000,
    },
  );
  assert.is(e.exchange, 'processing');
  assert.is(e.routingKey, 'result');
  assert.is(e.options.messageId, 'r-1');
  assert.is(e.options.correlationId, 'r-1');
  assert.is(e.options.persistent, true);
  assert.is(e.options.mandatory, true, 'an unroutable result comes back instead of passing for delivered');
  assert.is(e.options.contentType, 'application/json');
  assert.equal(e.options.headers, { traceparent: 'tp' }, 'trace context carried; attempt not');
  assert.equal(decodeResult(e.content), {
    requestId: 'r-1',
    result: 'x-processed',
    attempts: 3,
    processedAt: '2030-01-01T00:00:00.000Z',
    acceptedAt: 1893456000000,
  });
});

test('an undefined result is sent as null; an unencodable one is a permanent failure', () => {
  const route = { exchange: 'e', routingKey: 'k' };
  const base = { requestId: 'r', attempts: 1, processedAt: new Date(), requestHeaders: undefined };
  assert.is(JSON.parse(resultEnvelope(route, { ...base, result: undefined }).content.toString()).result, null);
  assert.throws(
    () => resultEnvelope(route, { ...base, result: 10n }),
    (err: unknown) => err instanceof PermanentError && err.code === 'RESULT_NOT_SERIALIZABLE',
  );
});

test('copies keep the identifying properties and drop userId and expiration', () => {
  const props = {
    messageId: 'm',
    correlationId: 'c',
    contentType: 'application/json',
    contentEncoding: undefined,
    headers: { a: 1 },
    deliveryMode: 1,
    priority: undefined,
    replyTo: undefined,
    expiration: '60000',
    timestamp: 123,
    type: 't',
    userId: 'guest',
    appId: 'api',
    clusterId: undefined,
  } satisfies Message['properties'];
  const o = copyProperties(props, { b: 2 });
  assert.equal(o, {
    persistent: true,
    headers: { b: 2 },
    messageId: 'm',
    correlationId: 'c',
    contentType: 'application/json',
    type: 't',
    appId: 'api',
    timestamp: 123,
  });
});

const compiled = compileTopology(
  parseTopology([
    {
      file: 't.yaml',
      text: `
exchanges: { processing: { type: direct } }
queues:
  processing.requests:
    bind: { exchange: processing, routingKey: request }
    retry: { delays: [1s], maxAttempts: 2 }
    deadLetter: true
  processing.results:
    bind: { exchange: processing, routingKey: result }
  nodead:
    bind: { exchange: processing, routingKey: nodead }
`,
    },
  ]),
);

test('worker routes come from the topology; a queue without dead-letter is refused', () => {
  const r = resolveWorkerRoutes(compiled, 'processing.requests');
  assert.equal(r.result, { exchange: 'processing', routingKey: 'result' });
  assert.is(r.deadLetter.exchange, 'processing.requests.dlx');
  assert.is(r.deadLetter.queue, 'processing.requests.dead');
  assert.is(r.retry.maxAttempts, 2);
  assert.throws(() => resolveWorkerRoutes(compiled, 'nodead'), /no deadLetter/);
  assert.throws(() => resolveWorkerRoutes(compiled, 'missing'), /not in the topology/);
  assert.throws(() => resolveWorkerRoutes(compiled, 'processing.requests', { queue: 'nope' }), /results queue "nope"/);
});

test('worker config: defaults, and errors that name the variable', () => {
  const c = readWorkerConfig({});
  assert.is(c.queue, 'processing.requests');
  assert.is(c.concurrency, 4);
  assert.is(c.timeoutMs, 30_000);
  assert.is(c.shutdownGraceMs, 10_000);
  assert.is(c.replica, undefined);
  assert.equal(readWorkerConfig({ AMQP_URL: 'amqp://a:5672, amqps://b:5671' }).amqpUrls, ['amqp://a:5672', 'amqps://b:5671']);
  assert.throws(
    () => readWorkerConfig({ WORKER_CONCURRENCY: '0' }),
    (e: unknown) => e instanceof ConfigError && e.variable === 'WORKER_CONCURRENCY',
  );
  assert.throws(
    () => readWorkerConfig({ AMQP_URL: 'http://x' }),
    (e: unknown) => e instanceof ConfigError && e.variable === 'AMQP_URL',
  );
  assert.throws(
    () => readDemoConfig({ DEMO_FAIL_RATE: '2' }),
    (e: unknown) => e instanceof ConfigError && e.variable === 'DEMO_FAIL_RATE',
  );
  assert.equal(readDemoConfig({ DEMO_DELAY_MS: '0' }), { delayMs: 0, failRate: 0, hooks: false });
  assert.is(readDemoConfig({ DEMO_HOOKS: '1' }).hooks, true);
  assert.throws(
    () => readDemoConfig({ DEMO_HOOKS: 'yes' }),
    (e: unknown) => e instanceof ConfigError && e.variable === 'DEMO_HOOKS',
  );
});

test.run();
