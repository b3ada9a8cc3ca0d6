import type { DeadLetter } from './dead-letter.ts';

export interface GroupStats {
  group: string;
  reason: string;
  pattern: string;
  count: number;
  queues: string[];
  oldest: string | undefined;
  newest: string | undefined;
  /** One requestId of the group, to `dlq show`. */
  example: string | undefined;
}

/** Groups dead letters by failure fingerprint, largest group first. */
export function groupDeadLetters(letters: readonly DeadLetter[]): GroupStats[] {
  const groups = new Map<string, GroupStats>();
  for (const dl of letters) {
    const at = dl.deadAt ?? dl.lastFailure;
    let g = groups.get(dl.fingerprint.id);
    if (!g) {
      g = { group: dl.fingerprint.id, reason: dl.reason, pattern: dl.fingerprint.pattern, count: 0, queues: [], oldest: at, newest: at, example: dl.requestId };
      groups.set(dl.fingerprint.id, g);
    }
    g.count++;
    if (!g.queues.includes(dl.originQueue)) g.queues.push(dl.originQueue);
    if (at && (!g.oldest || at < g.oldest)) g.oldest = at;
    if (at && (!g.newest || at > g.newest)) g.newest = at;
  }
  return [...groups.values()].sort((a, b) => b.count - a.count || a.group.localeCompare(b.group));
}
