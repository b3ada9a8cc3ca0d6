import { StoreUnavailableError } from '../errors.ts';

/** Writes waiting for the next flush, at most: past it the store is behind, and callers hear so. */
export const DEFAULT_MAX_PENDING = 10_000;

/**
 * Group commit: callers that arrive while a flush is running wait for the next one, which writes
 * them all in one statement. Under load each caller pays a share of one round trip instead of a
 * whole one (measured on the embedded store: one insert per request was ~40% of the API's CPU);
 * when idle, a lone item is flushed at once. `flush` returns one result per item, in order.
 * The waiting list is bounded (`maxPending`): when the database stalls, an item past the bound is
 * refused at once with StoreUnavailableError (the API answers 503) instead of queueing in memory
 * without end.
 */
export class GroupCommit<T, R = undefined> {
  private pending: Array<{ item: T; resolve: (r: R) => void; reject: (err: unknown) => void }> = [];
  private flushing = false;

  constructor(
    private readonly flush: (items: T[]) => Promise<R[]>,
    private readonly maxBatch = 1000,
    private readonly maxPending = DEFAULT_MAX_PENDING,
  ) {}

  /** Items waiting for a flush (not counting the batch being written). */
  get waiting(): number {
    return this.pending.length;
  }

  add(item: T): Promise<R> {
    if (this.pending.length >= this.maxPending) {
      return Promise.reject(new StoreUnavailableError(`the store is behind: ${this.pending.length} writes already wait for it`));
    }
    return new Promise<R>((resolve, reject) => {
      this.pending.push({ item, resolve, reject });
      if (!this.flushing) void this.drain();
    });
  }

  private async drain(): Promise<void> {
    this.flushing = true;
    // Let the callers of this event-loop turn join the first batch.
    await new Promise<void>((r) => setImmediate(r));
    while (this.pending.length > 0) {
      const batch = this.pending.splice(0, this.maxBatch);
      try {
        const results = await this.flush(batch.map((b) => b.item));
        for (const [i, b] of batch.entries()) b.resolve(results[i] as R);
      } catch (err) {
        for (const b of batch) b.reject(err);
      }
    }
    this.flushing = false;
  }
}
