import { setTimeout as sleep } from 'node:timers/promises';
import type { ApiClient } from './api-client.ts';
import type { Observation } from './reconcile.ts';

export interface DrainOptions {
  /** Give up waiting for a final status after this long. */
  timeoutMs: number;
  /** Parallel GETs; the API is also serving the workers' results meanwhile. */
  concurrency?: number;
  everyMs?: number;
  /** A requestId is settled when this says so (default: done or dead). */
  settled?: (requestId: string, obs: Observation) => boolean;
  /**
   * Asked when nothing has settled for a while: true when waiting longer cannot help (the broker
   * holds no message that could complete the rest), so the drain ends before its deadline.
   */
  hopeless?: () => Promise<boolean>;
}

const STALL_MS = 10_000;

export interface DrainResult {
  observations: Map<string, Observation>;
  /** Time until everything was settled, or undefined when the deadline passed first. */
  drainedAfterMs: number | undefined;
}

const isFinal = (_id: string, o: Observation): boolean => o.kind === 'record' && (o.status === 'done' || o.status === 'dead');

/**
 * Polls the store for every promised requestId until each is settled or the deadline passes;
 * only the unsettled ones are polled again, so a long run costs one GET per request plus a tail.
 */
export async function drain(client: ApiClient, requestIds: readonly string[], options: DrainOptions): Promise<DrainResult> {
  const settled = options.settled ?? isFinal;
  const observations = new Map<string, Observation>();
  const t0 = Date.now();
  let pending = [...requestIds];
  let lastProgress = Date.now();
  for (;;) {
    const before = pending.length;
    const next: string[] = [];
    await mapPool(pending, options.concurrency ?? 8, async (id) => {
      const obs = await client.observe(id);
      observations.set(id, obs);
      if (!settled(id, obs)) next.push(id);
    });
    pending = next;
    if (pending.length === 0) return { observations, drainedAfterMs: Date.now() - t0 };
    if (Date.now() - t0 >= options.timeoutMs) return { observations, drainedAfterMs: undefined };
    if (pending.length < before) lastProgress = Date.now();
    else if (Date.now() - lastProgress >= STALL_MS && (await options.hopeless?.())) return { observations, drainedAfterMs: undefined };
    await sleep(options.everyMs ?? 500);
  }
}

/** Runs `fn` over `items` with at most `limit` at once. */
export async function mapPool<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let i = 0;
  const lanes = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (i < items.length) {
      const item = items[i++] as T;
      await fn(item);
    }
  });
  await Promise.all(lanes);
}
