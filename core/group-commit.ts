/** Items waiting for the next flush, at most: past it the flush is behind, and callers hear so. */
export const DEFAULT_MAX_PENDING = 10_000;

export interface GroupCommitOptions {
  /** Items per flush at most; default 1000. */
  maxBatch?: number;
  /** Items waiting at most (default DEFAULT_MAX_PENDING); one more is refused with `behind`'s error. */
  maxPending?: number;
  /** The error a caller past maxPending gets. */
  behind?: (waiting: number) => Error;
}

/**
 * Group commit: callers that arrive while a flush is running wait for the next one, which takes
 * them all at once (the store: one statement; a worker: one results message). Under load each
 * caller pays a share of one round trip instead of a whole one (measured on the embedded store:
 * one insert per request was ~40% of the API's CPU); when idle, a lone item is flushed at once.
 * `flush` returns one result per item, in order. The waiting list is bounded (`maxPending`): when
 * the flush stalls, an item past the bound is refused at once (the store's callers get
 * StoreUnavailableError, and the API answers 503) instead of queueing in memory without end.
 */
export class GroupCommit<T, R = undefined> {
  private pending: Array<{ item: T; sink: Settle<R>; index: number }> = [];
  private flushing = false;

  private readonly maxBatch: number;
  private readonly maxPending: number;
  private readonly behind: (waiting: number) => Error;

  constructor(
    private readonly flush: (items: T[]) => Promise<R[]>,
    options: GroupCommitOptions = {},
  ) {
    this.maxBatch = options.maxBatch ?? 1000;
    this.maxPending = options.maxPending ?? DEFAULT_MAX_PENDING;
    this.behind = options.behind ?? ((waiting) => new Error(`behind: ${waiting} items already wait for a flush`));
  }

  /** Items waiting for a flush (not counting the batch being written). */
  get waiting(): number {
    return this.pending.length;
  }

  add(item: T): Promise<R> {
    if (this.pending.length >= this.maxPending) {
      return Promise.reject(this.behind(this.pending.length));
    }
    return new Promise<R>((resolve, reject) => {
      this.pending.push({ item, sink: { done: (_index, result) => resolve(result), fail: reject }, index: 0 });
      if (!this.flushing) void this.drain();
    });
  }

  /**
   * Several items for the next flushes, in order (they may span two when past maxBatch): one
   * promise for them all, settled with each item's result once the last is written, or rejected
   * with the first failed flush's error. Refused at once, whole, when they would take the waiting
   * list past maxPending. For a caller that has many items at once (a results message): no
   * promise or closure per item.
   */
  addAll(items: readonly T[]): Promise<R[]> {
    if (items.length === 0) return Promise.resolve([]);
    if (this.pending.length + items.length > this.maxPending) {
      return Promise.reject(this.behind(this.pending.length));
    }
    return new Promise<R[]>((resolve, reject) => {
      const sink = new Sink<R>(items.length, resolve, reject);
      for (let i = 0; i < items.length; i++) this.pending.push({ item: items[i] as T, sink, index: i });
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
        for (const [i, b] of batch.entries()) b.sink.done(b.index, results[i] as R);
      } catch (err) {
        for (const b of batch) b.sink.fail(err);
      }
    }
    this.flushing = false;
  }
}

/** Where an item's result goes: a lone caller's promise, or its share of addAll's. */
interface Settle<R> {
  done(index: number, result: R): void;
  fail(err: unknown): void;
}

/** One addAll caller's items: their results gathered in order, settled once. */
class Sink<R> implements Settle<R> {
  private readonly results: R[];
  private left: number;
  private settled = false;

  constructor(
    count: number,
    private readonly resolve: (results: R[]) => void,
    private readonly reject: (err: unknown) => void,
  ) {
    this.results = new Array<R>(count);
    this.left = count;
  }

  done(index: number, result: R): void {
    this.results[index] = result;
    this.left -= 1;
    if (this.left === 0 && !this.settled) {
      this.settled = true;
      this.resolve(this.results);
    }
  }

  fail(err: unknown): void {
    if (this.settled) return;
    this.settled = true;
    this.reject(err);
  }
}
