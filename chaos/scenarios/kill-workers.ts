import { setTimeout as sleep } from 'node:timers/promises';
import { killPid } from '../processes.ts';
import type { ChaosContext, Scenario } from '../scenario.ts';

/**
 * SIGKILL a random worker replica every few seconds; the supervisor must restart it, and the
 * messages it held unacknowledged go back to the queue and are processed by someone else.
 */
export const killWorkers: Scenario = {
  name: 'kill-workers',
  summary: 'SIGKILL random worker replicas every few seconds; the supervisor restarts them',
  nodes: 1,
  basePort: 5712,
  defaults: (quick) => (quick ? { durationS: 20, rate: 20, demoDelayMs: 50 } : { durationS: 120, rate: 50, demoDelayMs: 50 }),
  async inject(ctx) {
    const kills = ctx.settings.quick ? 4 : 20;
    const everyMs = ctx.settings.quick ? 3000 : 5000;
    for (let i = 1; i <= kills; i++) {
      await ctx.sleep(everyMs);
      const pids = ctx.system.workers.children();
      const victim = pids[Math.floor(Math.random() * pids.length)];
      if (victim === undefined) {
        ctx.log('no worker replica alive to kill');
        continue;
      }
      const detail: Record<string, unknown> = { pid: victim };
      await ctx.fault(
        `SIGKILL worker replica #${i}`,
        async () => {
          ctx.replicas.killed.add(victim);
          killPid(victim);
        },
        async () => {
          detail.replicaBack = await replicasBack(ctx, victim, 60_000);
        },
        detail,
      );
    }
  },
  async check(ctx) {
    const back = ctx.faults.every((f) => f.detail?.replicaBack === true);
    return {
      supervisorRestartedReplicas: {
        ok: back,
        detail: `${ctx.faults.filter((f) => f.detail?.replicaBack === true).length}/${ctx.faults.length} kills followed by a restart`,
      },
      noCrashes: { ok: ctx.replicas.unexpectedRestarts === 0, detail: `${ctx.replicas.unexpectedRestarts} replica restarts beyond the harness's kills` },
    };
  },
};

/** True once the supervisor has as many live children as at the start again, none of them the victim. */
async function replicasBack(ctx: ChaosContext, victim: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const pids = ctx.replicas.sample();
    if (!pids.includes(victim) && pids.length >= ctx.replicas.initialCount) return true;
    await sleep(100);
  }
  return false;
}
