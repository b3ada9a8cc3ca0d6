import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { apiNodeOptions } from '../../api/heap.ts';

export const WARREN_BIN = fileURLToPath(new URL('../../bin/warren.js', import.meta.url));

export interface Service {
  child: ChildProcess;
  /** Peak resident set (VmHWM) of the process and its children, in MiB. */
  peakRssMb(): number;
  /** Current resident set (VmRSS) of the process and its children, in MiB. */
  rssMb(): number;
  stop(): Promise<void>;
}

/**
 * Builds dist/ (scripts/build.js) and runs every service the bench starts from it from now on
 * (WARREN_FROM_BUILD=1, which the supervisor's replicas inherit): the compiled code an installed
 * package and the image run, without the TypeScript loader a checkout's CLI runs through (about
 * 90 MiB of the API's resident memory, and start-up time).
 */
export function runServicesFromBuild(): void {
  const build = spawnSync(process.execPath, [fileURLToPath(new URL('../../scripts/build.js', import.meta.url))], { stdio: ['ignore', 'ignore', 'inherit'] });
  if (build.status !== 0) throw new Error(`npm run build failed (exit code ${build.status}): the bench runs the compiled services`);
  process.env.WARREN_FROM_BUILD = '1';
}

let cpuProfileDir: string | undefined;

/**
 * From now on, services started here run with `--cpu-prof` and write a .cpuprofile into `dir`
 * when they exit (SIGTERM at a section's end). Node refuses --cpu-prof in NODE_OPTIONS, and a
 * worker supervisor does not pass its flags to its replicas: see startWorkers.
 */
export function profileServicesInto(dir: string): void {
  cpuProfileDir = dir;
}

/** Starts a node script as a child process with its output kept out of the bench's table. */
export function startService(args: string[], env: NodeJS.ProcessEnv): Service {
  const nodeArgs = cpuProfileDir ? ['--cpu-prof', `--cpu-prof-dir=${cpuProfileDir}`] : [];
  const child = spawn(process.execPath, [...nodeArgs, ...args], {
    env: { ...process.env, LOG_LEVEL: 'warn', WORKER_METRICS_PORT: '0', ...env },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  let peak = 0;
  // Children come and go (replicas); sample their high-water marks while they live.
  const sampler = setInterval(() => {
    peak = Math.max(peak, treeHwmKb(child.pid));
  }, 250);
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  return {
    child,
    peakRssMb: () => Math.max(peak, treeHwmKb(child.pid)) / 1024,
    rssMb: () => treeStatusKb(child.pid, 'VmRSS') / 1024,
    stop: async () => {
      peak = Math.max(peak, treeHwmKb(child.pid));
      clearInterval(sampler);
      if (child.exitCode === null) child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 15_000);
      await exited;
      clearTimeout(t);
    },
  };
}

/**
 * `replicas` Warren worker processes at `concurrency`: one `warren worker --replicas N` (the
 * supervisor and its replicas), or, while profiling, N plain `warren worker` processes, so that
 * each handling process runs with --cpu-prof. stop() stops them all.
 */
export function startWorkers(url: string, replicas: number, concurrency: number, env: NodeJS.ProcessEnv = {}): Service {
  const all = { AMQP_URL: url, ...env };
  if (!cpuProfileDir) return startService([WARREN_BIN, 'worker', '--replicas', String(replicas), '--concurrency', String(concurrency)], all);
  const each = Array.from({ length: replicas }, () => startService([WARREN_BIN, 'worker', '--concurrency', String(concurrency)], all));
  return {
    child: each[0]?.child as ChildProcess,
    peakRssMb: () => each.reduce((n, w) => n + w.peakRssMb(), 0),
    rssMb: () => each.reduce((n, w) => n + w.rssMb(), 0),
    stop: async () => {
      await Promise.all(each.map((w) => w.stop()));
    },
  };
}

/**
 * Warren's API on `port` (AMQP_URL `url`), its embedded store in a fresh temporary folder that
 * stop() removes. Wait for it with waitHttp on /readyz.
 */
export function startApi(url: string, port: number, env: NodeJS.ProcessEnv = {}): Service {
  const dir = mkdtempSync(join(tmpdir(), 'warren-bench-'));
  // Started as `warren start`, the compose file and the manifests start it (api/heap.ts).
  const api = startService([WARREN_BIN, 'api'], {
    AMQP_URL: url,
    PORT: String(port),
    DATA_DIR: dir,
    NODE_OPTIONS: apiNodeOptions(process.env.NODE_OPTIONS),
    ...env,
  });
  return {
    ...api,
    stop: async () => {
      try {
        await api.stop();
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  };
}

function treeHwmKb(pid: number | undefined): number {
  return treeStatusKb(pid, 'VmHWM');
}

function treeStatusKb(pid: number | undefined, field: 'VmHWM' | 'VmRSS'): number {
  if (!pid) return 0;
  let total = statusKb(pid, field);
  for (const c of childrenOf(pid)) total += treeStatusKb(c, field);
  return total;
}

/** A process's VmHWM or VmRSS from /proc, in kB (0 when it is gone). */
export function statusKb(pid: number, field: 'VmHWM' | 'VmRSS'): number {
  try {
    const m = new RegExp(`${field}:\\s+(\\d+) kB`).exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

export interface RssSample {
  /** Milliseconds since the recorder started. */
  atMs: number;
  mb: number;
}

/**
 * Records a service's resident set every `everyMs` until stopped. The samples carry their own
 * times: the bench's event loop also drives the load, so the interval is only nominal.
 */
export function recordRss(service: Service, everyMs = 100): { stop(): RssSample[] } {
  const started = performance.now();
  const samples: RssSample[] = [];
  const take = () => samples.push({ atMs: performance.now() - started, mb: service.rssMb() });
  take();
  const timer = setInterval(take, everyMs);
  return {
    stop: () => {
      clearInterval(timer);
      take();
      return samples;
    },
  };
}

export function childrenOf(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/** Polls a URL until it answers 2xx. */
export async function waitHttp(url: string, ms = 30_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(1000) });
      if (res.ok) return;
    } catch {
      /* not yet */
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`${url} did not answer within ${ms} ms`);
}
