import type { ManagedProcess } from './processes.ts';

/**
 * Watches the worker supervisor's children from outside (/proc): every pid ever seen beyond the
 * first N is a restart, whatever the supervisor logs. Sampled often enough to catch a replica
 * that crash-loops at the supervisor's fastest backoff.
 */
export class ReplicaWatch {
  private readonly seen = new Set<number>();
  private initial = 0;
  private timer: NodeJS.Timeout | undefined;
  /** Pids the harness killed on purpose. */
  readonly killed = new Set<number>();

  /** `supervisors` is read at each sample: worker groups may be placed after construction. */
  constructor(
    private readonly supervisors: () => readonly ManagedProcess[],
    private readonly onNewReplica?: (pid: number) => void,
  ) {}

  start(everyMs = 200): void {
    this.initial = this.sample().length;
    this.timer = setInterval(() => this.sample(), everyMs);
  }

  stop(): void {
    clearInterval(this.timer);
  }

  sample(): number[] {
    const pids = this.supervisors().flatMap((s) => s.children());
    for (const p of pids) {
      if (this.seen.has(p)) continue;
      this.seen.add(p);
      this.onNewReplica?.(p);
    }
    return pids;
  }

  /** Replicas started after the first ones. */
  get restarts(): number {
    return Math.max(0, this.seen.size - this.initial);
  }

  /** Restarts not caused by the harness's own kills: crashes. */
  get unexpectedRestarts(): number {
    return Math.max(0, this.restarts - this.killed.size);
  }

  get initialCount(): number {
    return this.initial;
  }
}
