/**
 * Pure helpers of the sustained-rate section: reading the API's Prometheus text, percentiles from
 * histogram buckets, and the decision whether a step of offered load was sustained.
 */

export interface Bucket {
  /** Upper bound in seconds (Infinity for +Inf). */
  le: number;
  /** Cumulative count of observations <= le. */
  count: number;
}

/** Sum of every series of `name` (any labels) in a Prometheus text exposition; 0 when absent. */
export function metricSum(text: string, name: string): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const rest = line.slice(name.length);
    if (rest[0] !== ' ' && rest[0] !== '{') continue;
    const value = Number(line.slice(line.lastIndexOf(' ') + 1));
    if (Number.isFinite(value)) sum += value;
  }
  return sum;
}

/** The cumulative buckets of histogram `name`, summed over its other labels, by ascending `le`. */
export function histogramBuckets(text: string, name: string): Bucket[] {
  const byLe = new Map<number, number>();
  const prefix = `${name}_bucket{`;
  for (const line of text.split('\n')) {
    if (!line.startsWith(prefix)) continue;
    const le = /le="([^"]+)"/.exec(line)?.[1];
    if (le === undefined) continue;
    const bound = le === '+Inf' ? Number.POSITIVE_INFINITY : Number(le);
    const value = Number(line.slice(line.lastIndexOf(' ') + 1));
    if (Number.isNaN(bound) || !Number.isFinite(value)) continue;
    byLe.set(bound, (byLe.get(bound) ?? 0) + value);
  }
  return [...byLe.entries()].sort((a, b) => a[0] - b[0]).map(([le, count]) => ({ le, count }));
}

/** after - before, bucket by bucket (the observations made between two scrapes). */
export function bucketDelta(after: readonly Bucket[], before: readonly Bucket[]): Bucket[] {
  const old = new Map(before.map((b) => [b.le, b.count]));
  return after.map((b) => ({ le: b.le, count: b.count - (old.get(b.le) ?? 0) }));
}

/** Observations counted in the buckets (the +Inf bucket's count). */
export function observations(buckets: readonly Bucket[]): number {
  return buckets.at(-1)?.count ?? 0;
}

/**
 * The q-quantile in milliseconds, interpolated linearly inside its bucket as Prometheus's
 * histogram_quantile does (so only as fine as the buckets). A quantile in the +Inf bucket is
 * reported as the highest finite bound. undefined without observations.
 */
export function quantileMs(buckets: readonly Bucket[], q: number): number | undefined {
  const total = observations(buckets);
  if (total <= 0) return undefined;
  const rank = q * total;
  let lowerLe = 0;
  let lowerCount = 0;
  for (const b of buckets) {
    if (b.count >= rank) {
      if (!Number.isFinite(b.le)) return lowerLe * 1000;
      const inBucket = b.count - lowerCount;
      const share = inBucket > 0 ? (rank - lowerCount) / inBucket : 1;
      return (lowerLe + (b.le - lowerLe) * share) * 1000;
    }
    lowerLe = b.le;
    lowerCount = b.count;
  }
  return lowerLe * 1000;
}

/** The share of observations at or under `seconds`; exact when `seconds` is a bucket bound. */
export function shareWithin(buckets: readonly Bucket[], seconds: number): number {
  const total = observations(buckets);
  if (total <= 0) return 0;
  let within = 0;
  for (const b of buckets) if (b.le <= seconds) within = b.count;
  return within / total;
}

/** A step "accepted" the offered rate when at least this share of it was answered 202. */
export const MIN_ACCEPTED_SHARE = 0.95;
/** The backlog left when the load stops may hold at most this many seconds of the offered rate... */
export const MAX_BACKLOG_SECONDS = 0.5;
/** ...or this many requests, whichever is larger (a burst of a few hundred is not a trend). */
export const BACKLOG_FLOOR = 200;
/** e2e p99 must be under this (the OpenMessaging-style latency bound), with this share within it. */
export const E2E_BOUND_SECONDS = 1;
export const E2E_BOUND_SHARE = 0.99;

export interface StepFigures {
  offeredPerSecond: number;
  acceptedPerSecond: number;
  /** Accepted but not yet stored when the load stopped. */
  backlogAtEnd: number;
  /** Accepted in the step and still not stored after the drain. */
  undrained: number;
  /** End-to-end observations of the step (after its drain). */
  buckets: readonly Bucket[];
  /**
   * POST answered, p99 from each request's due time. e2e starts at acceptance (the time the
   * message carries), so a front that cannot accept at the offered rate shows here, not there.
   */
  httpP99Ms: number | undefined;
}

export interface StepVerdict {
  holds: boolean;
  /** Why it does not hold (empty when it does). */
  reasons: string[];
}

/**
 * A step is sustained when the offered rate was accepted (95% of it, with HTTP p99 under 1 s from
 * each request's due time), the backlog stayed bounded, every request of the step was stored after
 * the drain, and e2e p99 stayed under 1 s (decided on the bucket at exactly 1 s, not on the
 * interpolated p99).
 */
export function judgeStep(f: StepFigures): StepVerdict {
  const reasons: string[] = [];
  if (f.acceptedPerSecond < MIN_ACCEPTED_SHARE * f.offeredPerSecond)
    reasons.push(`accepted ${f.acceptedPerSecond.toFixed(0)}/s < ${MIN_ACCEPTED_SHARE} of ${f.offeredPerSecond}/s offered`);
  const maxBacklog = Math.max(BACKLOG_FLOOR, f.offeredPerSecond * MAX_BACKLOG_SECONDS);
  if (f.backlogAtEnd > maxBacklog) reasons.push(`backlog ${f.backlogAtEnd} > ${maxBacklog} when the load stopped`);
  if (f.httpP99Ms === undefined || f.httpP99Ms >= E2E_BOUND_SECONDS * 1000)
    reasons.push(
      `HTTP p99 ${f.httpP99Ms === undefined ? 'unknown' : `${f.httpP99Ms.toFixed(0)} ms`} >= ${E2E_BOUND_SECONDS * 1000} ms from the due time (not accepted at the offered rate)`,
    );
  if (f.undrained > 0) reasons.push(`${f.undrained} accepted requests not stored after the drain`);
  if (observations(f.buckets) === 0) reasons.push('no end-to-end observations');
  else {
    const within = shareWithin(f.buckets, E2E_BOUND_SECONDS);
    if (within < E2E_BOUND_SHARE) reasons.push(`only ${(within * 100).toFixed(1)}% within ${E2E_BOUND_SECONDS} s (p99 >= 1 s)`);
  }
  return { holds: reasons.length === 0, reasons };
}

/**
 * The sustained rate: the offered rate of the last step that held, stepping up from the first and
 * stopping at the first that did not (0 when the first did not hold).
 */
export function sustainedRate(steps: readonly { offeredPerSecond: number; holds: boolean }[]): number {
  let rate = 0;
  for (const s of steps) {
    if (!s.holds) break;
    rate = s.offeredPerSecond;
  }
  return rate;
}

/** The bounds of the API's `warren_end_to_end_seconds` (api/metrics.ts), for peers measured outside it. */
export const E2E_BOUNDS_SECONDS = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600];

/** Latencies in ms as cumulative buckets of `bounds` (seconds) plus +Inf: a peer read the way Warren's histogram is. */
export function bucketize(valuesMs: readonly number[], bounds: readonly number[] = E2E_BOUNDS_SECONDS): Bucket[] {
  const les = [...bounds, Number.POSITIVE_INFINITY];
  return les.map((le) => ({ le, count: valuesMs.filter((v) => v / 1000 <= le).length }));
}

/** The exact q-quantile (nearest rank) of values; undefined when empty. */
export function exactQuantile(values: readonly number[], q: number): number | undefined {
  if (values.length === 0) return undefined;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))];
}
