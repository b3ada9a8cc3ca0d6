import { NAMES, netOf, type Scenario } from '../scenario.ts';

/**
 * SIGSTOP the node leading the main queue for longer than the cluster's tick time, then SIGCONT
 * it: a VM that freezes (GC pause, stolen CPU, a suspended host) is declared down by the others,
 * and comes back with an old view of the world. Its TCP sockets stay open and silent, so the
 * clients connected to it (the API, placed there on purpose) notice only through their own
 * heartbeats and deadlines. The long version then pauses the new leader too.
 */
export const pauseNode: Scenario = {
  name: 'pause-node',
  summary: 'netns cluster: SIGSTOP the main queue leader (the API node) past net_ticktime, SIGCONT it',
  nodes: 3,
  basePort: 0,
  network: { id: 'n', subnet: 32, netTicktimeS: 4 },
  totalQueue: true,
  defaults: (quick) => (quick ? { durationS: 25, rate: 20 } : { durationS: 120, rate: 50 }),
  async place({ cluster, leader, query }) {
    const others = [0, 1, 2].filter((i) => i !== leader);
    const list = (first: number) => [first, ...[0, 1, 2].filter((i) => i !== first)].map((i) => cluster.amqpUrl(i, query));
    return {
      api: list(leader),
      workers: others.map(list),
      note: `API -> ${cluster.nodeNames[leader]} (leader); workers -> ${others.map((i) => cluster.nodeNames[i]).join(', ')}`,
    };
  },
  async inject(ctx) {
    const net = netOf(ctx);
    const quick = ctx.settings.quick;
    const pauseMs = quick ? 15_000 : 30_000;
    for (let round = 1; round <= (quick ? 1 : 2); round++) {
      await ctx.sleep(quick ? 4000 : 20_000);
      const leader = net.indexOf(await net.leaderOf(NAMES.requests));
      const name = net.nodeNames[leader] ?? String(leader);
      const detail: Record<string, unknown> = {
        node: name,
        pauseS: pauseMs / 1000,
        apiNode: ctx.placement?.api[0]?.includes(net.layout.address(leader)) ?? false,
      };
      await ctx.fault(
        `SIGSTOP leader ${name}`,
        async () => {
          net.avoid(leader, true);
          net.signal(leader, 'SIGSTOP');
        },
        async () => {
          await ctx.sleep(pauseMs);
          detail.leaderWhilePaused = await net.leaderOf(NAMES.requests).catch((err: unknown) => `unknown: ${(err as Error).message}`);
          net.signal(leader, 'SIGCONT');
          net.avoid(leader, false);
          const t = Date.now();
          // Seen here: the resumed node and the others each record a partition that pause_minority
          // never clears (no side is a minority any more).
          Object.assign(detail, await net.healOrRestart(leader, quick ? 30_000 : 60_000));
          await net.waitQueueMembersOnline(NAMES.requests);
          detail.healSeconds = (Date.now() - t) / 1000;
          ctx.log(`${name} continued; cluster healed after ${detail.healSeconds} s`);
        },
        detail,
      );
    }
  },
  async check(ctx) {
    const d = ctx.faults.map((f) => f.detail ?? {});
    return {
      leaderMoved: {
        ok: d.every((x) => typeof x.leaderWhilePaused === 'string' && x.leaderWhilePaused !== x.node),
        detail: d.map((x) => `${x.node} paused, leader: ${x.leaderWhilePaused}`).join('; '),
      },
    };
  },
};
