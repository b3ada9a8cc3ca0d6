import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { destroyNetwork, NetLayout } from './netns.ts';

/**
 * What a run started, by pid, in a small file outside the run: if the harness itself is
 * SIGKILLed (a CI timeout), its finally never runs, and the next run of the same scenario stops
 * the leftovers by their recorded pids instead of failing on busy ports.
 */
export interface RunRecord {
  /** The harness process; while it lives, the run is not a leftover but a concurrent run. */
  owner: number;
  runDir: string;
  /** Process groups we created (API, worker supervisor): killed as groups. */
  groups: number[];
  /** RabbitMQ node VMs. */
  nodes: number[];
  /** The private network of a netns scenario (namespaces, links, /etc/hosts lines). */
  network?: { id: string; subnet: number; size: number };
}

/**
 * Removes a scenario's network when no live run owns it: after a harness was SIGKILLed before it
 * wrote its record, the names alone find the pieces. Returns what was removed.
 */
export function reapNetwork(scenario: string, l: NetLayout): string[] {
  const file = join(tmpdir(), `warren-chaos-${scenario}.run.json`);
  try {
    const owner = (JSON.parse(readFileSync(file, 'utf8')) as RunRecord).owner;
    if (owner !== process.pid && alive(owner, /node/)) return [];
  } catch {
    // No record: nobody owns the names.
  }
  return destroyNetwork(l);
}

export class Leftovers {
  private readonly file: string;
  private record: RunRecord;

  constructor(scenario: string, runDir: string) {
    this.file = join(tmpdir(), `warren-chaos-${scenario}.run.json`);
    this.record = { owner: process.pid, runDir, groups: [], nodes: [] };
  }

  /** Stops what an earlier run of this scenario left behind; returns a line for the log, or undefined. */
  reapEarlier(): string | undefined {
    if (!existsSync(this.file)) return undefined;
    let old: RunRecord;
    try {
      old = JSON.parse(readFileSync(this.file, 'utf8')) as RunRecord;
    } catch {
      rmSync(this.file, { force: true });
      return undefined;
    }
    if (old.owner !== process.pid && alive(old.owner, /node/)) return undefined;
    const killed: number[] = [];
    for (const pgid of old.groups) if (alive(pgid, /warren\.js/) && signal(-pgid)) killed.push(pgid);
    for (const pid of old.nodes) if (alive(pid, /beam/) && signal(pid)) killed.push(pid);
    const net = old.network ? destroyNetwork(new NetLayout(old.network.id, old.network.subnet, old.network.size)) : [];
    rmSync(old.runDir, { recursive: true, force: true });
    rmSync(this.file, { force: true });
    return `an earlier run did not finish: stopped its processes ${killed.length ? killed.join(', ') : '(none left)'}${net.length ? `, removed ${net.join(', ')}` : ''} and removed ${old.runDir}`;
  }

  addNetwork(l: NetLayout): void {
    this.record.network = { id: l.id, subnet: l.subnet, size: l.size };
    this.save();
  }

  addGroup(pid: number | undefined): void {
    if (pid !== undefined && !this.record.groups.includes(pid)) this.record.groups.push(pid);
    this.save();
  }

  addNode(pid: number | undefined): void {
    if (pid !== undefined && !this.record.nodes.includes(pid)) this.record.nodes.push(pid);
    this.save();
  }

  /** The run cleaned up after itself. */
  clear(): void {
    try {
      if ((JSON.parse(readFileSync(this.file, 'utf8')) as RunRecord).owner === process.pid) rmSync(this.file, { force: true });
    } catch {
      // No record (nothing was started) or an unreadable one: nothing of ours to clear.
    }
  }

  private save(): void {
    writeFileSync(this.file, JSON.stringify(this.record));
  }
}

/** Alive and still the program we started (a pid can be reused). */
function alive(pid: number, cmdline: RegExp): boolean {
  try {
    return cmdline.test(readFileSync(`/proc/${pid}/cmdline`, 'utf8'));
  } catch {
    return false;
  }
}

function signal(target: number): boolean {
  try {
    process.kill(target, 'SIGKILL');
    return true;
  } catch {
    return false;
  }
}
