import { z } from 'zod';
import { ConfigError } from './errors.ts';

/**
 * Parses a set of environment variables with zod once and returns a frozen object. Errors name
 * the variable and what was expected.
 */
export function readEnv<S extends z.ZodRawShape>(shape: S, env: NodeJS.ProcessEnv = process.env): Readonly<z.infer<z.ZodObject<S>>> {
  // An empty variable counts as unset (`FOO= cmd` is how shells unset for one command).
  const present = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== ''));
  const result = z.object(shape).safeParse(present);
  if (!result.success) {
    const issue = result.error.issues[0];
    const variable = String(issue?.path[0] ?? '(env)');
    // The value is never echoed: a malformed DATABASE_URL holds a password, a short ADMIN_TOKEN
    // is the token itself, and config errors end up in logs and CI output.
    throw new ConfigError(variable, issue?.message ?? 'invalid');
  }
  return Object.freeze(result.data);
}

/** A positive integer from a string variable, with a default. */
export function intVar(def: number, min = 0, max = Number.MAX_SAFE_INTEGER) {
  return z
    .string()
    .optional()
    .transform((v, ctx) => {
      if (v === undefined || v === '') return def;
      const n = Number(v);
      if (!Number.isInteger(n) || n < min || n > max) {
        ctx.addIssue({ code: 'custom', message: `expected an integer from ${min} to ${max}` });
        return z.NEVER;
      }
      return n;
    });
}

/** A number (not only integers) from a string variable, with a default and a range. */
export function numberVar(def: number, min: number, max: number) {
  return z
    .string()
    .optional()
    .transform((v, ctx) => {
      if (v === undefined || v === '') return def;
      const n = Number(v);
      if (!Number.isFinite(n) || n < min || n > max) {
        ctx.addIssue({ code: 'custom', message: `expected a number from ${min} to ${max}` });
        return z.NEVER;
      }
      return n;
    });
}

export const DEFAULT_AMQP_URL = 'amqp://guest:guest@127.0.0.1:5672';

/** `AMQP_URL`: one URL or a comma-separated list (a cluster). */
export function amqpUrlsVar() {
  return z
    .string()
    .optional()
    .transform((v, ctx) => {
      const urls = (v && v.trim() !== '' ? v : DEFAULT_AMQP_URL)
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean);
      for (const u of urls) {
        if (!/^amqps?:\/\//.test(u)) {
          ctx.addIssue({ code: 'custom', message: 'expected amqp:// or amqps:// URLs, comma-separated' });
          return z.NEVER;
        }
      }
      return urls;
    });
}

/**
 * `AMQP_MANAGEMENT_URL`: the base URL of the RabbitMQ management API (http or https), trimmed;
 * unset or empty: derived from AMQP_URL (see ManagementClient).
 */
export const managementUrlVar = () =>
  z
    .string()
    .optional()
    .transform((v) => (v === undefined || v.trim() === '' ? undefined : v.trim()))
    .refine((v) => v === undefined || /^https?:\/\//.test(v), 'expected an http:// or https:// URL of the management API');

export const logLevelVar = () => z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info');

const DURATION_UNITS = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;

/** "500ms", "30s", "10m", "24h", "7d", or a plain number of milliseconds. */
export function parseDurationMs(v: string): number | undefined {
  const m = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?$/.exec(v.trim());
  if (!m) return undefined;
  return Math.round(Number(m[1]) * DURATION_UNITS[(m[2] ?? 'ms') as keyof typeof DURATION_UNITS]);
}

const humanMs = (ms: number) =>
  ms % 86_400_000 === 0 ? `${ms / 86_400_000}d` : ms % 3_600_000 === 0 ? `${ms / 3_600_000}h` : ms % 60_000 === 0 ? `${ms / 60_000}m` : `${ms}ms`;

/** A duration variable with a default and a range; `zero` also accepts 0 (meaning "off"). */
export function durationVar(defMs: number, minMs: number, maxMs: number, options: { zero?: boolean } = {}) {
  return z
    .string()
    .optional()
    .transform((v, ctx) => {
      if (v === undefined || v.trim() === '') return defMs;
      const ms = parseDurationMs(v);
      if (ms === undefined || ((ms < minMs || ms > maxMs) && !(options.zero && ms === 0))) {
        ctx.addIssue({
          code: 'custom',
          message: `expected a duration such as 30s, 10m, 24h or 7d, from ${humanMs(minMs)} to ${humanMs(maxMs)}${options.zero ? ', or 0 to turn it off' : ''}`,
        });
        return z.NEVER;
      }
      return ms;
    });
}

/** How long the API's store keeps ended requests and idempotency keys (api/store StoreRetention). */
export interface RetentionSettings {
  requestsMs: number;
  idempotencyKeysMs: number;
  sweepIntervalMs: number;
}

export const DEFAULT_RETENTION: Readonly<RetentionSettings> = Object.freeze({
  requestsMs: 7 * 86_400_000,
  idempotencyKeysMs: 86_400_000,
  sweepIntervalMs: 10 * 60_000,
});

/**
 * The store's retention variables, to spread into a readEnv shape: REQUEST_RETENTION (done and
 * dead rows, 0 keeps them), IDEMPOTENCY_KEY_TTL (a key's window from its first use),
 * STORE_SWEEP_INTERVAL (0: this process never sweeps).
 */
export const retentionVars = () => ({
  REQUEST_RETENTION: durationVar(DEFAULT_RETENTION.requestsMs, 60_000, 3650 * 86_400_000, { zero: true }),
  IDEMPOTENCY_KEY_TTL: durationVar(DEFAULT_RETENTION.idempotencyKeysMs, 60_000, 365 * 86_400_000),
  STORE_SWEEP_INTERVAL: durationVar(DEFAULT_RETENTION.sweepIntervalMs, 1000, 86_400_000, { zero: true }),
});

export function retentionOf(e: { REQUEST_RETENTION: number; IDEMPOTENCY_KEY_TTL: number; STORE_SWEEP_INTERVAL: number }): RetentionSettings {
  return Object.freeze({ requestsMs: e.REQUEST_RETENTION, idempotencyKeysMs: e.IDEMPOTENCY_KEY_TTL, sweepIntervalMs: e.STORE_SWEEP_INTERVAL });
}
