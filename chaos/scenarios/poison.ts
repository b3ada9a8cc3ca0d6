import { publishRaw } from '../amqp-publish.ts';
import { expectDead } from '../ledger.ts';
import { countLogLines } from '../processes.ts';
import { NAMES, type Scenario } from '../scenario.ts';

/**
 * Poison in the load: every 10th request is "fail:..." (the demo processor always fails it: dead
 * after maxAttempts), and malformed bodies are published straight to the exchange (dead as
 * malformed). Everything else must end done, and no replica may crash-loop.
 */
export const poison: Scenario = {
  name: 'poison',
  summary: 'malformed and always-failing messages end dead with their reasons; no crash loop',
  nodes: 1,
  basePort: 5714,
  defaults: (quick) => (quick ? { durationS: 20, rate: 20, poisonEvery: 10 } : { durationS: 120, rate: 50, poisonEvery: 10 }),
  async inject(ctx) {
    const batches = ctx.settings.quick ? 5 : 30;
    for (let b = 1; b <= batches; b++) {
      await ctx.sleep(ctx.settings.quick ? 2500 : 3500);
      const batch = [1, 2].map((n) => `${ctx.prefix}-malformed-${b}-${n}`);
      for (const key of batch) ctx.ledger.add(key, 'malformed', expectDead('malformed'));
      await publishRaw(
        ctx.nodes.amqpUrls[0]!,
        NAMES.exchange,
        NAMES.requestKey,
        batch.map((key, n) => ({ messageId: key, body: Buffer.from(n === 0 ? `not json ${key}` : `{"requestId": "${key}", "data": `) })),
      );
      for (const key of batch) ctx.ledger.accept(key, key);
    }
  },
  async check(ctx) {
    const restarts = ctx.replicas.unexpectedRestarts;
    // The supervisor's own count, from its log, as a second opinion on the /proc sampling.
    const logged = countLogLines(ctx.system.workers.spec.logFile, /"msg":"replica exited; restarting"/);
    const worst = Math.max(restarts, logged);
    return {
      noCrashLoop: { ok: worst <= 1, detail: `${restarts} replica restart(s) seen in /proc, ${logged} in the supervisor's log (allowed: at most 1)` },
    };
  },
};
