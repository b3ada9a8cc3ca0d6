import { type ChildProcess, spawn } from 'node:child_process';
import { closeSync, existsSync, openSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

export interface ProcessSpec {
  /** For logs and the report, e.g. "api", "worker". */
  name: string;
  /** Arguments after `node bin/warren.js`. */
  args: string[];
  env: NodeJS.ProcessEnv;
  cwd: string;
  /** stdout and stderr are appended here (across restarts). */
  logFile: string;
}

export interface ExitRecord {
  at: number;
  code: number | null;
  signal: NodeJS.Signals | null;
  /** True when the harness itself killed or stopped it. */
  expected: boolean;
  /** Set when the process could not be started at all. */
  error?: string;
}

export interface ProcessHooks {
  onStart?: (pid: number | undefined) => void;
  onUnexpectedExit?: (p: ManagedProcess, rec: ExitRecord) => void;
}

/**
 * One Warren process (`node bin/warren.js ...`) that the harness starts, SIGKILLs and restarts.
 * It runs in a process group of its own, so cleanup can also reach the children it forked (the
 * worker supervisor's replicas) by the group id, never by name.
 */
export class ManagedProcess {
  readonly exits: ExitRecord[] = [];
  private child: ChildProcess | undefined;
  private exited: Promise<void> = Promise.resolve();
  private expectExit = false;
  starts = 0;

  constructor(
    readonly spec: ProcessSpec,
    private readonly hooks: ProcessHooks = {},
  ) {}

  get pid(): number | undefined {
    return this.child?.exitCode === null && this.child.signalCode === null ? this.child.pid : undefined;
  }

  start(): void {
    if (this.pid !== undefined) throw new Error(`${this.spec.name} is already running (pid ${this.pid})`);
    const fd = openSync(this.spec.logFile, 'a');
    try {
      const child = spawn(process.execPath, ['bin/warren.js', ...this.spec.args], {
        cwd: this.spec.cwd,
        env: this.spec.env,
        detached: true,
        stdio: ['ignore', fd, fd],
      });
      this.child = child;
      this.expectExit = false;
      this.starts += 1;
      this.hooks.onStart?.(child.pid);
      this.exited = new Promise((resolve) => {
        child.once('exit', (code, signal) => {
          const rec = { at: Date.now(), code, signal, expected: this.expectExit };
          this.exits.push(rec);
          if (!rec.expected) this.hooks.onUnexpectedExit?.(this, rec);
          resolve();
        });
        // spawn itself failed (no exit event follows): report it like an exit, so the run fails visibly.
        child.once('error', (err) => {
          const rec = { at: Date.now(), code: null, signal: null, expected: false, error: err.message };
          this.exits.push(rec);
          this.hooks.onUnexpectedExit?.(this, rec);
          resolve();
        });
      });
    } finally {
      closeSync(fd);
    }
  }

  /** A crash: SIGKILL, no chance to clean up. The children of a supervisor are left to fend for themselves. */
  kill(): void {
    this.signal('SIGKILL');
  }

  /** SIGTERM, then SIGKILL to the whole group after `graceMs`. */
  async stop(graceMs = 15_000): Promise<void> {
    const pid = this.child?.pid;
    // The supervisor may start its replicas in process groups of their own: remember them by pid.
    const children = this.children();
    if (this.pid !== undefined) {
      this.signal('SIGTERM');
      if (!(await this.waitForExit(graceMs))) this.signal('SIGKILL');
      await this.exited;
    }
    if (pid !== undefined) killGroup(pid);
    for (const c of children) if (isWarren(c)) killPid(c);
  }

  /** True when it exited within `timeoutMs`. The timer is cleared either way, so it never holds the process open. */
  async waitForExit(timeoutMs: number): Promise<boolean> {
    const ac = new AbortController();
    const timeout = sleep(timeoutMs, false, { signal: ac.signal }).catch(() => false);
    try {
      return await Promise.race([this.exited.then(() => true), timeout]);
    } finally {
      ac.abort();
    }
  }

  /** Direct children's pids (the supervisor's worker replicas), from /proc. */
  children(): number[] {
    const pid = this.pid;
    return pid === undefined ? [] : childPids(pid);
  }

  private signal(sig: NodeJS.Signals): void {
    const pid = this.pid;
    if (pid === undefined) return;
    this.expectExit = true;
    try {
      process.kill(pid, sig);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
    }
  }
}

/** Children of a process: /proc/<pid>/task/<tid>/children lists them per thread (Linux 3.5+). */
export function childPids(pid: number): number[] {
  const dir = `/proc/${pid}/task`;
  if (!existsSync(dir)) return [];
  const out: number[] = [];
  for (const tid of readdirSync(dir)) {
    try {
      for (const s of readFileSync(join(dir, tid, 'children'), 'utf8')
        .trim()
        .split(/\s+/))
        if (s) out.push(Number(s));
    } catch {
      // The thread ended between readdir and read.
    }
  }
  return out;
}

/** SIGKILL to a process group we created; ESRCH (already empty) is the normal case. */
export function killGroup(pgid: number): void {
  try {
    process.kill(-pgid, 'SIGKILL');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
  }
}

/** Still a Warren process (a pid may have been reused by something else since). */
export function isWarren(pid: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('warren.js');
  } catch {
    return false;
  }
}

/** SIGKILL one pid; false when it was already gone. */
export function killPid(pid: number): boolean {
  try {
    process.kill(pid, 'SIGKILL');
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ESRCH') return false;
    throw err;
  }
}

/** The last `n` lines of a log file that match `re` (all lines when omitted). */
export function logTail(file: string, n: number, re?: RegExp): string[] {
  if (!existsSync(file)) return [];
  const lines = readFileSync(file, 'utf8').split('\n').filter(Boolean);
  return (re ? lines.filter((l) => re.test(l)) : lines).slice(-n);
}

/** Lines of a log file matching `re`. */
export function countLogLines(file: string, re: RegExp): number {
  if (!existsSync(file)) return 0;
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => re.test(l)).length;
}
