import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ConfigError, createLogger } from '../../core/index.ts';
import { loadCompiledTopology } from '../../topology/index.ts';
import { HANDLER_PREFETCH_FACTOR } from '../../worker/handler-slots.ts';
import { defineJob, defineWorker, type WorkerOptions } from '../../worker/index.ts';

// A job's prefetch: four times its concurrency unless the job or the worker sets its own, and
// never below the concurrency (handlers would wait for messages the broker holds back).
const topology = loadCompiledTopology();
const logger = createLogger({ name: 'test', level: 'silent' });
const handler = async () => 'ok';
const base: WorkerOptions = { urls: ['amqp://127.0.0.1'], topology, logger };
const prefetchOf = (options: Partial<WorkerOptions>) => defineWorker({ ...base, ...options }).settings.jobs.map((j) => j.prefetch);

test('by default a job prefetches HANDLER_PREFETCH_FACTOR times its concurrency', () => {
  assert.is(HANDLER_PREFETCH_FACTOR, 4);
  assert.equal(prefetchOf({ handler, concurrency: 50 }), [200]);
  assert.equal(prefetchOf({ jobs: [defineJob({ queue: 'process', handler, concurrency: 3 })] }), [12]);
});

test("a job's own prefetch wins over the worker's, and the worker's over the default", () => {
  assert.equal(prefetchOf({ handler, concurrency: 10, prefetch: 15 }), [15]);
  assert.equal(prefetchOf({ jobs: [defineJob({ queue: 'process', handler, concurrency: 2, prefetch: 2 })], prefetch: 30 }), [2]);
  assert.equal(prefetchOf({ jobs: [defineJob({ queue: 'process', handler, concurrency: 5 })], prefetch: 30 }), [30]);
});

test('a prefetch below the concurrency, or not a positive integer, is a ConfigError naming prefetch', () => {
  const refused = (f: () => unknown, pattern: RegExp) =>
    assert.throws(f, (err: unknown) => err instanceof ConfigError && err.variable === 'prefetch' && pattern.test(err.message));
  refused(() => defineJob({ queue: 'process', handler, concurrency: 8, prefetch: 4 }), /at least the job's concurrency, 8 \(got 4\)/);
  refused(() => defineJob({ queue: 'process', handler, prefetch: 0 }), /integer from 1/);
  refused(() => prefetchOf({ handler, concurrency: 8, prefetch: 4 }), /at least the concurrency of job "processing.requests", 8 \(got 4\)/);
  // The job's concurrency comes from the worker here: checked once both are known.
  refused(() => prefetchOf({ jobs: [defineJob({ queue: 'process', handler, prefetch: 3 })], concurrency: 4 }), /job "process", 4 \(got 3\)/);
  refused(() => prefetchOf({ handler, prefetch: 2.5 }), /integer from 1 to 65535/);
});

test.run();
