import { execFile, spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** The installed RabbitMQ scripts; the Debian wrappers on PATH switch users and cannot reach our nodes. */
export const RABBIT_BIN = process.env.RABBITMQ_BIN_DIR ?? '/usr/lib/rabbitmq/bin';

export interface LocalNodeOptions {
  /** Erlang node name, e.g. `warren1@localhost`. */
  nodeName: string;
  amqpPort: number;
  /** Defaults: management on amqpPort + 10000, distribution on amqpPort + 20000. */
  managementPort?: number;
  distPort?: number;
  /** Directory for the node's data, logs and config. */
  baseDir: string;
  /** More rabbitmq.conf lines (e.g. the peers of a cluster it forms at boot). */
  extraConfig?: readonly string[];
}

/**
 * A private RabbitMQ node on loopback ports of its own (../shared/rabbitmq-local.md): for
 * `warren start` when no broker answers, and for chaos scenarios, which kill nodes and so must
 * never touch a shared broker.
 */
export class LocalRabbitNode {
  readonly options: Required<LocalNodeOptions>;

  constructor(options: LocalNodeOptions) {
    this.options = { managementPort: options.amqpPort + 10000, distPort: options.amqpPort + 20000, extraConfig: [], ...options };
  }

  get url(): string {
    return `amqp://guest:guest@127.0.0.1:${this.options.amqpPort}`;
  }

  get managementUrl(): string {
    return `http://127.0.0.1:${this.options.managementPort}`;
  }

  get pidFile(): string {
    return join(this.options.baseDir, 'pid');
  }

  static installed(): boolean {
    return existsSync(join(RABBIT_BIN, 'rabbitmq-server'));
  }

  private env(): NodeJS.ProcessEnv {
    const b = this.options.baseDir;
    return {
      ...process.env,
      RABBITMQ_NODENAME: this.options.nodeName,
      RABBITMQ_DIST_PORT: String(this.options.distPort),
      RABBITMQ_MNESIA_BASE: join(b, 'mnesia'),
      RABBITMQ_LOG_BASE: join(b, 'log'),
      RABBITMQ_CONFIG_FILE: join(b, 'rabbitmq'),
      RABBITMQ_ENABLED_PLUGINS_FILE: join(b, 'enabled_plugins'),
      RABBITMQ_PID_FILE: this.pidFile,
    };
  }

  /** Starts the node (detached) and waits until it accepts AMQP connections. */
  async start(timeoutMs = 60_000): Promise<void> {
    const b = this.options.baseDir;
    mkdirSync(b, { recursive: true });
    writeFileSync(join(b, 'enabled_plugins'), '[rabbitmq_management].\n');
    writeFileSync(
      join(b, 'rabbitmq.conf'),
      [
        `listeners.tcp.1 = 127.0.0.1:${this.options.amqpPort}`,
        'management.tcp.ip = 127.0.0.1',
        `management.tcp.port = ${this.options.managementPort}`,
        'loopback_users = none',
        ...this.options.extraConfig,
        '',
      ].join('\n'),
    );
    await new Promise<void>((resolve, reject) => {
      const child = spawn(join(RABBIT_BIN, 'rabbitmq-server'), ['-detached'], { env: this.env(), stdio: 'ignore' });
      child.on('error', reject);
      child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`rabbitmq-server -detached exited ${code}`))));
    });
    await this.waitUntilUp(timeoutMs);
  }

  async waitUntilUp(timeoutMs = 60_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (await portAnswers(this.options.amqpPort)) return;
      await new Promise((r) => setTimeout(r, 250));
    }
    throw new Error(
      `RabbitMQ node ${this.options.nodeName} did not accept connections on ${this.options.amqpPort} within ${timeoutMs} ms (logs: ${join(this.options.baseDir, 'log')})`,
    );
  }

  /** The OS pid of the node's Erlang VM, from its pid file. */
  pid(): number | undefined {
    try {
      const n = Number(readFileSync(this.pidFile, 'utf8').trim());
      return Number.isInteger(n) && n > 0 ? n : undefined;
    } catch {
      return undefined;
    }
  }

  /** SIGKILL: a real crash. */
  kill(): void {
    const pid = this.pid();
    if (pid) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* already gone */
      }
    }
  }

  /** A clean stop through rabbitmqctl; falls back to SIGKILL. */
  async stop(): Promise<void> {
    try {
      await this.ctl(['stop'], 60_000);
    } catch {
      this.kill();
    }
  }

  /** Runs rabbitmqctl against this node. */
  async ctl(args: string[], timeoutMs = 30_000): Promise<string> {
    const { stdout } = await run(join(RABBIT_BIN, 'rabbitmqctl'), ['-n', this.options.nodeName, ...args], { env: this.env(), timeout: timeoutMs });
    return stdout;
  }
}

/** True when something accepts a TCP connection on the port within `timeoutMs`. */
export function portAnswers(port: number, host = '127.0.0.1', timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host, port });
    const done = (ok: boolean) => {
      s.destroy();
      resolve(ok);
    };
    s.setTimeout(timeoutMs, () => done(false));
    s.once('connect', () => done(true));
    s.once('error', () => done(false));
  });
}
