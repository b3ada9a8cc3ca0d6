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
  /**
   * The cluster's side of the window, from the nodes' own logs: peers declared down and the main
   * queue's leader elections in it ("+4.4s rabbit@wch-p-1: node rabbit@wch-p-2 down: net_tick_timeout").
   */
  brokerLog?: string[];
  /**
   * Seconds from the last leader election of the main queue inside the window to the window's
   * end: the clients' share, once the cluster could take a publish again (absent when the queue
   * kept its leader). The rest of the window is the cluster's failure detection and election.
   */
  afterLeaderS?: number;
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
  /** Each node's own log file, and the queue whose leader elections count (the main queue). */
  brokerLogs?: { files: readonly { node: string; file: string }[]; queue: string };
}

export function blindWindow(i: BlindWindowInput): BlindWindow {
  const g = longestGap(i.acceptTimes, i.loadStart, i.loadEnd);
  const retryCauses: Record<string, number> = {};
  for (const r of i.retries) if (r.at >= g.from && r.at <= g.to) retryCauses[r.why] = (retryCauses[r.why] ?? 0) + 1;
  const window: BlindWindow = {
    seconds: round((g.to - g.from) / 1000),
    fromS: round((g.from - i.loadStart) / 1000),
    toS: round((g.to - i.loadStart) / 1000),
    faults: i.faults.filter((f) => f.at <= g.to && f.until >= g.from).map((f) => f.fault),
    retryCauses,
    apiLog: i.apiLogFile ? logLinesBetween(i.apiLogFile, g.from - 1000, g.to + 1000, 20) : [],
  };
  if (i.brokerLogs) {
    const { files, queue } = i.brokerLogs;
    const events = files
      .flatMap(({ node, file }) => (existsSync(file) ? clusterEvents(readFileSync(file, 'utf8'), queue).map((e) => ({ ...e, node })) : []))
      .filter((e) => e.at >= g.from && e.at <= g.to)
      .sort((a, b) => a.at - b.at);
    window.brokerLog = events.map((e) => `+${((e.at - g.from) / 1000).toFixed(1)}s ${e.node}: ${e.text}`);
    const elected = events.filter((e) => e.kind === 'leader').at(-1);
    if (elected) window.afterLeaderS = round((g.to - elected.at) / 1000);
  }
  return window;
}

export interface ClusterEvent {
  at: number;
  kind: 'down' | 'leader';
  text: string;
}

/**
 * Pure: from one RabbitMQ node's log, the peers it declared down and the leader elections `queue`
 * won there ("2026-12-01 16:45:43.673598+00:00 [notice] <0.723.0> queue 'processing.requests' in
 * vhost '/': candidate -> leader in term: 3 machine version: 2").
 */
export function clusterEvents(log: string, queue: string): ClusterEvent[] {
  const out: ClusterEvent[] = [];
  const stamp = /^(\d{4}-\d\d-\d\d) (\d\d:\d\d:\d\d\.\d+)([+-]\d\d:\d\d) \[\w+\] <[^>]*> (.*)$/;
  const leader = `queue '${queue}' in vhost `;
  for (const line of log.split('\n')) {
    const m = stamp.exec(line);
    if (!m) continue;
    const [, day, time, zone, text = ''] = m;
    const at = Date.parse(`${day}T${time}${zone}`);
    if (Number.isNaN(at)) continue;
    if (text.startsWith(leader) && text.includes('candidate -> leader'))
      out.push({ at, kind: 'leader', text: `${queue} leader (${text.slice(text.indexOf('in term'))})` });
    else if (/^node '[^']+' down: /.test(text)) out.push({ at, kind: 'down', text });
  }
  return out;
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
