import { execFile, execFileSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { promisify } from 'node:util';

const exec = promisify(execFile);

/** Where the node names live: every namespace sees the host's /etc/hosts (no /etc/netns override). */
const HOSTS = '/etc/hosts';

/**
 * The names of one scenario's private network, all derived from a short id so that a crashed
 * run's leftovers can be found again without a record: namespaces `wch-<id>-<n>` (also the node
 * host names), a bridge `wchb-<id>` on the host holding 10.247.<subnet>.254, and veth pairs whose
 * host ends are `wch<id><n>h`. 10.247.0.0/16 is private (RFC 1918) and lives only on this bridge.
 */
export class NetLayout {
  constructor(
    readonly id: string,
    readonly subnet: number,
    readonly size: number,
  ) {
    if (!/^[a-z]{1,3}$/.test(id)) throw new Error(`network id "${id}": expected 1-3 lower-case letters (interface names are short)`);
    if (!Number.isInteger(subnet) || subnet < 1 || subnet > 254) throw new Error(`subnet ${subnet}: expected 1-254`);
  }

  namespace(i: number): string {
    return `wch-${this.id}-${i + 1}`;
  }

  /** Host end of node i's veth pair. */
  hostVeth(i: number): string {
    return `wch${this.id}${i + 1}h`;
  }

  get bridge(): string {
    return `wchb-${this.id}`;
  }

  address(i: number): string {
    return `10.247.${this.subnet}.${i + 1}`;
  }

  /** The host's own address on the bridge: how clients on the host reach (and are seen by) the nodes. */
  get hostAddress(): string {
    return `10.247.${this.subnet}.254`;
  }

  /** Suffix of the /etc/hosts lines this layout adds, so exactly those are removed. */
  get hostsMarker(): string {
    return `# warren-chaos ${this.id}`;
  }

  get indexes(): number[] {
    return Array.from({ length: this.size }, (_, i) => i);
  }
}

/** Runs a command and returns stdout; the error names the command and its stderr. */
export async function run(cmd: string, args: string[], timeoutMs = 15_000): Promise<string> {
  try {
    const { stdout } = await exec(cmd, args, { timeout: timeoutMs });
    return stdout;
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`${cmd} ${args.join(' ')}: ${(e.stderr || e.message).trim()}`);
  }
}

/** `ip netns exec <ns> <cmd...>`. */
export function inNamespace(ns: string, cmd: string, args: string[], timeoutMs?: number): Promise<string> {
  return run('ip', ['netns', 'exec', ns, cmd, ...args], timeoutMs);
}

/** Fails with what is missing when this machine cannot build the network (not root, no `ip netns`, no iptables). */
export async function assertNetworkTools(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('the netns scenarios need root (ip netns, veth, iptables inside the namespaces)');
  await run('ip', ['netns', 'list']).catch((err: unknown) => {
    throw new Error(`ip netns is not usable here: ${(err as Error).message}`);
  });
  await run('iptables', ['--version']).catch((err: unknown) => {
    throw new Error(`iptables is not installed: ${(err as Error).message}`);
  });
}

/** True when the layout's first namespace exists (a run is up, or a crashed one left it). */
export function layoutPresent(l: NetLayout): boolean {
  return existsSync(`/run/netns/${l.namespace(0)}`) || existsSync(`/sys/class/net/${l.bridge}`);
}

/**
 * Builds the bridge, one namespace per node with its veth pair and address, and the host names.
 * A failure half way leaves pieces behind: the caller tears the layout down on every exit path.
 */
export async function createNetwork(l: NetLayout): Promise<void> {
  await run('ip', ['link', 'add', l.bridge, 'type', 'bridge']);
  await run('ip', ['addr', 'add', `${l.hostAddress}/24`, 'dev', l.bridge]);
  await run('ip', ['link', 'set', l.bridge, 'up']);
  for (const i of l.indexes) {
    const ns = l.namespace(i);
    const peer = `${l.hostVeth(i).slice(0, -1)}n`;
    await run('ip', ['netns', 'add', ns]);
    await inNamespace(ns, 'ip', ['link', 'set', 'lo', 'up']);
    await run('ip', ['link', 'add', l.hostVeth(i), 'type', 'veth', 'peer', 'name', peer]);
    await run('ip', ['link', 'set', peer, 'netns', ns]);
    await inNamespace(ns, 'ip', ['link', 'set', peer, 'name', 'eth0']);
    await inNamespace(ns, 'ip', ['addr', 'add', `${l.address(i)}/24`, 'dev', 'eth0']);
    await inNamespace(ns, 'ip', ['link', 'set', 'eth0', 'up']);
    await run('ip', ['link', 'set', l.hostVeth(i), 'master', l.bridge]);
    await run('ip', ['link', 'set', l.hostVeth(i), 'up']);
  }
  addHosts(l);
}

function addHosts(l: NetLayout): void {
  const kept = hostsWithout(l);
  const ours = l.indexes.map((i) => `${l.address(i)} ${l.namespace(i)} ${l.hostsMarker}`);
  // Written in place: /etc/hosts may be a bind mount that a rename would not replace.
  writeFileSync(HOSTS, `${[...kept, ...ours].join('\n')}\n`);
}

function hostsWithout(l: NetLayout): string[] {
  const text = existsSync(HOSTS) ? readFileSync(HOSTS, 'utf8') : '';
  return text.split('\n').filter((line) => line !== '' && !line.endsWith(l.hostsMarker));
}

/**
 * Removes everything the layout may have created, whatever state it is in: SIGKILL to every
 * process inside its namespaces (the nodes and their epmd; nothing else lives there), the
 * namespaces, the veths, the bridge and the /etc/hosts lines. Synchronous so that it can run from
 * an exit path; each step ignores "not there". Returns what it found to remove.
 */
export function destroyNetwork(l: NetLayout): string[] {
  const removed: string[] = [];
  const quiet = (cmd: string, args: string[]): string | undefined => {
    try {
      return execFileSync(cmd, args, { stdio: ['ignore', 'pipe', 'ignore'], timeout: 10_000 }).toString();
    } catch {
      return undefined;
    }
  };
  for (const i of l.indexes) {
    const ns = l.namespace(i);
    if (!existsSync(`/run/netns/${ns}`)) continue;
    const pids = (quiet('ip', ['netns', 'pids', ns]) ?? '').split(/\s+/).filter(Boolean).map(Number);
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // Gone already.
      }
    }
    quiet('ip', ['netns', 'del', ns]);
    removed.push(pids.length ? `${ns} (pids ${pids.join(',')})` : ns);
  }
  for (const i of l.indexes)
    if (existsSync(`/sys/class/net/${l.hostVeth(i)}`) && quiet('ip', ['link', 'del', l.hostVeth(i)]) !== undefined) removed.push(l.hostVeth(i));
  if (existsSync(`/sys/class/net/${l.bridge}`) && quiet('ip', ['link', 'del', l.bridge]) !== undefined) removed.push(l.bridge);
  const before = existsSync(HOSTS) ? readFileSync(HOSTS, 'utf8') : '';
  if (before.includes(l.hostsMarker)) {
    writeFileSync(HOSTS, `${hostsWithout(l).join('\n')}\n`);
    removed.push('/etc/hosts lines');
  }
  return removed;
}

/**
 * Cuts node i off from the given addresses with DROP rules inside its namespace, both ways: no
 * reset, no ICMP, as a real partition looks. `port` limits the cut to one TCP port (clients'
 * AMQP), so that the harness can still read the node's management API.
 */
export async function dropBetween(l: NetLayout, i: number, peers: string[], port?: number): Promise<void> {
  const ns = l.namespace(i);
  for (const peer of peers) {
    const inbound = ['-s', peer, ...(port ? ['-p', 'tcp', '--dport', String(port)] : [])];
    const outbound = ['-d', peer, ...(port ? ['-p', 'tcp', '--sport', String(port)] : [])];
    await inNamespace(ns, 'iptables', ['-I', 'INPUT', ...inbound, '-j', 'DROP']);
    await inNamespace(ns, 'iptables', ['-I', 'OUTPUT', ...outbound, '-j', 'DROP']);
  }
}

/** Removes every rule inside node i's namespace (the namespace is ours; nothing else puts rules there). */
export async function healNode(l: NetLayout, i: number): Promise<void> {
  await inNamespace(l.namespace(i), 'iptables', ['-F']);
}

/** The DROP rules now in node i's namespace, for the report. */
export async function rulesOf(l: NetLayout, i: number): Promise<string[]> {
  const out = await inNamespace(l.namespace(i), 'iptables', ['-S']);
  return out.split('\n').filter((r) => r.includes('DROP'));
}
