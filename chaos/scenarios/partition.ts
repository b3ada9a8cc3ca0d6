import { NAMES, netOf, type Scenario } from '../scenario.ts';

/**
 * Network partitions on a three-node cluster whose nodes live in network namespaces of their own
 * (pause_minority, net_ticktime 4 s). The API connects to a follower, the workers to the other
 * two nodes. First the node leading the main queue is cut off from the other two (clients keep
 * their links to every node, so the minority node's clients see it pause); then a 1|2 split puts
 * the API's node on the minority side, its link to the API cut silently too (no reset: the API
 * must notice by itself), while the API can still reach the majority. Each cut lasts longer
 * than the tick time; the cluster must heal before the next.
 */
export const partition: Scenario = {
  name: 'partition',
  summary: 'netns cluster: cut the main queue leader off, heal; then a 1|2 split with the API on the minority side',
  nodes: 3,
  basePort: 0,
  network: { id: 'p', subnet: 31, netTicktimeS: 4 },
  totalQueue: true,
  defaults: (quick) => (quick ? { durationS: 30, rate: 20 } : { durationS: 150, rate: 50 }),
  async place({ cluster, leader, query }) {
    const [apiNode, other] = [0, 1, 2].filter((i) => i !== leader) as [number, number];
    const list = (first: number) => [first, ...[0, 1, 2].filter((i) => i !== first)].map((i) => cluster.amqpUrl(i, query));
    return {
      api: list(apiNode),
      workers: [list(leader), list(other)],
      note: `API -> ${cluster.nodeNames[apiNode]}; workers -> ${cluster.nodeNames[leader]} (leader), ${cluster.nodeNames[other]}`,
    };
  },
  async inject(ctx) {
    const net = netOf(ctx);
    const quick = ctx.settings.quick;
    const holdMs = quick ? 15_000 : 40_000;
    const gapMs = quick ? 4000 : 20_000;
    const apiNode = net.amqpUrls.findIndex((u) => ctx.placement?.api[0]?.startsWith(u));
    const rounds: ('leader' | 'api')[] = quick ? ['leader', 'api'] : ['leader', 'api', 'leader', 'api'];
    for (const round of rounds) {
      await ctx.sleep(gapMs);
      // -1 when the main queue is gone (a non-durable classic queue whose node paused: the self-check).
      const leader = await net.leaderOf(NAMES.requests).then(
        (n) => net.indexOf(n),
        () => -1,
      );
      const victim = round === 'leader' && leader >= 0 ? leader : apiNode;
      const name = net.nodeNames[victim] ?? String(victim);
      const detail: Record<string, unknown> = {
        node: name,
        leaderBefore: net.nodeNames[leader] ?? 'none',
        apiOnMinority: victim === apiNode,
        holdS: holdMs / 1000,
      };
      await ctx.fault(
        round === 'leader' ? `isolate leader ${name} from the other nodes` : `1|2 split: API's node ${name} cut off (nodes and API link, silently)`,
        () => net.isolate(victim, { fromClients: round === 'api' }),
        async () => {
          await ctx.sleep(holdMs);
          detail.leaderDuringCut = await net.leaderOf(NAMES.requests).catch((err: unknown) => `unknown: ${(err as Error).message}`);
          await net.healAll();
          const t = Date.now();
          // A paused minority node was seen here to stay down for minutes after the heal.
          Object.assign(detail, await net.healOrRestart(victim, quick ? 45_000 : 60_000));
          await net.waitQueueMembersOnline(NAMES.requests);
          detail.healSeconds = (Date.now() - t) / 1000;
          ctx.log(`healed: ${name} back after ${detail.healSeconds} s`);
        },
        detail,
      );
    }
  },
  async check(ctx) {
    const cuts = ctx.faults.map((f) => f.detail ?? {});
    const moved = cuts.filter((d) => d.apiOnMinority === false).every((d) => typeof d.leaderDuringCut === 'string' && d.leaderDuringCut !== d.node);
    return {
      apiOnMinoritySide: { ok: cuts.some((d) => d.apiOnMinority === true), detail: 'one cut put the API on the minority side' },
      leaderMovedToMajority: { ok: moved, detail: cuts.map((d) => `${d.node} cut, leader during: ${d.leaderDuringCut}`).join('; ') },
    };
  },
};
