/**
 * Warren's public face: what a team imports to run its own jobs on RabbitMQ. Small on purpose;
 * the internals (header builders, IPC messages, the demo processor) stay behind it.
 */
export { PermanentError, RetryableError, TimeoutError, WarrenError } from './core/index.ts';
export { defineWorker, type WorkerOptions } from './worker/index.ts';
