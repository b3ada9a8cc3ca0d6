import { execFile } from 'node:child_process';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import type { ManagementClient } from '../core/index.ts';
import { ApiClient } from './api-client.ts';
import { ManagedProcess, type ProcessHooks } from './processes.ts';

const exec = promisify(execFile);

export interface SystemOptions {
  /** The project root (where bin/warren.js lives). */
  root: string;
  /** Logs and the API's embedded store go here. */
  runDir: string;
  amqpUrls: readonly string[];
  topology: string;
  replicas: number;
  concurrency: number;
  demoDelayMs: number;
  logLevel: string;
  /** A live node's management client (nodes come and go). */
  management: () => Promise<ManagementClient>;
  /** Extra environment for the API (e.g. API_PUBLISH_TIMEOUT_MS). */
  apiEnv?: Record<string, string>;
  /** A live node's AMQP URL, for `topology apply`. */
  liveUrl: () => Promise<{ amqpUrl: string; managementUrl: string }>;
  hooks: ProcessHooks;
}

/** Which node(s) each process connects to: the API to one, worker groups spread over the others. */
export interface ClientPlacement {
  /** AMQP_URL list of the API, its own node first. */
  api: string[];
  /** One AMQP_URL list per worker supervisor; the replicas are shared out among them. */
  workers: string[][];
  /** One line for the log and the report. */
  note: string;
}

/** Warren as the user runs it: `warren api` and `warren worker` processes, and `warren topology apply`. */
export class WarrenSystem {
  readonly api: ManagedProcess;
  /** The first worker supervisor (the only one unless placed in groups). */
  readonly workers: ManagedProcess;
  /** Every worker supervisor, `workers` first. */
  readonly workerGroups: ManagedProcess[];
  readonly client: ApiClient;
  private readonly groupReplicas: number[];

  private constructor(
    private readonly o: SystemOptions,
    readonly apiPort: number,
  ) {
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      AMQP_URL: o.amqpUrls.join(','),
      TOPOLOGY: o.topology,
      LOG_LEVEL: o.logLevel,
      // Pretty logs would hide the fields the harness greps for.
      LOG_PRETTY: '0',
      // Any free port: several scenarios and a `npm start` may run on one machine.
      WORKER_METRICS_PORT: process.env.WORKER_METRICS_PORT ?? '0',
    };
    delete env.AMQP_MANAGEMENT_URL;
    delete env.DATABASE_URL;
    this.api = new ManagedProcess(
      {
        name: 'api',
        args: ['api'],
        cwd: o.root,
        logFile: join(o.runDir, 'api.log'),
        env: { ...env, PORT: String(apiPort), DATA_DIR: join(o.runDir, 'store'), ...o.apiEnv },
      },
      o.hooks,
    );
    this.workers = new ManagedProcess(
      {
        name: 'worker',
        args: ['worker', '--replicas', String(o.replicas), '--concurrency', String(o.concurrency)],
        cwd: o.root,
        logFile: join(o.runDir, 'worker.log'),
        // DEMO_HOOKS: the demo processor honours `fail:`/`crash:` data only when asked to.
        env: { ...env, DEMO_DELAY_MS: String(o.demoDelayMs), DEMO_FAIL_RATE: '0', DEMO_HOOKS: '1' },
      },
      o.hooks,
    );
    this.workerGroups = [this.workers];
    this.groupReplicas = [o.replicas];
    this.client = new ApiClient(`http://127.0.0.1:${apiPort}`);
  }

  /**
   * Points the API and the workers at given nodes before they start: the API gets its URL list,
   * and the replicas are shared out over one supervisor per worker list (a supervisor's replicas
   * all share its AMQP_URL, so spreading them takes several supervisors).
   */
  place(p: ClientPlacement): void {
    if (p.workers.length === 0 || p.workers.length > this.o.replicas) throw new Error(`placement: 1 to ${this.o.replicas} worker groups expected`);
    this.api.spec.env.AMQP_URL = p.api.join(',');
    const share = p.workers.map((_, g) => Math.floor(this.o.replicas / p.workers.length) + (g < this.o.replicas % p.workers.length ? 1 : 0));
    p.workers.forEach((urls, g) => {
      let proc = this.workerGroups[g];
      if (!proc) {
        const base = this.workers.spec;
        proc = new ManagedProcess(
          { ...base, name: `worker-${g + 1}`, logFile: base.logFile.replace(/\.log$/, `-${g + 1}.log`), env: { ...base.env }, args: [...base.args] },
          this.o.hooks,
        );
        this.workerGroups.push(proc);
      }
      proc.spec.env.AMQP_URL = urls.join(',');
      proc.spec.args = ['worker', '--replicas', String(share[g]), '--concurrency', String(this.o.concurrency)];
      this.groupReplicas[g] = share[g] ?? 0;
    });
  }

  static async create(o: SystemOptions): Promise<WarrenSystem> {
    return new WarrenSystem(o, await freePort());
  }

  /** `warren topology apply` against a live node: idempotent, and re-creates queues a restart took away. */
  async applyTopology(): Promise<string> {
    const { amqpUrl, managementUrl } = await this.o.liveUrl();
    try {
      const { stdout } = await exec(process.execPath, ['bin/warren.js', 'topology', 'apply'], {
        cwd: this.o.root,
        env: { ...process.env, AMQP_URL: amqpUrl, AMQP_MANAGEMENT_URL: managementUrl, TOPOLOGY: this.o.topology, LOG_LEVEL: 'warn' },
        timeout: 60_000,
      });
      return stdout;
    } catch (err) {
      const e = err as { stderr?: string; stdout?: string; message: string };
      throw new Error(`topology apply failed: ${(e.stderr || e.stdout || e.message).trim().slice(0, 600)}`);
    }
  }

  async startApi(timeoutMs = 120_000): Promise<void> {
    this.api.start();
    await this.waitFor('the API to answer /readyz', timeoutMs, () => this.client.ready(), this.api);
  }

  /** Starts the supervisor and waits until the main queue has at least one consumer per replica. */
  async startWorkers(queue: string, timeoutMs = 120_000): Promise<void> {
    for (const w of this.workerGroups) w.start();
    await this.waitFor(`${this.o.replicas} consumers on ${queue}`, timeoutMs, () => this.consumersAtLeast(queue, this.o.replicas), this.workers);
  }

  async consumersAtLeast(queue: string, n: number): Promise<boolean> {
    const m = await this.o.management();
    const q = await m.get<{ consumers?: number }>(m.path('queues', '/', queue));
    return (q?.consumers ?? 0) >= n;
  }

  async stop(): Promise<void> {
    await Promise.all([this.api.stop(), ...this.workerGroups.map((w) => w.stop())]);
  }

  private async waitFor(what: string, timeoutMs: number, check: () => Promise<boolean>, proc: ManagedProcess): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (proc.pid === undefined) throw new Error(`${proc.spec.name} exited while waiting for ${what} (log: ${proc.spec.logFile})`);
      if (await check().catch(() => false)) return;
      await sleep(250);
    }
    throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} (log: ${proc.spec.logFile})`);
  }
}

/** A free loopback port: bind to 0, read it, release it. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => (typeof addr === 'object' && addr ? resolve(addr.port) : reject(new Error('no port'))));
    });
  });
}
