import { z } from 'zod';
import { amqpUrlsVar, intVar, logLevelVar, managementUrlVar, type RetentionSettings, readEnv, retentionOf, retentionVars } from '../core/index.ts';

/** The API's configuration: read from the environment once, validated, frozen. */
export interface ApiConfig {
  amqpUrls: readonly string[];
  /** A topology file or folder; undefined means the shipped topology. */
  topologyPath: string | undefined;
  port: number;
  /** PostgreSQL when set; else the embedded store in `dataDir`. */
  databaseUrl: string | undefined;
  databaseSchema: string;
  dataDir: string;
  bodyLimitBytes: number;
  publishTimeoutMs: number;
  maxInFlight: number;
  resultsPrefetch: number;
  logLevel: string;
  /** Bearer token of the admin routes (/api/v1/admin/...); the routes are off when unset. */
  adminToken: string | undefined;
  /** The management API, for the queue depth gauges of /metrics (default: derived from AMQP_URL). */
  managementUrl: string | undefined;
  /** How long ended requests and idempotency keys are kept, and how often the store sweeps. */
  retention: RetentionSettings;
}

/** Bounded to a few seconds: a client waiting on a 202 must get an answer, whatever the broker does. */
export const MAX_PUBLISH_TIMEOUT_MS = 10_000;
const MAX_BODY_LIMIT = 64 * 1024 * 1024;

const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,62}$/;

const optionalString = () =>
  z
    .string()
    .optional()
    .transform((v) => (v === undefined || v.trim() === '' ? undefined : v.trim()));

export const databaseUrlVar = () =>
  optionalString().refine((v) => v === undefined || /^postgres(ql)?:\/\//.test(v), 'expected a postgres:// or postgresql:// URL');

/** `DATABASE_SCHEMA`, as the API and `warren dlq` both accept it. */
export const databaseSchemaVar = () => optionalString().refine((v) => v === undefined || SCHEMA_NAME.test(v), 'expected a lower-case SQL identifier');

const bodyLimitVar = () =>
  z
    .string()
    .optional()
    .transform((v, ctx) => {
      if (v === undefined || v.trim() === '') return 1024 * 1024;
      const bytes = parseByteSize(v);
      if (bytes === undefined || bytes < 1 || bytes > MAX_BODY_LIMIT) {
        ctx.addIssue({ code: 'custom', message: 'expected a size such as 512kb or 1mb (1 byte to 64mb)' });
        return z.NEVER;
      }
      return bytes;
    });

/** "512", "512b", "100kb", "1.5mb" (1kb = 1024 bytes, as body-parser counts). */
export function parseByteSize(v: string): number | undefined {
  const m = /^(\d+(?:\.\d+)?)\s*(b|kb|mb|gb)?$/i.exec(v.trim());
  if (!m) return undefined;
  const unit = (m[2] ?? 'b').toLowerCase() as 'b' | 'kb' | 'mb' | 'gb';
  const factor = { b: 1, kb: 1024, mb: 1024 ** 2, gb: 1024 ** 3 }[unit];
  return Math.floor(Number(m[1]) * factor);
}

export function readApiConfig(env: NodeJS.ProcessEnv): Readonly<ApiConfig> {
  const e = readEnv(
    {
      AMQP_URL: amqpUrlsVar(),
      TOPOLOGY: optionalString(),
      PORT: intVar(3000, 0, 65535),
      DATABASE_URL: databaseUrlVar(),
      DATABASE_SCHEMA: databaseSchemaVar(),
      DATA_DIR: optionalString(),
      API_BODY_LIMIT: bodyLimitVar(),
      API_PUBLISH_TIMEOUT_MS: intVar(5000, 100, MAX_PUBLISH_TIMEOUT_MS),
      API_MAX_IN_FLIGHT: intVar(1000, 1, 100_000),
      API_RESULTS_PREFETCH: intVar(50, 1, 1000),
      LOG_LEVEL: logLevelVar(),
      AMQP_MANAGEMENT_URL: managementUrlVar(),
      ADMIN_TOKEN: optionalString().refine(
        (v) => v === undefined || v.length >= 16,
        'expected at least 16 characters (a guessable admin token is worse than none)',
      ),
      ...retentionVars(),
    },
    env,
  );
  return Object.freeze({
    amqpUrls: Object.freeze([...e.AMQP_URL]),
    topologyPath: e.TOPOLOGY,
    port: e.PORT,
    databaseUrl: e.DATABASE_URL,
    databaseSchema: e.DATABASE_SCHEMA ?? 'public',
    dataDir: e.DATA_DIR ?? '.warren',
    bodyLimitBytes: e.API_BODY_LIMIT,
    publishTimeoutMs: e.API_PUBLISH_TIMEOUT_MS,
    maxInFlight: e.API_MAX_IN_FLIGHT,
    resultsPrefetch: e.API_RESULTS_PREFETCH,
    logLevel: e.LOG_LEVEL,
    adminToken: e.ADMIN_TOKEN,
    managementUrl: e.AMQP_MANAGEMENT_URL,
    retention: retentionOf(e),
  });
}
