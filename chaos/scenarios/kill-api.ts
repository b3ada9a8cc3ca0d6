import type { Scenario } from '../scenario.ts';

/**
 * SIGKILL the API mid-load and start it again on the same port and store. Clients see refused
 * or reset connections meanwhile and retry; every 202 given before the crash must still end done.
 */
export const killApi: Scenario = {
  name: 'kill-api',
  summary: 'SIGKILL the API mid-load and restart it (twice in the long version)',
  nodes: 1,
  basePort: 5713,
  defaults: (quick) => (quick ? { durationS: 20, rate: 20 } : { durationS: 120, rate: 50 }),
  async inject(ctx) {
    const gapMs = ctx.settings.quick ? 5000 : 25_000;
    const kills = ctx.settings.quick ? 1 : 2;
    for (let i = 1; i <= kills; i++) {
      await ctx.sleep(gapMs);
      await ctx.fault(
        `SIGKILL api #${i}`,
        async () => ctx.system.api.kill(),
        async () => {
          await ctx.system.api.waitForExit(10_000);
          await ctx.sleep(2000);
          await ctx.system.startApi();
        },
      );
    }
  },
};
