import { type SpawnOptions, spawn } from 'node:child_process';
import type { Logger, MetricsJson, Registry } from '../core/index.ts';

/** A replica that exits with this code failed in a way a restart cannot fix (config, topology). */
export const FATAL_EXIT_CODE = 78; // EX_CONFIG from sysexits.h

export interface SupervisorOptions {
  replicas: number;
  /** The program and arguments of one replica (e.g. node bin/warren.js worker ...). */
  command: string;
  args: readonly string[];
  /** Environment of the replicas; `replicaEnv` is set to the replica's index on top of it. */
  env: NodeJS.ProcessEnv;
  replicaEnv: string;
  logger: Logger;
  /** Restart delay: doubles from `initial` up to `max` while a replica keeps dying young. */
  restartDelayMs?: { initial: number; max: number };
  /** A replica that ran this long before dying restarts after the initial delay again. */
  stableAfterMs?: number;
  /** After stop(), replicas still running this much later get SIGKILL (their grace plus a margin). */
  stopTimeoutMs?: number;
  /** Starts one replica; node's child_process.spawn unless a test passes a scripted fake. */
  spawnReplica?: (command: string, args: string[], options: SpawnOptions) => ReplicaProcess;
  /** Time and timers; the real ones unless a test passes a controllable clock. */
  clock?: SupervisorClock;
}

/** The part of a ChildProcess the supervisor uses (a scripted fake in the unit tests). */
export interface ReplicaProcess {
  readonly pid?: number | undefined;
  kill(signal?: NodeJS.Signals): boolean;
  send(message: unknown): boolean;
  on(event: 'message', listener: (message: unknown) => void): this;
  on(event: 'error', listener: (err: Error) => void): this;
  once(event: 'exit', listener: (code: number | null, signal: NodeJS.Signals | null) => void): this;
}

export interface SupervisorClock {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

const realClock: SupervisorClock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout | undefined),
};

/** Sent by a replica over IPC once it has settled a message (see cli/worker.ts). */
export const REPLICA_SETTLED_MESSAGE = 'warren:replica-settled';
/** Sent to a replica over IPC: answer with METRICS_REPLY_MESSAGE and the same id. */
export const METRICS_REQUEST_MESSAGE = 'warren:metrics-request';
/** A replica's answer: `{ type, id, metrics }`, metrics being its registry's getMetricsAsJSON(). */
export const METRICS_REPLY_MESSAGE = 'warren:metrics';

/**
 * The replica's side of collectMetrics(): answers each request from the supervisor with this
 * process's registry. Call it once in a supervised replica.
 */
export function answerMetricsRequests(registry: Registry, logger: Logger): void {
  process.on('message', (m: unknown) => {
    const msg = m as { type?: unknown; id?: unknown } | null;
    if (msg?.type !== METRICS_REQUEST_MESSAGE) return;
    void registry.getMetricsAsJSON().then(
      (metrics) => process.send?.({ type: METRICS_REPLY_MESSAGE, id: msg.id, metrics }),
      (err: unknown) => logger.warn({ err }, 'metrics collection failed'),
    );
  });
}

interface Replica {
  index: number;
  child: ReplicaProcess | undefined;
  startedAt: number;
  /** Deaths in a row without a stable run between them. */
  failures: number;
  /** The current child reported a settled message: it was working, not crash-looping. */
  settled: boolean;
  restartTimer: unknown;
}

/**
 * Runs N replicas of the worker as child processes and keeps them running: a replica that dies
 * is restarted with backoff; stop() forwards SIGTERM and waits for all of them.
 *
 * Children are started detached (their own process group) with an IPC channel: a Ctrl-C in a
 * terminal then reaches only the supervisor, which forwards one SIGTERM (otherwise each child
 * would see the terminal's SIGINT and then the forwarded signal, i.e. a forced stop); and if the
 * supervisor itself dies, the IPC channel closes and the children stop gracefully on their own.
 */
export class Supervisor {
  private readonly log: Logger;
  private readonly replicas: Replica[] = [];
  private stopping = false;
  private exitCode = 0;
  private stopTimer: unknown;
  private readonly clock: SupervisorClock;
  private resolveDone: (code: number) => void = () => undefined;
  private metricsRequests = 0;
  private readonly metricsWaiters = new Map<string, (metrics: MetricsJson) => void>();
  /** Resolves with the exit code once every replica has ended after stop() or a fatal failure. */
  readonly done: Promise<number>;

  constructor(private readonly options: SupervisorOptions) {
    this.log = options.logger.child({ component: 'supervisor' });
    this.clock = options.clock ?? realClock;
    this.done = new Promise((resolve) => {
      this.resolveDone = resolve;
    });
  }

  start(): void {
    this.log.info({ replicas: this.options.replicas }, 'supervisor starting replicas');
    for (let i = 0; i < this.options.replicas; i += 1) {
      const replica: Replica = { index: i, child: undefined, startedAt: 0, failures: 0, settled: false, restartTimer: undefined };
      this.replicas.push(replica);
      this.spawn(replica);
    }
  }

  /** Forwards `signal` to every replica and resolves when all have exited. */
  stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<number> {
    if (!this.stopping) {
      this.stopping = true;
      this.log.info({ signal, running: this.running().length }, 'stopping replicas');
      for (const r of this.replicas) {
        if (r.restartTimer !== undefined) this.clock.clearTimeout(r.restartTimer);
        r.restartTimer = undefined;
        r.child?.kill(signal);
      }
      const stopTimeoutMs = this.options.stopTimeoutMs ?? 40_000;
      this.stopTimer = this.clock.setTimeout(() => {
        this.log.warn({ stopTimeoutMs, running: this.running().length }, 'replicas did not stop in time; killing them');
        this.kill();
      }, stopTimeoutMs);
      this.checkDone();
    }
    return this.done;
  }

  /** Forced stop: SIGKILL to every replica (their unacked messages return to the queue). */
  kill(): void {
    this.stopping = true;
    this.exitCode = this.exitCode || 1;
    for (const r of this.replicas) r.child?.kill('SIGKILL');
    this.checkDone();
  }

  /** Process ids of the running replicas, by index. */
  pids(): Array<number | undefined> {
    return this.replicas.map((r) => r.child?.pid);
  }

  /**
   * The metrics of every running replica, asked over IPC. A replica that does not answer within
   * `timeoutMs` (starting, stopping, busy) is left out of this scrape.
   */
  async collectMetrics(timeoutMs = 2000): Promise<MetricsJson[]> {
    const asks = this.running().map(
      (r) =>
        new Promise<MetricsJson | undefined>((resolve) => {
          const id = `${r.index}-${++this.metricsRequests}`;
          const timer = this.clock.setTimeout(() => {
            this.metricsWaiters.delete(id);
            resolve(undefined);
          }, timeoutMs);
          this.metricsWaiters.set(id, (metrics) => {
            this.clock.clearTimeout(timer);
            this.metricsWaiters.delete(id);
            resolve(metrics);
          });
          try {
            r.child?.send({ type: METRICS_REQUEST_MESSAGE, id });
          } catch {
            // The replica is exiting; the timer answers for it.
          }
        }),
    );
    return (await Promise.all(asks)).filter((m): m is MetricsJson => m !== undefined);
  }

  private spawn(replica: Replica): void {
    replica.restartTimer = undefined;
    replica.startedAt = this.clock.now();
    const spawnReplica = this.options.spawnReplica ?? spawn;
    const child = spawnReplica(this.options.command, [...this.options.args], {
      env: { ...this.options.env, [this.options.replicaEnv]: String(replica.index) },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      detached: true,
    });
    replica.child = child;
    replica.settled = false;
    this.log.info({ replica: replica.index, pid: child.pid }, 'replica started');
    child.on('message', (m: unknown) => {
      const msg = m as { type?: unknown; id?: unknown; metrics?: unknown } | null;
      if (msg?.type === REPLICA_SETTLED_MESSAGE) {
        // Logged once per child: the line tests and operators wait on before a kill counts as "healthy".
        if (!replica.settled) this.log.info({ replica: replica.index, pid: child.pid }, 'replica is settling messages');
        replica.settled = true;
      } else if (msg?.type === METRICS_REPLY_MESSAGE && typeof msg.id === 'string' && Array.isArray(msg.metrics)) {
        this.metricsWaiters.get(msg.id)?.(msg.metrics as MetricsJson);
      }
    });
    // 'on', not 'once': a child can emit 'error' more than once (a failed spawn, then a failed
    // IPC send or kill), and an 'error' event without a listener would crash the supervisor.
    child.on('error', (err) => {
      if (child.pid !== undefined) {
        // A failed IPC send or kill of a running (or exiting) replica; its 'exit' still follows.
        this.log.warn({ err, replica: replica.index, pid: child.pid }, 'replica process error');
        return;
      }
      // Spawning itself failed (no 'exit' follows when the process never ran).
      this.log.error({ err, replica: replica.index }, 'replica could not be started');
      this.onExit(replica, child, null, null);
    });
    child.once('exit', (code, signal) => this.onExit(replica, child, code, signal));
  }

  private onExit(replica: Replica, child: ReplicaProcess, code: number | null, signal: NodeJS.Signals | null): void {
    if (replica.child !== child) return;
    replica.child = undefined;
    const ranMs = this.clock.now() - replica.startedAt;
    if (this.stopping) {
      this.log.info({ replica: replica.index, pid: child.pid, code, signal }, 'replica exited');
      if (code !== 0 && code !== null) this.exitCode = this.exitCode || 1;
      this.checkDone();
      return;
    }
    if (code === FATAL_EXIT_CODE) {
      this.log.error({ replica: replica.index, pid: child.pid, code }, 'replica cannot start (configuration or topology); stopping all');
      this.exitCode = 1;
      void this.stop('SIGTERM');
      return;
    }
    const stableAfterMs = this.options.stableAfterMs ?? 30_000;
    // A replica that settled messages before it died was killed from outside (OOM, a node drain,
    // chaos), not crash-looping: its restart is not delayed by the deaths before it.
    replica.failures = ranMs >= stableAfterMs || replica.settled ? 1 : replica.failures + 1;
    const { initial, max } = this.options.restartDelayMs ?? { initial: 500, max: 30_000 };
    const delayMs = Math.min(initial * 2 ** (replica.failures - 1), max);
    this.log.warn({ replica: replica.index, pid: child.pid, code, signal, ranMs, delayMs }, 'replica exited; restarting');
    replica.restartTimer = this.clock.setTimeout(() => this.spawn(replica), delayMs);
  }

  private running(): Replica[] {
    return this.replicas.filter((r) => r.child !== undefined);
  }

  private checkDone(): void {
    if (this.stopping && this.running().length === 0) {
      if (this.stopTimer !== undefined) this.clock.clearTimeout(this.stopTimer);
      this.log.info({ exitCode: this.exitCode }, 'all replicas stopped');
      this.resolveDone(this.exitCode);
    }
  }
}
