export * from './admin-routes.ts';
export * from './dead-letter.ts';
export * from './dead-letter-queue.ts';
export * from './errors.ts';
export * from './export-token.ts';
export * from './fingerprint.ts';
export * from './stats.ts';
