/**
 * The client's own record of what it asked for and what the API promised. The ledger, not the
 * system under test, is the source of truth when reconciling: a request answered 202 is a promise
 * that it will end `done` (or `dead` for poison), whatever the chaos did in between.
 */

/** What a request must end as. `reason` is checked only when given. */
export type Expectation = { status: 'done'; result: string } | { status: 'dead'; reason?: string };

/**
 * load: ordinary traffic; probe: the canary the harness uses to time recovery; poison: data the
 * demo processor always fails; malformed: a non-JSON body published straight over AMQP (no 202).
 */
export type EntryKind = 'load' | 'probe' | 'poison' | 'malformed';

export interface LedgerEntry {
  /** Unique per logical request; also its data, so a wrong result is detectable. */
  readonly key: string;
  readonly kind: EntryKind;
  readonly expect: Expectation;
  /** Every requestId a 202 (or, for malformed, the AMQP publish confirm) gave for this key. */
  readonly requestIds: string[];
  /** Answers that made the client try again: 503, 429, connection refused or reset. */
  rejections: number;
  firstSentAt: number;
  acceptedAt?: number;
  /** Set when the client gave up without a 202: not a promise, so not reconciled. */
  abandoned?: string;
  /** An attempt may have taken effect without the client learning its requestId (a timeout, a reset, an unknown outcome). */
  indeterminate?: boolean;
}

export class Ledger {
  private readonly byKey = new Map<string, LedgerEntry>();
  /** When each 202 arrived (every one, retries and probes included): the blind windows are the gaps. */
  readonly acceptTimes: number[] = [];
  /** RequestIds carried by answers other than 202 (an outcome the API could not know yet). */
  readonly unknownIds = new Set<string>();

  add(key: string, kind: EntryKind, expect: Expectation, now = Date.now()): LedgerEntry {
    if (this.byKey.has(key)) throw new Error(`ledger: duplicate key ${key}`);
    const entry: LedgerEntry = { key, kind, expect, requestIds: [], rejections: 0, firstSentAt: now };
    this.byKey.set(key, entry);
    return entry;
  }

  get(key: string): LedgerEntry | undefined {
    return this.byKey.get(key);
  }

  accept(key: string, requestId: string, now = Date.now()): void {
    const e = this.must(key);
    if (!e.requestIds.includes(requestId)) e.requestIds.push(requestId);
    e.acceptedAt ??= now;
    this.acceptTimes.push(now);
  }

  /** An answer other than 202 named a requestId: it may still come out, and must not count as unexpected. */
  noteUnknown(requestId: string): void {
    this.unknownIds.add(requestId);
  }

  markIndeterminate(key: string): void {
    this.must(key).indeterminate = true;
  }

  reject(key: string): void {
    this.must(key).rejections += 1;
  }

  abandon(key: string, why: string): void {
    this.must(key).abandoned = why;
  }

  entries(): LedgerEntry[] {
    return [...this.byKey.values()];
  }

  /** Distinct requestIds promised: what the drain has to poll. */
  promisedIds(): string[] {
    return [...new Set(this.entries().flatMap((e) => e.requestIds))];
  }

  private must(key: string): LedgerEntry {
    const e = this.byKey.get(key);
    if (!e) throw new Error(`ledger: unknown key ${key}`);
    return e;
  }
}

/** The load's data strings carry their key, so the expected result follows from the data. */
export const expectDone = (data: string): Expectation => ({ status: 'done', result: `${data}-processed` });

export const expectDead = (reason?: string): Expectation => (reason === undefined ? { status: 'dead' } : { status: 'dead', reason });
