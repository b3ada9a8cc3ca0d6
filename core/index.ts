export * from './broker.ts';
export * from './env.ts';
export * from './errors.ts';
export * from './local-node.ts';
export * from './logger.ts';
export * from './management.ts';
export * from './message.ts';
export * from './metrics.ts';
