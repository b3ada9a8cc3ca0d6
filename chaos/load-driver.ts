import { setTimeout as sleep } from 'node:timers/promises';
import type { ApiClient } from './api-client.ts';
import { type EntryKind, type Expectation, expectDead, expectDone, type Ledger } from './ledger.ts';

export interface LoadOptions {
  client: ApiClient;
  ledger: Ledger;
  /** New logical requests per second (each retried until accepted). */
  rate: number;
  durationMs: number;
  /** Key (and data) prefix, unique per run so that results cannot be confused across runs. */
  prefix: string;
  /** Every Nth request is poison ("fail:..."), expected to end dead; 0 for none. */
  poisonEvery?: number;
  /** A logical request keeps retrying this long after its first try, then is abandoned. */
  retryWindowMs?: number;
  /** Logical requests in flight at most; past it the driver sheds (skips) new ones, as a client pool would. */
  maxOutstanding?: number;
  /** Send an Idempotency-Key per logical request, so a retry after a lost 202 cannot publish twice. */
  idempotency?: boolean;
}

export interface LoadStats {
  started: number;
  shed: number;
  /** Why retries happened, e.g. {"http 503": 40, "ECONNREFUSED": 12}. */
  retryCauses: Record<string, number>;
  refusals: Record<string, number>;
}

/**
 * Open-loop load at a fixed rate: a new logical request every 1/rate s whatever the system's
 * state, like real clients. A 503 or a refused/reset connection is retried (honouring Retry-After,
 * capped) until a 202 or the retry window closes.
 */
export class LoadDriver {
  readonly stats: LoadStats = { started: 0, shed: 0, retryCauses: {}, refusals: {} };
  /** Every retryable answer with its time, for what happened during a blind window. */
  readonly retries: { at: number; why: string }[] = [];
  private readonly inFlight = new Set<Promise<void>>();
  private seq = 0;
  private stopping = false;
  private loop: Promise<void> | undefined;

  constructor(private readonly o: LoadOptions) {}

  start(): void {
    this.loop = this.run();
  }

  /** Stops issuing new requests and waits for the ones in flight to be accepted or abandoned. */
  async stop(): Promise<void> {
    this.stopping = true;
    await this.loop;
    await Promise.all(this.inFlight);
  }

  /** Resolves when the duration is over and every request has settled. */
  async finished(): Promise<void> {
    await this.loop;
    await Promise.all(this.inFlight);
  }

  get outstanding(): number {
    return this.inFlight.size;
  }

  /** Submits one logical request with retries; resolves with its requestId, or undefined when abandoned. */
  submit(key: string, kind: EntryKind, expect: Expectation, data = key): Promise<string | undefined> {
    this.o.ledger.add(key, kind, expect);
    return this.submitWithRetries(key, data);
  }

  private async run(): Promise<void> {
    const t0 = Date.now();
    const max = this.o.maxOutstanding ?? 1000;
    let due = 0;
    const launchUpTo = (target: number) => {
      for (; due < target; due++) {
        if (this.inFlight.size >= max) {
          this.stats.shed += 1;
          continue;
        }
        this.launch();
      }
    };
    while (!this.stopping && Date.now() - t0 < this.o.durationMs) {
      launchUpTo(Math.floor(((Date.now() - t0) * this.o.rate) / 1000));
      await sleep(20);
    }
    // What fell due during the last sleep (long when the event loop lags): a run offers exactly
    // rate x duration requests unless it was stopped.
    if (!this.stopping) launchUpTo(Math.floor((this.o.durationMs * this.o.rate) / 1000));
  }

  private launch(): void {
    this.seq += 1;
    this.stats.started += 1;
    const every = this.o.poisonEvery ?? 0;
    const poison = every > 0 && this.seq % every === 0;
    const key = poison ? `fail:${this.o.prefix}-${this.seq}` : `${this.o.prefix}-${this.seq}`;
    const p = this.submit(key, poison ? 'poison' : 'load', poison ? expectDead('max-attempts') : expectDone(key)).then(() => {
      this.inFlight.delete(p);
    });
    this.inFlight.add(p);
  }

  private async submitWithRetries(key: string, data: string): Promise<string | undefined> {
    const deadline = Date.now() + (this.o.retryWindowMs ?? 60_000);
    for (let attempt = 0; ; attempt++) {
      const out = await this.o.client.post(data, this.o.idempotency === false ? undefined : key);
      if (out.kind === 'accepted') {
        this.o.ledger.accept(key, out.requestId);
        return out.requestId;
      }
      if (out.kind === 'refused') {
        this.stats.refusals[out.why] = (this.stats.refusals[out.why] ?? 0) + 1;
        this.o.ledger.abandon(key, out.why);
        return undefined;
      }
      this.stats.retryCauses[out.why] = (this.stats.retryCauses[out.why] ?? 0) + 1;
      this.retries.push({ at: Date.now(), why: out.why });
      if (out.requestId !== undefined) this.o.ledger.noteUnknown(out.requestId);
      if (out.indeterminate) this.o.ledger.markIndeterminate(key);
      this.o.ledger.reject(key);
      if (Date.now() >= deadline) {
        this.o.ledger.abandon(key, `still ${out.why} after the retry window`);
        return undefined;
      }
      await sleep(backoffMs(attempt, out.retryAfterMs));
    }
  }
}

/** Retry-After when given (capped at 2 s so the load keeps probing), else 100 ms doubling to 1.6 s, with jitter. */
export function backoffMs(attempt: number, retryAfterMs: number | undefined): number {
  const base = retryAfterMs !== undefined ? Math.min(retryAfterMs, 2000) : Math.min(100 * 2 ** attempt, 1600);
  return Math.max(50, base * (0.75 + Math.random() * 0.5));
}
