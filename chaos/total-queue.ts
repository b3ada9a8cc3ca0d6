import { connect } from 'amqplib';
import type { ManagementClient } from '../core/index.ts';
import type { LedgerEntry } from './ledger.ts';

/** The queue the harness binds beside the results queue: a copy of every result any worker published. */
export const TAP_QUEUE = 'chaos.tap.results';

/** One result message as the tap saw it. */
export interface TappedResult {
  requestId: string;
  result: unknown;
  processedAt: string | undefined;
}

/**
 * Jepsen's total-queue check, on Warren's outcomes: every requestId a 202 promised must come out
 * (a result, or a dead letter), possibly more than once; nothing may come out that was never
 * promised. Unlike the store reconciliation, this looks at what the workers emitted, so it also
 * sees work done twice and work done for a request the client was told was refused.
 */
export interface TotalQueue {
  /** Distinct requestIds answered 202. */
  accepted: number;
  /** Results the tap holds (each result of a results batch counted). */
  results: number;
  /** Promised, and neither a result nor a dead letter came out. */
  lost: number;
  /** Promised requestIds that came out more than once (processed twice: allowed, counted). */
  duplicated: number;
  /** Of those, how many were really processed more than once (results with different processedAt), not one result published twice. */
  reprocessed: number;
  /** Outcomes beyond the first, over all duplicated requestIds. */
  extraOutcomes: number;
  /** Came out, never promised: a result for a requestId no 202 carried. Fails the run. */
  unexpected: number;
  /** Of those, how many carry the data of a key the client sent and was only ever refused for (a refusal that was not one). */
  unexpectedOfRefusedKeys: number;
  /**
   * Results for a requestId the client never learnt, of a key with an indeterminate attempt (a
   * timeout, a reset, an unknown outcome): allowed, as Jepsen allows an indeterminate enqueue to
   * come out.
   */
  indeterminateOutcomes: number;
  /** RequestIds an answer other than 202 carried (an outcome the API could not know): allowed to come out or not. */
  unknownAnswers: number;
  lostIds: string[];
  unexpectedIds: string[];
}

export interface TotalQueueInput {
  entries: readonly LedgerEntry[];
  results: readonly TappedResult[];
  /** requestId -> reason, from the dead-letter queue (or the store's dead records). */
  dead: ReadonlyMap<string, string>;
  /** RequestIds carried by answers that were neither a 202 nor a refusal. */
  unknown?: ReadonlySet<string>;
}

const SAMPLE = 20;

/** Pure: the total-queue verdict over the ledger and what came out. */
export function totalQueue(input: TotalQueueInput): TotalQueue {
  const promised = new Set(input.entries.flatMap((e) => e.requestIds));
  const keyOfResult = new Map(input.entries.map((e) => [`${e.key}-processed`, e]));
  const outcomes = new Map<string, number>();
  const runs = new Map<string, Set<string>>();
  for (const r of input.results) {
    outcomes.set(r.requestId, (outcomes.get(r.requestId) ?? 0) + 1);
    runs.set(r.requestId, (runs.get(r.requestId) ?? new Set()).add(r.processedAt ?? ''));
  }
  for (const id of input.dead.keys()) outcomes.set(id, (outcomes.get(id) ?? 0) + 1);
  const out: TotalQueue = {
    accepted: promised.size,
    results: input.results.length,
    lost: 0,
    duplicated: 0,
    reprocessed: 0,
    extraOutcomes: 0,
    unexpected: 0,
    unexpectedOfRefusedKeys: 0,
    indeterminateOutcomes: 0,
    unknownAnswers: input.unknown?.size ?? 0,
    lostIds: [],
    unexpectedIds: [],
  };
  for (const id of promised) {
    const n = outcomes.get(id) ?? 0;
    if (n === 0) {
      out.lost += 1;
      if (out.lostIds.length < SAMPLE) out.lostIds.push(id);
    } else if (n > 1) {
      out.duplicated += 1;
      out.extraOutcomes += n - 1;
      if ((runs.get(id)?.size ?? 0) > 1) out.reprocessed += 1;
    }
  }
  const seen = new Set<string>();
  for (const r of input.results) {
    if (promised.has(r.requestId) || input.unknown?.has(r.requestId) || seen.has(r.requestId)) continue;
    seen.add(r.requestId);
    const entry = typeof r.result === 'string' ? keyOfResult.get(r.result) : undefined;
    if (entry?.indeterminate) {
      out.indeterminateOutcomes += 1;
      continue;
    }
    out.unexpected += 1;
    if (out.unexpectedIds.length < SAMPLE) out.unexpectedIds.push(r.requestId);
    if (entry) out.unexpectedOfRefusedKeys += 1;
  }
  for (const id of input.dead.keys()) {
    if (promised.has(id) || input.unknown?.has(id) || seen.has(id)) continue;
    seen.add(id);
    out.unexpected += 1;
    if (out.unexpectedIds.length < SAMPLE) out.unexpectedIds.push(id);
  }
  return out;
}

/** Declares the tap (a quorum queue: it must survive the faults it watches) and binds it to the results route. */
export async function installTap(m: ManagementClient, route: { exchange: string; routingKey: string }, vhost = '/'): Promise<void> {
  await m.put(m.path('queues', vhost, TAP_QUEUE), { durable: true, auto_delete: false, arguments: { 'x-queue-type': 'quorum' } });
  await m.post(`${m.path('bindings', vhost, 'e', route.exchange, 'q', TAP_QUEUE)}`, { routing_key: route.routingKey, arguments: {} }).catch((err: unknown) => {
    // The management API answers 201 with an empty body, which post() cannot parse as JSON.
    if (!/JSON/i.test((err as Error).message)) throw err;
  });
}

/** Reads (and removes) every message in the tap, over AMQP. */
export async function readTap(amqpUrl: string): Promise<TappedResult[]> {
  const conn = await connect(amqpUrl);
  const out: TappedResult[] = [];
  try {
    const ch = await conn.createChannel();
    for (;;) {
      const msg = await ch.get(TAP_QUEUE, { noAck: true });
      if (msg === false) break;
      out.push(...tappedResults(msg.content));
    }
    await ch.close();
  } finally {
    await conn.close().catch(() => {
      // Closed by the broker already.
    });
  }
  return out;
}

/**
 * The results one tapped message holds: one result body, or a results batch (a JSON array of
 * them, what a busy worker sends). What is not a result body is nothing Warren published: ignored.
 */
export function tappedResults(content: Buffer): TappedResult[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(content.toString('utf8'));
  } catch {
    return [];
  }
  const out: TappedResult[] = [];
  for (const item of Array.isArray(parsed) ? parsed : [parsed]) {
    if (typeof item !== 'object' || item === null) continue;
    const o = item as { requestId?: unknown; result?: unknown; processedAt?: unknown };
    if (typeof o.requestId === 'string')
      out.push({ requestId: o.requestId, result: o.result, processedAt: typeof o.processedAt === 'string' ? o.processedAt : undefined });
  }
  return out;
}
