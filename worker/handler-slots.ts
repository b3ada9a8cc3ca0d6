/**
 * How many handlers of a job run at once in a process: its `concurrency`. The job's prefetch is
 * larger (HANDLER_PREFETCH_FACTOR times it): a message whose handler has returned still holds its
 * delivery until the broker confirms what replaces it (its result, retry copy or dead letter), and
 * with prefetch equal to concurrency the handlers stood idle through every confirm. Messages
 * delivered while every slot is taken wait here, in delivery order.
 *
 * Why four: results that finish together share one results message, and one is awaiting its
 * confirm at a time (worker/result-batcher.ts), so a finished message can hold its delivery for
 * two confirms (the one in flight, then its own) while the handlers run the next ones. With twice
 * the concurrency, under load the deliveries ran out while results waited, and a backlog built in
 * the queue (bench/README.md, "Then four times"): four times gave about 9% more jobs to stored
 * results in paired rounds on this machine, eight times no clear gain over four.
 */
export class HandlerSlots {
  private running = 0;
  private readonly waiters: Array<() => void> = [];

  constructor(readonly size: number) {
    if (!Number.isInteger(size) || size < 1) throw new RangeError(`handler slots must be a positive integer, got ${size}`);
  }

  /** Handlers running now. */
  get busy(): number {
    return this.running;
  }

  /** Messages waiting for a slot. */
  get waiting(): number {
    return this.waiters.length;
  }

  /**
   * Resolves true once a slot is taken (release it with release()), or false if `signal` aborts
   * first (the worker stopping): then no slot is taken.
   */
  acquire(signal?: AbortSignal): Promise<boolean> {
    if (signal?.aborted) return Promise.resolve(false);
    if (this.running < this.size) {
      this.running += 1;
      return Promise.resolve(true);
    }
    return new Promise<boolean>((resolve) => {
      const onAbort = () => {
        const i = this.waiters.indexOf(take);
        if (i >= 0) this.waiters.splice(i, 1);
        resolve(false);
      };
      const take = () => {
        signal?.removeEventListener('abort', onAbort);
        resolve(true);
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.waiters.push(take);
    });
  }

  /** Frees a slot: the longest-waiting message takes it. */
  release(): void {
    const next = this.waiters.shift();
    if (next) next();
    else this.running -= 1;
  }
}

/** A job's prefetch, as a multiple of its concurrency (see HandlerSlots). */
export const HANDLER_PREFETCH_FACTOR = 4;
