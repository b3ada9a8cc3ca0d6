import type { Channel } from 'amqplib';
import type { ConfirmChannelSource } from '../amqp/index.ts';
import type { AmqpConnectionManager, Logger } from '../core/index.ts';
import type { ResultStore } from './store/result-store.ts';

/** AMQP reply code of a passive declare for something that does not exist. */
const NOT_FOUND = 404;

export interface CheckResult {
  ok: boolean;
  detail?: string;
  missing?: string[];
}

export interface ReadinessReport {
  ready: boolean;
  checks: { broker: CheckResult; store: CheckResult; topology: CheckResult };
}

/** What /readyz asks. */
export interface ReadinessProbe {
  report(): Promise<ReadinessReport>;
}

export interface ReadinessOptions {
  /** The publisher's channel: the API is only useful if it can publish. */
  channels: ConfirmChannelSource;
  /** The connection topology checks run on. */
  connection: AmqpConnectionManager;
  store: ResultStore;
  needs: { exchanges: readonly string[]; queues: readonly string[] };
  logger: Logger;
  refreshMs?: number;
  storeTimeoutMs?: number;
}

/**
 * Answers /readyz. Broker and store are checked on each call (cheap); the topology check
 * (passive declares, one short-lived channel each since a 404 closes the channel) runs at each
 * (re)connect and then every `refreshMs`, and its result is cached.
 */
export class Readiness implements ReadinessProbe {
  private topology: CheckResult = { ok: false, detail: 'not checked yet (no broker connection)' };
  private checked: Promise<void> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private readonly opts: ReadinessOptions;
  private readonly log: Logger;
  private readonly onConnect = () => void this.refresh();

  constructor(options: ReadinessOptions) {
    this.opts = options;
    this.log = options.logger.child({ component: 'readiness' });
  }

  start(): void {
    this.opts.connection.on('connect', this.onConnect);
    this.timer = setInterval(() => void this.refresh(), this.opts.refreshMs ?? 30_000);
    this.timer.unref();
    if (this.opts.connection.isConnected()) void this.refresh();
  }

  stop(): void {
    clearInterval(this.timer);
    this.opts.connection.removeListener('connect', this.onConnect);
  }

  /** The last topology check; waits up to `ms` for a first one when none has run yet. */
  async topologyCheck(ms: number): Promise<CheckResult> {
    const deadline = Date.now() + ms;
    while (!this.checked && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    const first = this.checked;
    if (first) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([first, new Promise((r) => (timer = setTimeout(r, Math.max(0, deadline - Date.now()))))]);
      clearTimeout(timer);
    }
    return this.topology;
  }

  async report(): Promise<ReadinessReport> {
    const { channels } = this.opts;
    const broker: CheckResult = !channels.current
      ? { ok: false, detail: 'no broker connection' }
      : channels.blocked
        ? { ok: false, detail: 'the broker blocks publishes (resource alarm)' }
        : { ok: true };
    const store = await this.checkStore();
    const topology = this.topology;
    return { ready: broker.ok && store.ok && topology.ok, checks: { broker, store, topology } };
  }

  private refresh(): Promise<void> {
    const run = this.checkTopology()
      .then((result) => {
        if (result.ok !== this.topology.ok || result.missing?.join() !== this.topology.missing?.join()) {
          if (result.ok) this.log.info('topology present');
          else this.log.error({ missing: result.missing, detail: result.detail }, 'topology incomplete; run `warren topology apply`');
        }
        this.topology = result;
      })
      .catch((err: unknown) => {
        this.log.warn({ err: { message: (err as Error).message } }, 'topology check failed');
      });
    this.checked = run;
    return run;
  }

  private async checkTopology(): Promise<CheckResult> {
    const model = this.opts.connection.connection;
    if (!model) return { ok: false, detail: 'not checked (no broker connection)' };
    const missing: string[] = [];
    const probe = async (what: string, fn: (ch: Channel) => Promise<unknown>) => {
      const ch = await model.createChannel();
      // A failed passive declare closes the channel with 404; that is the answer, not an error.
      ch.on('error', () => undefined);
      try {
        await fn(ch);
      } catch (err) {
        if ((err as { code?: unknown }).code !== NOT_FOUND) throw err;
        missing.push(what);
        return;
      }
      await ch.close().catch(() => undefined);
    };
    for (const ex of this.opts.needs.exchanges) await probe(`exchange ${ex}`, (ch) => ch.checkExchange(ex));
    for (const q of this.opts.needs.queues) await probe(`queue ${q}`, (ch) => ch.checkQueue(q));
    if (missing.length === 0) return { ok: true };
    return { ok: false, missing, detail: 'run `warren topology apply` to declare them' };
  }

  private async checkStore(): Promise<CheckResult> {
    const ms = this.opts.storeTimeoutMs ?? 2000;
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        this.opts.store.ping(),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
        }),
      ]);
      return { ok: true };
    } catch (err) {
      const cause = err instanceof Error && err.cause instanceof Error ? `: ${err.cause.message}` : '';
      return { ok: false, detail: `store unreachable: ${(err as Error).message}${cause}` };
    } finally {
      clearTimeout(timer);
    }
  }
}
