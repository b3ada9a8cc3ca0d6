/**
 * Handlers still running after their timeout. A handler that ignores its AbortSignal keeps
 * running when its message is already retried, and the freed prefetch slot brings the next
 * message: against a hung dependency, work would pile up far beyond `concurrency`. Up to `cap`
 * such handlers may run on; past it, a timed-out message keeps its prefetch slot (its ack waits)
 * until its handler returns, so the broker stops delivering more. `count` is the
 * `warren_handlers_overdue{queue}` gauge.
 */
export class OverdueHandlers {
  private running = 0;

  constructor(readonly cap: number) {}

  get count(): number {
    return this.running;
  }

  /**
   * Counts `work` until it settles. Returns it when the count is past the cap (the caller holds
   * its slot until it settles), else undefined.
   */
  add(work: Promise<unknown>): Promise<unknown> | undefined {
    this.running += 1;
    const done = work.then(
      () => undefined,
      () => undefined,
    );
    void done.then(() => {
      this.running -= 1;
    });
    return this.running > this.cap ? done : undefined;
  }
}
