import { NAMES, type Scenario } from '../scenario.ts';

/**
 * Restart each node of a three-node cluster in turn (clean stop, start, wait until every queue
 * member is back online) under load, as an upgrade would.
 */
export const rollingRestart: Scenario = {
  name: 'rolling-restart',
  summary: 'restart each node of a 3-node cluster in turn under load',
  nodes: 3,
  basePort: 5724,
  defaults: (quick) => (quick ? { durationS: 30, rate: 20 } : { durationS: 150, rate: 50 }),
  async inject(ctx) {
    const gapMs = ctx.settings.quick ? 3000 : 15_000;
    for (let i = 0; i < ctx.nodes.nodeNames.length; i++) {
      await ctx.sleep(gapMs);
      const name = ctx.nodes.nodeNames[i] ?? `node ${i}`;
      await ctx.fault(
        `restart ${name}`,
        () => ctx.nodes.stopNode(i),
        async () => {
          await ctx.nodes.restart(i);
          await ctx.nodes.waitQueueMembersOnline(NAMES.requests);
        },
        { node: name },
      );
    }
  },
};
