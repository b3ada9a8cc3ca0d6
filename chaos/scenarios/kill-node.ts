import { NAMES, type Scenario } from '../scenario.ts';

/**
 * A three-node cluster: SIGKILL the node leading the main quorum queue, restart it, then kill the
 * node that leads after that. A majority stays up throughout, so nothing confirmed may be lost;
 * clients connected to the dead node reconnect to the others (AMQP_URL lists all three).
 */
export const killNode: Scenario = {
  name: 'kill-node',
  summary: 'a 3-node cluster: SIGKILL the leader of the main queue, restart it, then another',
  nodes: 3,
  basePort: 5721,
  defaults: (quick) => (quick ? { durationS: 30, rate: 20 } : { durationS: 150, rate: 50 }),
  async inject(ctx) {
    const gapMs = ctx.settings.quick ? 5000 : 25_000;
    const downMs = ctx.settings.quick ? 4000 : 10_000;
    const killed: string[] = [];
    for (let i = 1; i <= 2; i++) {
      await ctx.sleep(gapMs);
      const leader = await ctx.nodes.leaderOf(NAMES.requests);
      const idx = ctx.nodes.indexOf(leader);
      killed.push(leader);
      const detail: Record<string, unknown> = { node: leader };
      await ctx.fault(
        `SIGKILL leader ${leader}`,
        () => ctx.nodes.kill(idx),
        async () => {
          await ctx.sleep(downMs);
          // Who took over while it was down (a follower must be elected for the queue to go on).
          detail.leaderWhileDown = await ctx.nodes.leaderOf(NAMES.requests).catch((err: unknown) => `unknown: ${(err as Error).message}`);
          await ctx.nodes.restart(idx);
          await ctx.nodes.waitQueueMembersOnline(NAMES.requests);
        },
        detail,
      );
    }
    ctx.log(`killed ${killed.join(', then ')}`);
  },
  async check(ctx) {
    const nodes = ctx.faults.map((f) => String(f.detail?.node));
    return { killedTwoDifferentNodes: { ok: new Set(nodes).size === 2, detail: nodes.join(', ') } };
  },
};
