import { type CompiledJob, compileJobs } from './jobs.ts';
import type { Topology } from './load.ts';
import type { QueueSpec } from './schema.ts';
import { lossWarnings } from './validate.ts';

/**
 * The compiler: a pure function from validated intent to concrete declarations. Shorthand
 * (`retry`, `deadLetter`) expands into exchanges, TTL queues and bindings, and `routes` tells the
 * worker and the API every name they need, so no service spells a queue name of its own.
 */

export type Arguments = Record<string, string | number | boolean>;

export interface ExchangeDecl {
  name: string;
  type: 'direct' | 'topic' | 'fanout' | 'headers';
  durable: boolean;
}

export type QueueRole = 'main' | 'retry' | 'dead' | 'dead-events';

export interface QueueDecl {
  name: string;
  durable: boolean;
  arguments: Arguments;
  role: QueueRole;
  /** For retry/dead queues: the queue they serve. */
  of?: string;
}

export interface BindingDecl {
  exchange: string;
  queue: string;
  routingKey: string;
}

export interface RetryTier {
  /** 1-based: a message whose attempt N failed waits in tier N (the last tier when N is larger). */
  tier: number;
  queue: string;
  routingKey: string;
  delayMs: number;
}

export interface QueueRoutes {
  queue: string;
  type: 'quorum' | 'classic';
  /** Where a producer publishes to reach this queue (its first binding). */
  publish?: { exchange: string; routingKey: string };
  deliveryLimit?: number;
  retry?: { exchange: string; maxAttempts: number; tiers: RetryTier[] };
  deadLetter?: { exchange: string; queue: string; routingKey: string; eventsQueue?: string };
}

export interface CompiledTopology {
  exchanges: ExchangeDecl[];
  queues: QueueDecl[];
  bindings: BindingDecl[];
  routes: Record<string, QueueRoutes>;
  /** The jobs, by name (topology/jobs.ts). */
  jobs: Record<string, CompiledJob>;
  warnings: string[];
}

/** A quorum queue's broker-side redelivery cap when the file sets none but has a dead-letter. */
export const DEFAULT_DELIVERY_LIMIT = 10;

export const names = {
  retryExchange: (q: string) => `${q}.retry`,
  retryQueue: (q: string, tier: number) => `${q}.retry.${tier}`,
  deadLetterExchange: (q: string) => `${q}.dlx`,
  deadLetterQueue: (q: string) => `${q}.dead`,
  deadEventsQueue: (q: string) => `${q}.dead.events`,
};

export function compileTopology(topo: Topology): CompiledTopology {
  const out: CompiledTopology = { exchanges: [], queues: [], bindings: [], routes: {}, jobs: compileJobs(topo), warnings: [] };
  for (const [name, ex] of Object.entries(topo.exchanges)) {
    out.exchanges.push({ name, type: ex.type, durable: ex.durable });
  }
  for (const [name, spec] of Object.entries(topo.queues)) compileQueue(name, spec, out);
  out.warnings.push(...lossWarnings(topo));
  for (const b of topo.bindings) out.bindings.push({ exchange: b.exchange, queue: b.queue, routingKey: b.routingKey });
  for (const b of topo.bindings) {
    const r = out.routes[b.queue];
    if (r && !r.publish) r.publish = { exchange: b.exchange, routingKey: b.routingKey };
  }
  return out;
}

function compileQueue(name: string, spec: QueueSpec, out: CompiledTopology): void {
  const quorum = spec.type === 'quorum';
  const routes: QueueRoutes = { queue: name, type: spec.type };
  const args: Arguments = { 'x-queue-type': spec.type };
  if (spec.maxLength !== undefined) args['x-max-length'] = spec.maxLength;
  if (spec.maxLengthBytes !== undefined) args['x-max-length-bytes'] = spec.maxLengthBytes;
  if (spec.messageTtl !== undefined) args['x-message-ttl'] = spec.messageTtl;

  let overflow = spec.overflow;
  if (spec.deadLetter) {
    const dlx = names.deadLetterExchange(name);
    const dlq = names.deadLetterQueue(name);
    args['x-dead-letter-exchange'] = dlx;
    if (quorum) {
      // At-least-once dead-lettering (RabbitMQ >= 3.10) keeps a message in the source queue until
      // the dead-letter queue confirmed it; it requires reject-publish overflow.
      // https://www.rabbitmq.com/blog/2022/03/29/at-least-once-dead-lettering
      if (overflow === undefined) overflow = 'reject-publish';
      if (overflow === 'reject-publish') args['x-dead-letter-strategy'] = 'at-least-once';
      else
        out.warnings.push(
          `queues.${name}: overflow ${overflow} forces at-most-once dead-lettering (a dead letter can be lost if the broker fails while moving it)`,
        );
      const limit = spec.deliveryLimit ?? DEFAULT_DELIVERY_LIMIT;
      args['x-delivery-limit'] = limit;
      routes.deliveryLimit = limit;
    }
    // A fanout exchange: every dead letter lands in the inspection queue and, when enabled, in the
    // events queue that services (the API's store) consume.
    out.exchanges.push({ name: dlx, type: 'fanout', durable: true });
    out.queues.push({ name: dlq, durable: true, arguments: sideQueueArgs(spec.type), role: 'dead', of: name });
    out.bindings.push({ exchange: dlx, queue: dlq, routingKey: '' });
    routes.deadLetter = { exchange: dlx, queue: dlq, routingKey: '' };
    const events = typeof spec.deadLetter === 'object' ? spec.deadLetter.events : true;
    if (events) {
      const evq = names.deadEventsQueue(name);
      out.queues.push({ name: evq, durable: true, arguments: sideQueueArgs(spec.type), role: 'dead-events', of: name });
      out.bindings.push({ exchange: dlx, queue: evq, routingKey: '' });
      routes.deadLetter.eventsQueue = evq;
    }
  } else if (quorum && spec.deliveryLimit !== undefined) {
    args['x-delivery-limit'] = spec.deliveryLimit;
    routes.deliveryLimit = spec.deliveryLimit;
  }
  if (overflow !== undefined) args['x-overflow'] = overflow;

  out.queues.push({ name, durable: spec.durable, arguments: args, role: 'main' });

  if (spec.retry) {
    const rx = names.retryExchange(name);
    out.exchanges.push({ name: rx, type: 'direct', durable: true });
    const tiers: RetryTier[] = spec.retry.delays.map((delayMs, i) => {
      const queue = names.retryQueue(name, i + 1);
      return { tier: i + 1, queue, routingKey: queue, delayMs };
    });
    for (const t of tiers) {
      // On expiry the broker dead-letters the copy through the default exchange straight back to
      // the main queue (x-death reason "expired").
      const targs: Arguments = {
        ...sideQueueArgs(spec.type),
        'x-message-ttl': t.delayMs,
        'x-dead-letter-exchange': '',
        'x-dead-letter-routing-key': name,
      };
      if (quorum) {
        targs['x-overflow'] = 'reject-publish';
        targs['x-dead-letter-strategy'] = 'at-least-once';
      }
      out.queues.push({ name: t.queue, durable: true, arguments: targs, role: 'retry', of: name });
      out.bindings.push({ exchange: rx, queue: t.queue, routingKey: t.routingKey });
    }
    routes.retry = { exchange: rx, maxAttempts: spec.retry.maxAttempts, tiers };
  }

  const binds = spec.bind === undefined ? [] : Array.isArray(spec.bind) ? spec.bind : [spec.bind];
  for (const b of binds) out.bindings.push({ exchange: b.exchange, queue: name, routingKey: b.routingKey });
  const first = binds[0];
  if (first) routes.publish = { exchange: first.exchange, routingKey: first.routingKey };
  out.routes[name] = routes;
}

function sideQueueArgs(type: 'quorum' | 'classic'): Arguments {
  return { 'x-queue-type': type };
}

/** The routes of one queue, or a clear error naming the queues the topology has. */
export function routesFor(compiled: CompiledTopology, queue: string): QueueRoutes {
  const r = compiled.routes[queue];
  if (!r) {
    throw new Error(`queue "${queue}" is not in the topology (it declares: ${Object.keys(compiled.routes).join(', ') || 'no queues'})`);
  }
  return r;
}
