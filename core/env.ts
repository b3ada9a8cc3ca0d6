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
