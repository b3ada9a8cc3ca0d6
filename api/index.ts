/** The API's public face: the process (ApiServer), its HTTP app, its parts and the store. */

export * from './admin/index.ts';
export { QueueConsumer, type QueueConsumerOptions } from './broker/queue-consumer.ts';
export { type ApiConfig, databaseSchemaVar, databaseUrlVar, MAX_PUBLISH_TIMEOUT_MS, parseByteSize, readApiConfig } from './config.ts';
export * from './dead-letters/index.ts';
export * from './errors.ts';
export { API_HEAP_FLAGS, API_NODE_OPTIONS, apiNodeOptions, tuneApiHeap } from './heap.ts';
export { type AppDeps, createApp } from './http/app.ts';
export { type Accepted, type AcceptOptions, RequestAcceptor, type RequestPublisher } from './http/request-acceptor.ts';
export { ACCEPT_PATH, API_PREFIX, JOBS_PATH, statusUrlOf } from './http/request-routes.ts';
export { type CheckResult, Readiness, type ReadinessProbe, type ReadinessReport } from './readiness.ts';
export { type DeadEventMessage, type DecodedDeadEvent, decodeDeadEvent } from './results/dead-event.ts';
export { createDeadEventHandler, createResultHandler } from './results/handlers.ts';
export { ApiServer, type ApiServerOptions } from './server.ts';
export { MIGRATIONS, type Migration, migrate } from './store/migrations.ts';
export { type OpenStoreOptions, openResultStore } from './store/open-store.ts';
export { openPgliteClient } from './store/pglite-client.ts';
export type * from './store/result-store.ts';
export type { SqlClient, SqlQueryable } from './store/sql-client.ts';
export { SqlResultStore } from './store/sql-store.ts';
