import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import { waitFor } from './broker.ts';

export const ROOT = new URL('../..', import.meta.url).pathname;

export interface WarrenProcess {
  proc: ChildProcess;
  output(): string;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves when it exited. */
  stop(graceMs?: number): Promise<void>;
}

const running = new Set<ChildProcess>();

/** Runs `node bin/warren.js <args>` as a real process, with its output captured. */
export function startWarren(args: string[], env: Record<string, string | undefined>): WarrenProcess {
  const proc = spawn(process.execPath, [join(ROOT, 'bin/warren.js'), ...args], {
    cwd: ROOT,
    env: { ...process.env, LOG_PRETTY: '0', WORKER_METRICS_PORT: '0', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  running.add(proc);
  let out = '';
  proc.stdout?.on('data', (d: Buffer) => {
    out += d.toString();
  });
  proc.stderr?.on('data', (d: Buffer) => {
    out += d.toString();
  });
  const exited = new Promise<void>((r) => proc.once('exit', () => r()));
  void exited.then(() => running.delete(proc));
  return {
    proc,
    output: () => out,
    stop: async (graceMs = 15_000) => {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM');
      const t = setTimeout(() => proc.kill('SIGKILL'), graceMs);
      await exited;
      clearTimeout(t);
    },
  };
}

/**
 * Runs `warren <args>` to completion; `output` is stdout and stderr in the order they came. Past
 * `timeoutMs` it is killed, or with `interruptFirst` sent SIGINT first (so a chaos harness stops
 * the nodes and processes it started) and SIGKILL a minute later.
 */
export async function runWarren(
  args: string[],
  env: Record<string, string | undefined>,
  timeoutMs = 60_000,
  options: { interruptFirst?: boolean } = {},
): Promise<{ code: number | null; stdout: string; stderr: string; output: string; timedOut: boolean }> {
  const proc = spawn(process.execPath, [join(ROOT, 'bin/warren.js'), ...args], {
    cwd: ROOT,
    env: { ...process.env, LOG_PRETTY: '0', WORKER_METRICS_PORT: '0', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  let output = '';
  let timedOut = false;
  proc.stdout.on('data', (d: Buffer) => {
    stdout += d.toString();
    output += d.toString();
  });
  proc.stderr.on('data', (d: Buffer) => {
    stderr += d.toString();
    output += d.toString();
  });
  let killTimer: NodeJS.Timeout | undefined;
  const timer = setTimeout(() => {
    timedOut = true;
    if (!options.interruptFirst) return void proc.kill('SIGKILL');
    proc.kill('SIGINT');
    killTimer = setTimeout(() => proc.kill('SIGKILL'), 60_000);
  }, timeoutMs);
  const code = await new Promise<number | null>((r) => proc.once('exit', (c) => r(c)));
  clearTimeout(timer);
  clearTimeout(killTimer);
  return { code, stdout, stderr, output, timedOut };
}

/** Starts `warren api` on a free port and waits until /readyz answers 200. */
export async function startApi(env: Record<string, string | undefined>): Promise<WarrenProcess & { base: string }> {
  // The "api listening" line (info) gives the port, so the level is info whatever the caller set.
  const p = startWarren(['api'], { PORT: '0', ...env, LOG_LEVEL: 'info' });
  const port = await waitFor(
    'api listening',
    () => {
      if (p.proc.exitCode !== null) throw new Error(`api exited ${p.proc.exitCode}: ${p.output().slice(-2000)}`);
      const line = p
        .output()
        .split('\n')
        .find((l) => l.includes('"api listening"'));
      return line ? (JSON.parse(line) as { port: number }).port : undefined;
    },
    // A deadline, not a speed target: the embedded store's first start takes seconds, and far
    // longer on a loaded machine.
    90_000,
  );
  const base = `http://127.0.0.1:${port}`;
  await waitFor('api ready', async () => ((await fetch(`${base}/readyz`)).ok ? true : undefined), 30_000);
  return { ...p, base };
}

/** Kills whatever is still running (a failed test's leftovers). */
export function killAll(): void {
  for (const p of running) p.kill('SIGKILL');
}
