import { existsSync, readFileSync } from 'node:fs';

/** The longest stretch of the load during which no client got a 202, and what was going on in it. */
export interface BlindWindow {
  seconds: number;
  /** Seconds from the start of the load. */
  fromS: number;
  toS: number;
  /** Faults in place (or injected) during the window. */
  faults: string[];
  /** Why clients retried during the window: {"http 503": 40, "timeout": 3}. */
  retryCauses: Record<string, number>;
  /** API warnings and errors (and broker connection events) logged in the window, first ones. */
  apiLog: string[];
}

/** Pure: the largest gap between consecutive 202s within [start, end] (the edges count as 202s). */
export function longestGap(acceptTimes: readonly number[], start: number, end: number): { from: number; to: number } {
  const times = acceptTimes.filter((t) => t >= start && t <= end).sort((a, b) => a - b);
  let best = { from: start, to: times[0] ?? end };
  let prev = start;
  for (const t of [...times, end]) {
    if (t - prev > best.to - best.from) best = { from: prev, to: t };
    prev = t;
  }
  return best;
}

export interface BlindWindowInput {
  acceptTimes: readonly number[];
  loadStart: number;
  loadEnd: number;
  retries: readonly { at: number; why: string }[];
  faults: readonly { fault: string; at: number; until: number }[];
  apiLogFile?: string;
}

export function blindWindow(i: BlindWindowInput): BlindWindow {
  const g = longestGap(i.acceptTimes, i.loadStart, i.loadEnd);
  const retryCauses: Record<string, number> = {};
  for (const r of i.retries) if (r.at >= g.from && r.at <= g.to) retryCauses[r.why] = (retryCauses[r.why] ?? 0) + 1;
  return {
    seconds: round((g.to - g.from) / 1000),
    fromS: round((g.from - i.loadStart) / 1000),
    toS: round((g.to - i.loadStart) / 1000),
    faults: i.faults.filter((f) => f.at <= g.to && f.until >= g.from).map((f) => f.fault),
    retryCauses,
    apiLog: i.apiLogFile ? logLinesBetween(i.apiLogFile, g.from - 1000, g.to + 1000, 20) : [],
  };
}

const round = (n: number) => Math.round(n * 10) / 10;

/** Pino lines (JSON, `time` in ms) between two instants: warnings and errors, and the broker's connection events. */
export function logLinesBetween(file: string, from: number, to: number, max: number): string[] {
  if (!existsSync(file)) return [];
  const out: string[] = [];
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      const o = JSON.parse(line) as {
        time?: number;
        level?: number;
        msg?: string;
        component?: string;
        err?: { message?: string; code?: string };
        broker?: string;
        reason?: string;
      };
      if (typeof o.time !== 'number' || o.time < from || o.time > to) continue;
      if ((o.level ?? 0) < 40 && o.component !== 'broker' && !/broker|channel|connect/i.test(o.msg ?? '')) continue;
      const detail = [o.err?.code, o.err?.message, o.broker, o.reason].filter(Boolean).join(' ');
      out.push(`+${((o.time - from) / 1000).toFixed(1)}s ${o.component ?? ''} ${o.msg ?? ''}${detail ? `: ${detail.slice(0, 160)}` : ''}`.trim());
    } catch {
      // Not a log record.
    }
  }
  // Repeated lines (a 503 per request) say little more than the first few: keep distinct messages.
  const seen = new Set<string>();
  return out
    .filter((l) => {
      const k = l.replace(/^\+\S+ /, '');
      if (seen.has(k)) return false;
      seen.add(k);
      return true;
    })
    .slice(0, max);
}
