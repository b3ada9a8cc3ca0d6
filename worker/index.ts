/**
 * Warren's worker runtime: the public face of worker/. Define a worker with a handler, start it,
 * stop it on a signal:
 *
 *   const worker = defineWorker({ jobs: [defineJob({ queue, handler })], urls, topology: loadCompiledTopology(path), logger });
 *   handleShutdownSignals({ logger, stop: () => worker.stop(), force: () => process.exit(1) });
 *   await worker.start();
 */
export { PermanentError, RetryableError, serveMetrics, TimeoutError } from '../core/index.ts';
export { checkTopology, MissingTopologyError, type TopologyNeeds } from './check-topology.ts';
export { DEFAULT_WORKER_METRICS_PORT, type DemoConfig, REPLICA_ENV, readDemoConfig, readWorkerConfig, type WorkerConfig } from './config.ts';
export { type Decoded, type Decoder, decoderFor, rawRequestId } from './decode.ts';
export { defineJob, isJobDefinition, type JobDefinition, type JobEnvelope, type JobOptions } from './define-job.ts';
export { defineWorker, type WorkerOptions, type WorkerSettings } from './define-worker.ts';
export { createDemoProcessor, DEMO_CRASH_EXIT_CODE, type DemoProcessorOptions } from './demo-processor.ts';
export { copyProperties, type Envelope, type Route, resultEnvelope } from './envelopes.ts';
export {
  buildDeadLetterHeaders,
  buildRetryHeaders,
  type DeadLetterHeaderInput,
  describeFailure,
  type FailureInfo,
  type HistoryEntry,
  LIMITS,
  type RetryHeaderInput,
  readHistory,
} from './failure-headers.ts';
export { type Handler, HandlerAbandonedError, type HandlerContext } from './handler.ts';
export { WorkerMetrics } from './metrics.ts';
export { decideFailure, type FailureDecision, type RetryPolicy, retryPolicyOf, tierFor } from './retry-policy.ts';
export { type ResultTarget, resolveJobRoutes, resolveWorkerRoutes, topologyNeeds, type WorkerRoutes } from './routes.ts';
export { handleShutdownSignals, type ShutdownSignalOptions } from './shutdown-signals.ts';
export {
  answerMetricsRequests,
  FATAL_EXIT_CODE,
  METRICS_REPLY_MESSAGE,
  METRICS_REQUEST_MESSAGE,
  REPLICA_SETTLED_MESSAGE,
  Supervisor,
  type SupervisorOptions,
} from './supervisor.ts';
export { BrokerRefusedError, type OutcomeCounts, type StopSummary, Worker, type WorkerJob, WorkerStoppedError } from './worker.ts';
