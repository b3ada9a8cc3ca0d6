import { LinkProxy } from '../link-proxy.ts';
import { AMQP_PORT } from '../netns-cluster.ts';
import type { ChaosContext, Scenario } from '../scenario.ts';

/**
 * Links that go bad without breaking: between the API and its node, then between a worker group
 * and its node (each with that one node only, so it must come back over the same link), the
 * suite's own TCP proxy first slows the link down, then stalls it (bytes held,
 * sockets open: silence, as on a black-holed route) for several seconds, then resets every
 * connection through it. No netem on this kernel: the proxy is the fault.
 */
export const slowLink: Scenario = {
  name: 'slow-link',
  summary: 'netns cluster: API<->node then worker<->node links slowed, stalled for seconds, then reset (TCP proxy)',
  nodes: 3,
  basePort: 0,
  network: { id: 's', subnet: 33, netTicktimeS: 4 },
  totalQueue: true,
  defaults: (quick) => (quick ? { durationS: 25, rate: 20 } : { durationS: 120, rate: 50 }),
  async place({ cluster, leader, links, query }) {
    const [apiNode, other] = [0, 1, 2].filter((i) => i !== leader) as [number, number];
    const through = async (name: string, node: number) => {
      const p = new LinkProxy(name, { host: cluster.layout.address(node), port: AMQP_PORT });
      await p.listen();
      links.set(name, p);
      return p.url(query);
    };
    // The proxied clients get only their proxy: after the reset they must come back over the same
    // link (a failover to another node would leave the next round's proxy unused).
    return {
      api: [await through('api', apiNode)],
      workers: [[await through('worker', leader)], [0, 1, 2].map((i) => cluster.amqpUrl((other + i) % 3, query))],
      note: `API -> proxy -> ${cluster.nodeNames[apiNode]} only; workers -> proxy -> ${cluster.nodeNames[leader]} (leader) only, and direct -> ${cluster.nodeNames[other]} (then the others)`,
    };
  },
  async inject(ctx) {
    const quick = ctx.settings.quick;
    const slowMs = quick ? 3000 : 10_000;
    const stallMs = quick ? 6000 : 20_000;
    const rounds = quick ? ['api', 'worker'] : ['api', 'worker', 'api', 'worker'];
    for (const name of rounds) {
      await ctx.sleep(quick ? 3000 : 15_000);
      await badLink(ctx, name, slowMs, stallMs);
    }
  },
  async check(ctx) {
    const d = ctx.faults.map((f) => f.detail ?? {});
    return { resetsHitConnections: { ok: d.every((x) => Number(x.reset) > 0), detail: d.map((x) => `${x.link}: ${x.reset} connections reset`).join('; ') } };
  },
};

async function badLink(ctx: ChaosContext, name: string, slowMs: number, stallMs: number): Promise<void> {
  const link = ctx.links.get(name);
  if (!link) throw new Error(`no link proxy "${name}"`);
  const detail: Record<string, unknown> = { link: name, slowS: slowMs / 1000, stallS: stallMs / 1000 };
  await ctx.fault(
    `${name} link: slow (200 ms a chunk) ${slowMs / 1000} s, stall ${stallMs / 1000} s, reset`,
    async () => link.setMode({ kind: 'delay', ms: 200 }),
    async () => {
      await ctx.sleep(slowMs);
      link.setMode({ kind: 'stall' });
      await ctx.sleep(stallMs);
      detail.openAtReset = link.open;
      detail.reset = link.reset();
      ctx.log(`${name} link reset: ${detail.reset} connection(s)`);
    },
    detail,
  );
}
