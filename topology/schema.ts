import { z } from 'zod';

/**
 * The schema of a topology file. Strict objects everywhere: an unknown key is an error, never
 * silently ignored (a typo such as `maxLenght` must not declare a queue without its limit).
 */

const NAME = /^[A-Za-z0-9_.:-]{1,200}$/;
const name = z.string().regex(NAME, 'expected a name of letters, digits, "_", ".", ":" or "-" (1 to 200)');

/** "500ms", "10s", "1m", "2h" or a number of milliseconds. */
export const durationSchema = z.unknown().transform((v, ctx) => {
  const ms = typeof v === 'number' || typeof v === 'string' ? parseDuration(v) : undefined;
  if (ms === undefined) {
    ctx.addIssue({ code: 'custom', message: `expected a duration such as 500ms, 10s, 1m or 2h (got ${JSON.stringify(v)})` });
    return z.NEVER;
  }
  return ms;
});

export function parseDuration(v: number | string): number | undefined {
  if (typeof v === 'number') return Number.isInteger(v) && v > 0 ? v : undefined;
  const m = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h)$/.exec(v.trim());
  if (!m) return undefined;
  const n = Number(m[1]);
  const factor = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[m[2] as 'ms' | 's' | 'm' | 'h'];
  const ms = Math.round(n * factor);
  return ms > 0 ? ms : undefined;
}

const exchangeSchema = z.strictObject({
  type: z.enum(['direct', 'topic', 'fanout', 'headers']),
  durable: z.boolean().default(true),
});

const bindSchema = z.strictObject({
  exchange: name,
  routingKey: z.string().default(''),
});

const retrySchema = z
  .strictObject({
    delays: z.array(durationSchema).min(1, 'expected at least one delay').max(20, 'expected at most 20 delays'),
    maxAttempts: z.number().int().min(1).max(1000),
  })
  .superRefine((r, ctx) => {
    if (r.maxAttempts < 2) {
      ctx.addIssue({ code: 'custom', path: ['maxAttempts'], message: 'expected at least 2 when retry delays are given (1 means no retry)' });
    }
  });

const deadLetterSchema = z.union([
  z.boolean(),
  z.strictObject({
    /** Also route every dead letter to a `<queue>.dead.events` queue that services consume. */
    events: z.boolean().default(true),
  }),
]);

/**
 * A queue that carries a job: producers enqueue to it by the job's name (default: the queue's
 * name), workers consume it with the job's handler. `public` exposes it at the HTTP API's
 * `POST /api/v1/jobs/:job`; `results` names the queue results go to (a bound queue of the
 * topology), or `false` for fire-and-forget work (no result message; the handler's return is dropped).
 */
const jobSchema = z.union([
  z.literal(true),
  z.strictObject({
    name: name.optional(),
    public: z.boolean().default(false),
    results: z.union([name, z.literal(false)]).optional(),
  }),
]);

const queueSchema = z.strictObject({
  type: z.enum(['quorum', 'classic']).default('quorum'),
  durable: z.boolean().default(true),
  bind: z.union([bindSchema, z.array(bindSchema)]).optional(),
  maxLength: z.number().int().positive().optional(),
  maxLengthBytes: z.number().int().positive().optional(),
  overflow: z.enum(['reject-publish', 'drop-head', 'reject-publish-dlx']).optional(),
  deliveryLimit: z.number().int().positive().optional(),
  messageTtl: durationSchema.optional(),
  retry: retrySchema.optional(),
  deadLetter: deadLetterSchema.optional(),
  job: jobSchema.optional(),
});

const bindingSchema = z.strictObject({
  exchange: name,
  queue: name,
  routingKey: z.string().default(''),
});

export const topologyFileSchema = z.strictObject({
  exchanges: z.record(name, exchangeSchema).default({}),
  queues: z.record(name, queueSchema).default({}),
  bindings: z.array(bindingSchema).default([]),
});

export type TopologyFile = z.infer<typeof topologyFileSchema>;
export type QueueSpec = z.infer<typeof queueSchema>;
export type ExchangeSpec = z.infer<typeof exchangeSchema>;
export type BindingSpec = z.infer<typeof bindingSchema>;
export type JobSpec = z.infer<typeof jobSchema>;
