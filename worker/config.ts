import { z } from 'zod';
import { amqpUrlsVar, intVar, logLevelVar, managementUrlVar, numberVar, readEnv } from '../core/index.ts';
import { DEFAULT_REQUESTS_QUEUE } from '../topology/index.ts';
import { DEFAULT_RESULT_BATCH } from './result-batcher.ts';

/**
 * The worker entry point's environment, read and validated once. Errors name the variable
 * (core's readEnv throws a ConfigError), so a typo in a deployment fails at startup with a
 * message a human can act on, not at the first message.
 */
export interface WorkerConfig {
  /** Broker URLs, tried in turn (a cluster). */
  amqpUrls: readonly string[];
  /** Topology file or folder; undefined means the shipped topology. */
  topology: string | undefined;
  queue: string;
  concurrency: number;
  timeoutMs: number;
  shutdownGraceMs: number;
  /** WORKER_RESULT_BATCH: results per message at most (worker/result-batcher.ts). */
  resultBatch: number;
  logLevel: string;
  /** Port of GET /metrics (the supervisor's, summing its replicas, with --replicas N); undefined: off. */
  metricsPort: number | undefined;
  /** The management API, for the queue depth gauges (default: derived from AMQP_URL). */
  managementUrl: string | undefined;
  /** Set by the supervisor on the replicas it starts (internal): the replica's index. */
  replica: number | undefined;
}

/** Default port of a worker's (or a supervisor's) GET /metrics: the OpenTelemetry exporter's usual port. */
export const DEFAULT_WORKER_METRICS_PORT = 9464;

const metricsPortVar = () =>
  z
    .string()
    .optional()
    .transform((v, ctx) => {
      const t = v?.trim() ?? '';
      if (t === '') return DEFAULT_WORKER_METRICS_PORT;
      if (t === 'off') return undefined;
      const n = Number(t);
      if (!/^\d+$/.test(t) || n > 65535) {
        ctx.addIssue({ code: 'custom', message: 'expected a port from 0 to 65535 (0: any free port), or "off"' });
        return z.NEVER;
      }
      return n;
    });

/** The supervisor marks the replicas it starts with this variable (internal, not for users). */
export const REPLICA_ENV = 'WARREN_REPLICA';

const MAX_MS = 24 * 60 * 60 * 1000;

export function readWorkerConfig(env: NodeJS.ProcessEnv): Readonly<WorkerConfig> {
  const raw = readEnv(
    {
      AMQP_URL: amqpUrlsVar(),
      TOPOLOGY: z.string().optional(),
      WORKER_QUEUE: z.string().optional(),
      WORKER_CONCURRENCY: intVar(4, 1, 10_000),
      WORKER_TIMEOUT_MS: intVar(30_000, 1, MAX_MS),
      WORKER_SHUTDOWN_GRACE_MS: intVar(10_000, 0, MAX_MS),
      WORKER_RESULT_BATCH: intVar(DEFAULT_RESULT_BATCH, 1, 10_000),
      LOG_LEVEL: logLevelVar(),
      WORKER_METRICS_PORT: metricsPortVar(),
      AMQP_MANAGEMENT_URL: managementUrlVar(),
      [REPLICA_ENV]: z.string().regex(/^\d+$/, 'expected a replica index (set by the supervisor, not by hand)').optional(),
    },
    env,
  );
  const replica = raw[REPLICA_ENV];
  return Object.freeze({
    amqpUrls: raw.AMQP_URL,
    topology: raw.TOPOLOGY === '' ? undefined : raw.TOPOLOGY,
    queue: raw.WORKER_QUEUE || DEFAULT_REQUESTS_QUEUE,
    concurrency: raw.WORKER_CONCURRENCY,
    timeoutMs: raw.WORKER_TIMEOUT_MS,
    shutdownGraceMs: raw.WORKER_SHUTDOWN_GRACE_MS,
    resultBatch: raw.WORKER_RESULT_BATCH,
    logLevel: raw.LOG_LEVEL,
    metricsPort: raw.WORKER_METRICS_PORT,
    managementUrl: raw.AMQP_MANAGEMENT_URL,
    replica: replica === undefined ? undefined : Number(replica),
  });
}

/** The demo processor's knobs (the tutorial's ProcessorService). */
export interface DemoConfig {
  /** Simulated work per message; tests use 0. */
  delayMs: number;
  /** Probability (0 to 1) of a transient failure per attempt. */
  failRate: number;
  /** The test hooks (`crash:` exits the process, `fail:` always fails): DEMO_HOOKS=1 only. */
  hooks: boolean;
}

export function readDemoConfig(env: NodeJS.ProcessEnv): Readonly<DemoConfig> {
  const raw = readEnv(
    {
      DEMO_DELAY_MS: intVar(5000, 0, MAX_MS),
      DEMO_FAIL_RATE: numberVar(0, 0, 1),
      DEMO_HOOKS: z.enum(['0', '1', '']).optional(),
    },
    env,
  );
  return Object.freeze({ delayMs: raw.DEMO_DELAY_MS, failRate: raw.DEMO_FAIL_RATE, hooks: raw.DEMO_HOOKS === '1' });
}
