import { adaptToBroker, parseBrokerVersion } from './broker-version.ts';
import type { Arguments, BindingDecl, CompiledTopology, ExchangeDecl, QueueDecl } from './compile.ts';

/** What the broker has, as read by `readLiveState` (management API) or passive checks. */
export interface LiveState {
  /** false when only existence could be checked (no management plugin). */
  detailed: boolean;
  exchanges: Array<{ name: string; type: string; durable: boolean }>;
  queues: Array<{ name: string; durable: boolean; arguments: Record<string, unknown> }>;
  bindings: Array<{ exchange: string; queue: string; routingKey: string }>;
  /** As the broker announced it on connect ("3.10.8"); absent when not read. */
  brokerVersion?: string;
}

export interface ArgumentDiff {
  argument: string;
  live: unknown;
  desired: unknown;
}

export type PlanAction = 'create' | 'unchanged' | 'differs' | 'extra' | 'exists';

export interface PlanItem {
  kind: 'exchange' | 'queue' | 'binding';
  name: string;
  action: PlanAction;
  diffs?: ArgumentDiff[];
  exchange?: ExchangeDecl;
  queue?: QueueDecl;
  binding?: BindingDecl;
}

export interface Plan {
  items: PlanItem[];
  /** true when applying would create something or something differs. */
  pending: boolean;
  brokerVersion?: string;
  /** What differs on this broker version (4.x), in words (see broker-version.ts). */
  notes: string[];
}

const bindingName = (b: { exchange: string; queue: string; routingKey: string }) =>
  `${b.exchange} -> ${b.queue} (${b.routingKey === '' ? 'no key' : `key ${b.routingKey}`})`;

/**
 * Pure: compares the compiled topology with the live broker, argument by argument, after adapting
 * the declarations to the broker's version (the items carry the declarations apply will make).
 */
export function planTopology(topology: CompiledTopology, live: LiveState): Plan {
  const { compiled, notes } = adaptToBroker(topology, parseBrokerVersion(live.brokerVersion));
  const items: PlanItem[] = [];
  const liveEx = new Map(live.exchanges.map((e) => [e.name, e]));
  const liveQ = new Map(live.queues.map((q) => [q.name, q]));
  const liveB = new Set(live.bindings.map(bindingName));

  for (const ex of compiled.exchanges) {
    const l = liveEx.get(ex.name);
    if (!l) items.push({ kind: 'exchange', name: ex.name, action: 'create', exchange: ex });
    else if (!live.detailed) items.push({ kind: 'exchange', name: ex.name, action: 'exists', exchange: ex });
    else {
      const diffs: ArgumentDiff[] = [];
      if (l.type !== ex.type) diffs.push({ argument: 'type', live: l.type, desired: ex.type });
      if (l.durable !== ex.durable) diffs.push({ argument: 'durable', live: l.durable, desired: ex.durable });
      items.push({ kind: 'exchange', name: ex.name, action: diffs.length ? 'differs' : 'unchanged', exchange: ex, ...(diffs.length ? { diffs } : {}) });
    }
  }
  for (const q of compiled.queues) {
    const l = liveQ.get(q.name);
    if (!l) items.push({ kind: 'queue', name: q.name, action: 'create', queue: q });
    else if (!live.detailed) items.push({ kind: 'queue', name: q.name, action: 'exists', queue: q });
    else {
      const diffs = diffArguments(l.arguments, q.arguments);
      if (l.durable !== q.durable) diffs.unshift({ argument: 'durable', live: l.durable, desired: q.durable });
      items.push({ kind: 'queue', name: q.name, action: diffs.length ? 'differs' : 'unchanged', queue: q, ...(diffs.length ? { diffs } : {}) });
    }
  }
  // Without the management API nothing over AMQP can tell whether a binding exists (there is no
  // passive bind): a binding whose exchange and queue both exist counts as "exists, not checked",
  // like their arguments, so `plan` after `apply` converges (exit 0) instead of pending for ever.
  const present = (ex: string) => ex === '' || ex.startsWith('amq.') || liveEx.has(ex);
  for (const b of compiled.bindings) {
    const n = bindingName(b);
    let action: PlanAction = liveB.has(n) ? 'unchanged' : 'create';
    if (!live.detailed && present(b.exchange) && liveQ.has(b.queue)) action = 'exists';
    items.push({ kind: 'binding', name: n, action, binding: b });
  }

  if (live.detailed) {
    const wantEx = new Set(compiled.exchanges.map((e) => e.name));
    const wantQ = new Set(compiled.queues.map((q) => q.name));
    const wantB = new Set(compiled.bindings.map(bindingName));
    for (const e of live.exchanges) {
      if (!wantEx.has(e.name) && e.name !== '' && !e.name.startsWith('amq.')) items.push({ kind: 'exchange', name: e.name, action: 'extra' });
    }
    for (const q of live.queues) if (!wantQ.has(q.name)) items.push({ kind: 'queue', name: q.name, action: 'extra' });
    for (const b of live.bindings) {
      const n = bindingName(b);
      // Only bindings that touch our own exchanges or queues are ours to report.
      if (!wantB.has(n) && (wantEx.has(b.exchange) || wantQ.has(b.queue))) {
        items.push({ kind: 'binding', name: n, action: 'extra', binding: b });
      }
    }
  }
  return {
    items,
    pending: items.some((i) => i.action === 'create' || i.action === 'differs'),
    ...(live.brokerVersion ? { brokerVersion: live.brokerVersion } : {}),
    notes,
  };
}

/** Arguments that differ, including ones present on one side only. */
export function diffArguments(live: Record<string, unknown>, desired: Arguments): ArgumentDiff[] {
  const diffs: ArgumentDiff[] = [];
  const keys = new Set([...Object.keys(live), ...Object.keys(desired)]);
  for (const k of [...keys].sort()) {
    let l = live[k];
    const d = desired[k];
    // A queue declared without x-queue-type is classic; the management API omits the argument.
    if (k === 'x-queue-type' && l === undefined && d === 'classic') l = 'classic';
    if (!sameValue(l, d)) diffs.push({ argument: k, live: l, desired: d });
  }
  return diffs;
}

function sameValue(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a === 'number' || typeof b === 'number') return Number(a) === Number(b) && a !== undefined && b !== undefined;
  return false;
}

/** A human rendering of a plan, one line per item. */
export function formatPlan(plan: Plan, vhost: string): string {
  const lines: string[] = [];
  const sym: Record<PlanAction, string> = { create: '+ create', unchanged: '= unchanged', differs: '~ differs', extra: '? not in files', exists: '= exists' };
  for (const i of plan.items) {
    lines.push(
      `${sym[i.action].padEnd(15)} ${i.kind.padEnd(8)} ${i.name}${i.action === 'exists' ? ` (${i.kind === 'binding' ? 'not checked' : 'arguments not checked'}: management API unavailable)` : ''}`,
    );
    for (const d of i.diffs ?? []) lines.push(`${''.padEnd(24)}${d.argument}: ${fmt(d.live)} -> ${fmt(d.desired)}`);
  }
  const count = (a: PlanAction) => plan.items.filter((i) => i.action === a).length;
  lines.push('');
  for (const n of plan.notes) lines.push(`note: ${n}`);
  lines.push(
    `${plan.brokerVersion ? `RabbitMQ ${plan.brokerVersion}, ` : ''}vhost ${vhost}: ${count('create')} to create, ${count('differs')} differ, ${count('unchanged') + count('exists')} unchanged, ${count('extra')} on the broker but not in the files`,
  );
  return lines.join('\n');
}

export function fmt(v: unknown): string {
  return v === undefined ? '(unset)' : JSON.stringify(v);
}
