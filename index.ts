/**
 * Warren's public face: what a team imports to run its own jobs on RabbitMQ. Small on purpose;
 * the internals (header builders, IPC messages, the demo processor) stay behind it.
 *
 *   // jobs/thumbnails.ts: run with `npx warren worker --handler ./dist/jobs`
 *   export default defineJob({ queue: 'thumbnails', handler: async (data, ctx) => makeThumbnail(data) });
 *
 *   // your server: enqueue with confirm
 *   const producer = await createProducer({ urls: ['amqp://localhost'], topology: './topology' });
 *   const requestId = await producer.enqueue('thumbnails', { url });
 */
export {
  decodeResult,
  decodeResults,
  PermanentError,
  RESULTS_BATCH_CONTENT_TYPE,
  RESULTS_BATCH_HEADER,
  type ResultMessage,
  RetryableError,
  resultCountOf,
  type StandardSchemaV1,
  TimeoutError,
  WarrenError,
} from './core/index.ts';
export {
  type CreateProducerOptions,
  createProducer,
  EnqueueError,
  type EnqueueErrorCode,
  type EnqueueOptions,
  JobValidationError,
  type Producer,
  ProducerStartError,
} from './producer/index.ts';
export { type CompiledTopology, loadCompiledTopology } from './topology/index.ts';
export {
  defineJob,
  defineWorker,
  type Handler,
  type HandlerContext,
  handleShutdownSignals,
  type JobDefinition,
  type JobEnvelope,
  type JobOptions,
  MissingTopologyError,
  type StopSummary,
  serveMetrics,
  type Worker,
  type WorkerOptions,
} from './worker/index.ts';
