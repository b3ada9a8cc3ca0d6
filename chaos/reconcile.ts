import type { EntryKind, Expectation, LedgerEntry } from './ledger.ts';

/** What the store (GET /api/v1/requests/:id) said about one requestId after the drain. */
export type Observation =
  | { kind: 'missing' }
  | { kind: 'record'; status: string; result?: unknown; reason?: string | undefined; attempts?: number | undefined }
  | { kind: 'unreadable'; error: string };

export type Verdict = 'done' | 'dead' | 'lost' | 'stuck' | 'unverified';

export interface Problem {
  verdict: Exclude<Verdict, 'done' | 'dead'>;
  key: string;
  requestId: string;
  kind: EntryKind;
  expected: string;
  observed: string;
}

export interface ReconcileInput {
  entries: readonly LedgerEntry[];
  observations: ReadonlyMap<string, Observation>;
  /** requestId -> reason of the messages found in the dead-letter queue (for malformed bodies the store may not know). */
  deadLetters?: ReadonlyMap<string, string>;
  /**
   * True when the broker holds nothing more that could complete a request (every work queue empty,
   * nothing unacknowledged). A request still `queued` then has no copy left anywhere: lost, not stuck.
   */
  brokerIdle: boolean;
}

export interface Reconciliation {
  /** Distinct (key, requestId) promises: each 202, or each confirmed malformed publish. */
  accepted: number;
  /** Promises that needed at least one retry (503, refused, reset) before the 202. */
  rejectedThenRetried: number;
  /** Retries in total. */
  rejections: number;
  /** Logical requests the client gave up on without a 202: no promise, not reconciled. */
  abandoned: number;
  done: number;
  dead: number;
  lost: number;
  stuck: number;
  unverified: number;
  /** Extra 202s for a key that already had one (a retry after a lost answer, published twice). */
  duplicateAccepts: number;
  deadReasons: Record<string, number>;
  /** Dead verdicts that rested on the dead-letter queue because the store did not know the requestId. */
  deadFromQueue: number;
  /** The first problems found, for the report. */
  problems: Problem[];
}

const MAX_PROBLEMS = 50;

/** Nothing counted yet: the start of a reconciliation, and a report of a run that failed early. */
export function emptyReconciliation(): Reconciliation {
  return {
    accepted: 0,
    rejectedThenRetried: 0,
    rejections: 0,
    abandoned: 0,
    done: 0,
    dead: 0,
    lost: 0,
    stuck: 0,
    unverified: 0,
    duplicateAccepts: 0,
    deadReasons: {},
    deadFromQueue: 0,
    problems: [],
  };
}

/** Pure: the verdict on every promise in the ledger, given what the store and the broker say. */
export function reconcile(input: ReconcileInput): Reconciliation {
  const r = emptyReconciliation();
  for (const entry of input.entries) {
    r.rejections += entry.rejections;
    const ids = [...new Set(entry.requestIds)];
    if (ids.length === 0) {
      if (entry.abandoned !== undefined) r.abandoned += 1;
      continue;
    }
    if (entry.rejections > 0) r.rejectedThenRetried += 1;
    r.duplicateAccepts += ids.length - 1;
    for (const requestId of ids) {
      r.accepted += 1;
      const obs = input.observations.get(requestId) ?? { kind: 'unreadable', error: 'never polled' };
      const { verdict, observed } = judge(entry.expect, obs, input.deadLetters?.get(requestId), input.brokerIdle);
      r[verdict] += 1;
      if (verdict === 'dead') {
        if (obs.kind === 'missing') r.deadFromQueue += 1;
        const reason = obs.kind === 'record' && obs.reason ? obs.reason : (input.deadLetters?.get(requestId) ?? 'unknown');
        r.deadReasons[reason] = (r.deadReasons[reason] ?? 0) + 1;
      }
      if (verdict !== 'done' && verdict !== 'dead' && r.problems.length < MAX_PROBLEMS) {
        r.problems.push({ verdict, key: entry.key, requestId, kind: entry.kind, expected: describe(entry.expect), observed });
      }
    }
  }
  return r;
}

function judge(expect: Expectation, obs: Observation, deadLetter: string | undefined, brokerIdle: boolean): { verdict: Verdict; observed: string } {
  if (obs.kind === 'unreadable') return { verdict: 'unverified', observed: `store unreadable: ${obs.error}` };
  // A malformed body has no requestId the API can trust, so the store may never hear of it; the
  // dead-letter queue is then the evidence.
  if (obs.kind === 'missing' && deadLetter !== undefined) {
    return matches(expect, 'dead', undefined, deadLetter)
      ? { verdict: 'dead', observed: `in dead-letter queue (${deadLetter})` }
      : wrong(`dead-letter queue (${deadLetter})`);
  }
  if (obs.kind === 'missing') return { verdict: 'lost', observed: 'store: 404' };
  const observed = describeRecord(obs);
  if (obs.status === 'queued') return { verdict: brokerIdle ? 'lost' : 'stuck', observed: brokerIdle ? `${observed}, broker holds nothing` : observed };
  if (obs.status === 'done' || obs.status === 'dead') {
    return matches(expect, obs.status, obs.result, obs.reason) ? { verdict: obs.status, observed } : wrong(observed);
  }
  return wrong(observed);
}

function matches(expect: Expectation, status: 'done' | 'dead', result: unknown, reason: string | undefined): boolean {
  if (expect.status !== status) return false;
  if (expect.status === 'done') return result === expect.result;
  return expect.reason === undefined || expect.reason === reason;
}

const wrong = (observed: string): { verdict: Verdict; observed: string } => ({ verdict: 'lost', observed: `wrong outcome: ${observed}` });

function describe(e: Expectation): string {
  return e.status === 'done' ? `done ${JSON.stringify(e.result)}` : `dead${e.reason ? ` (${e.reason})` : ''}`;
}

function describeRecord(o: Extract<Observation, { kind: 'record' }>): string {
  if (o.status === 'done') return `done ${JSON.stringify(o.result)}`;
  if (o.status === 'dead') return `dead (${o.reason ?? 'no reason'})`;
  return o.status;
}

/** A run passes when nothing promised went missing, stayed queued, or could not be checked. */
export function passed(r: Reconciliation): boolean {
  return r.lost === 0 && r.stuck === 0 && r.unverified === 0 && r.accepted > 0;
}
