import type { Scenario } from '../scenario.ts';

/**
 * SIGKILL the only broker node mid-load, keep it down a few seconds, restart it with the same name
 * and data: durable quorum queues come back with every confirmed message. Twice.
 */
export const killBroker: Scenario = {
  name: 'kill-broker',
  summary: 'SIGKILL a single-node broker mid-load, restart it after a few seconds, twice',
  nodes: 1,
  basePort: 5711,
  defaults: (quick) => (quick ? { durationS: 24, rate: 20 } : { durationS: 120, rate: 50 }),
  async inject(ctx) {
    const gapMs = ctx.settings.quick ? 5000 : 25_000;
    const downMs = ctx.settings.quick ? 3000 : 5000;
    for (let i = 1; i <= 2; i++) {
      await ctx.sleep(gapMs);
      await ctx.fault(
        `SIGKILL broker #${i}`,
        () => ctx.nodes.kill(0),
        async () => {
          await ctx.sleep(downMs);
          await ctx.nodes.restart(0);
          // Idempotent for the safe topology; re-creates what an unsafe one lost, so the loss shows
          // up in the ledger instead of as a harness crash.
          await ctx.system.applyTopology();
        },
      );
    }
  },
};
