import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { drain } from './drain.ts';
import { Ledger } from './ledger.ts';
import { Leftovers } from './leftovers.ts';
import { LoadDriver } from './load-driver.ts';
import { QueueWatch } from './queue-watch.ts';
import { RabbitNodes } from './rabbit-nodes.ts';
import { passed, reconcile } from './reconcile.ts';
import { measureRecovery } from './recovery.ts';
import { ReplicaWatch } from './replica-watch.ts';
import type { ChaosReport, FaultRecord } from './report.ts';
import { emptyReport, logTails, queueSummary } from './run-report.ts';
import { type ChaosContext, type Check, NAMES, type Scenario, type ScenarioSettings } from './scenario.ts';
import { WarrenSystem } from './system.ts';

export interface RunOptions {
  root: string;
  settings: ScenarioSettings;
  /** Keep the temp folder (broker data, logs, store) for a post-mortem. */
  keep?: boolean;
  signal?: AbortSignal;
  log: (msg: string) => void;
}

/**
 * One scenario, end to end: private node(s), topology, API and workers as real processes, load,
 * faults, drain, reconciliation. Everything it starts is stopped in `finally`, and at once when
 * the run is interrupted.
 */
export async function runScenario(scenario: Scenario, o: RunOptions): Promise<ChaosReport> {
  const started = Date.now();
  const runDir = mkdtempSync(join(tmpdir(), `warren-chaos-${scenario.name}-`));
  const s = o.settings;
  const prefix = `${scenario.name}-${randomBytes(3).toString('hex')}`;
  const log = (msg: string) => o.log(`[${scenario.name} ${((Date.now() - started) / 1000).toFixed(1)}s] ${msg}`);
  const report = emptyReport(scenario.name, s, started);
  const leftovers = new Leftovers(scenario.name, runDir);
  const nodes = new RabbitNodes({
    prefix: `chaos-${scenario.name}`,
    basePort: scenario.basePort,
    size: scenario.nodes,
    baseDir: join(runDir, 'rabbit'),
    log,
    onNodeStarted: (pid) => leftovers.addNode(pid),
  });
  const ledger = new Ledger();
  const faults: FaultRecord[] = [];
  let supervising = false;
  const system = await WarrenSystem.create({
    root: o.root,
    runDir,
    amqpUrls: nodes.amqpUrls,
    topology: s.topology,
    replicas: s.replicas,
    concurrency: s.concurrency,
    demoDelayMs: s.demoDelayMs,
    logLevel: process.env.CHAOS_LOG_LEVEL ?? 'info',
    management: () => nodes.management(),
    liveUrl: async () => {
      const m = await nodes.management();
      return { amqpUrl: nodes.nodes.find((n) => n.managementUrl === m.baseUrl)?.url ?? nodes.amqpUrls[0]!, managementUrl: m.baseUrl };
    },
    hooks: {
      onStart: (pid) => leftovers.addGroup(pid),
      onUnexpectedExit: (p, rec) => {
        report.processes.unexpectedExits.push(`${p.spec.name} exited (code ${rec.code}, signal ${rec.signal}) at ${((rec.at - started) / 1000).toFixed(1)}s`);
        log(`${p.spec.name} exited unexpectedly (code ${rec.code}, signal ${rec.signal})${supervising ? '; restarting it in 1 s' : ''}`);
        // As an orchestrator would: the run goes on and the exit fails the report.
        if (supervising) setTimeout(() => p.pid === undefined && supervising && p.start(), 1000).unref();
      },
    },
  });
  const watch = new QueueWatch(() => nodes.management());
  const replicas = new ReplicaWatch(system.workers, (pid) => leftovers.addGroup(pid));
  const load = new LoadDriver({ client: system.client, ledger, rate: s.rate, durationMs: Number.POSITIVE_INFINITY, prefix, poisonEvery: s.poisonEvery });
  let loadStarted = 0;
  const recoveries: Promise<void>[] = [];
  const recoveryAbort = new AbortController();
  // Aborted by an interrupt or by cleanup, so no sleep of the run outlives it.
  const local = new AbortController();
  const signal = o.signal ? AbortSignal.any([o.signal, local.signal]) : local.signal;
  const ctx: ChaosContext = {
    settings: s,
    nodes,
    system,
    ledger,
    load,
    watch,
    replicas,
    faults,
    prefix,
    log,
    sleep: (ms) => sleep(ms, undefined, { signal }),
    elapsedS: () => (Date.now() - loadStarted) / 1000,
    fault: async (name, inject, restore, detail) => {
      // Timed from the moment the fault is in place (a clean node stop takes seconds by itself).
      await inject();
      const t0 = Date.now();
      log(`fault: ${name}`);
      const rec: FaultRecord = { fault: name, atSeconds: (t0 - loadStarted) / 1000, downSeconds: 0, recoverySeconds: null, ...(detail ? { detail } : {}) };
      faults.push(rec);
      // Measured in the background: the scenario goes on with its next fault meanwhile.
      recoveries.push(
        measureRecovery({ client: system.client, ledger, prefix, signal: recoveryAbort.signal }, t0).then(
          (secs) => {
            rec.recoverySeconds = secs;
            log(`recovered from "${name}" ${secs === null ? 'not before the end of the run' : `after ${secs.toFixed(1)} s`}`);
          },
          (err: unknown) => {
            report.errors.push(`measuring recovery from "${name}": ${(err as Error).message}`);
          },
        ),
      );
      if (restore) {
        await restore();
        rec.downSeconds = (Date.now() - t0) / 1000;
      }
      return rec;
    },
  };

  let cleaned: Promise<void> | undefined;
  const cleanup = () => {
    cleaned ??= (async () => {
      supervising = false;
      local.abort();
      recoveryAbort.abort();
      replicas.stop();
      // Each step runs even if an earlier one failed: a failure is reported, and the rest still stopped.
      const step = (what: string, p: Promise<void>) => p.catch((err: unknown) => report.errors.push(`cleanup, ${what}: ${(err as Error).message}`));
      await step('queue sampling', watch.stop());
      await step('load', load.stop());
      await step('processes', system.stop());
      await step('nodes', nodes.stopAll({ graceful: false, removeData: !o.keep }));
      if (!o.keep) rmSync(runDir, { recursive: true, force: true });
      else log(`kept ${runDir}`);
      leftovers.clear();
    })();
    return cleaned;
  };
  const onAbort = () => {
    log('interrupted: stopping everything this run started');
    void cleanup();
  };
  o.signal?.addEventListener('abort', onAbort, { once: true });

  try {
    const reaped = leftovers.reapEarlier();
    if (reaped) log(reaped);
    await nodes.assertPortsFree();
    log(`starting ${scenario.nodes} RabbitMQ node(s) on ${nodes.amqpUrls.map((u) => new URL(u).port).join(',')}`);
    await nodes.start();
    log('broker up; applying the topology');
    await system.applyTopology();
    await system.startApi();
    log('API ready; starting workers');
    await system.startWorkers(NAMES.requests);
    supervising = true;
    log(`API on ${system.client.baseUrl}, ${s.replicas} worker replicas; load ${s.rate}/s for ${s.durationS}s`);
    watch.start();
    replicas.start();
    loadStarted = Date.now();
    load.start();
    await Promise.all([scenario.inject(ctx), ctx.sleep(s.durationS * 1000)]);
    await ctx.sleep(1000);
    await load.stop();
    log(`load stopped: ${load.stats.started} requests, ${ledger.promisedIds().length} accepted`);
    // Probes still waiting (behind a backlog) get the drain's time; the drain then covers them too.
    const probesDone = Promise.all(recoveries);
    if (!(await settlesWithin(probesDone, s.drainTimeoutS * 1000))) recoveryAbort.abort();
    await probesDone;
    log('draining');
    const t = Date.now();
    const malformed = new Set(
      ledger
        .entries()
        .filter((e) => e.kind === 'malformed')
        .flatMap((e) => e.requestIds),
    );
    const d = await drain(system.client, ledger.promisedIds(), {
      timeoutMs: s.drainTimeoutS * 1000,
      settled: (id, obs) => (obs.kind === 'record' && obs.status !== 'queued') || (malformed.has(id) && obs.kind === 'missing'),
      // A management API that cannot answer proves nothing: keep waiting, as for a busy broker.
      hopeless: () => watch.brokerIdle().catch(() => false),
    });
    report.drainSeconds = d.drainedAfterMs === undefined ? null : d.drainedAfterMs / 1000;
    log(
      d.drainedAfterMs === undefined
        ? `drain incomplete after ${((Date.now() - t) / 1000).toFixed(0)}s`
        : `drained in ${(d.drainedAfterMs / 1000).toFixed(1)}s`,
    );
    const deadLetters = malformed.size > 0 ? await watch.deadLetters(NAMES.dead) : undefined;
    const brokerIdle = await watch.brokerIdle().catch(() => false);
    const r = reconcile({ entries: ledger.entries(), observations: d.observations, deadLetters, brokerIdle });
    Object.assign(report, r);
    const checks: Record<string, Check> = scenario.check ? await scenario.check(ctx) : {};
    if (report.processes.unexpectedExits.length > 0) checks.noUnexpectedExits = { ok: false, detail: report.processes.unexpectedExits.join('; ') };
    report.checks = checks;
    report.ok = passed(r) && Object.values(checks).every((c) => c.ok);
  } catch (err) {
    report.errors.push(o.signal?.aborted ? 'interrupted' : ((err as Error).stack ?? String(err)));
    report.ok = false;
  } finally {
    o.signal?.removeEventListener('abort', onAbort);
    supervising = false;
    report.duplicates = watch.redelivered;
    report.queues = queueSummary(watch);
    report.peakQueueDepth = watch.peakOf(NAMES.requests);
    report.faults = faults;
    report.recoverySeconds = faults.map((f) => f.recoverySeconds);
    report.load = { ...load.stats };
    report.processes.apiStarts = system.api.starts;
    report.processes.workerStarts = system.workers.starts;
    report.processes.workerReplicaRestarts = replicas.restarts;
    if (!report.ok) report.logTail = logTails(system);
    await cleanup();
    if (report.errors.length > 0) report.ok = false;
    report.finishedAt = new Date().toISOString();
    report.wallSeconds = (Date.now() - started) / 1000;
  }
  return report;
}

/** True when `p` settles within `ms`; the timer is cleared either way so it never holds the process. */
async function settlesWithin(p: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  try {
    return await Promise.race([p.then(() => true), timeout]);
  } finally {
    clearTimeout(timer);
  }
}
