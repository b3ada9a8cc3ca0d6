import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { blindWindow } from './blind-window.ts';
import type { BrokerCluster } from './broker-cluster.ts';
import { drain } from './drain.ts';
import { Ledger } from './ledger.ts';
import { Leftovers } from './leftovers.ts';
import type { LinkProxy } from './link-proxy.ts';
import { LoadDriver } from './load-driver.ts';
import { NetLayout } from './netns.ts';
import { NetnsCluster } from './netns-cluster.ts';
import { QueueWatch } from './queue-watch.ts';
import { RabbitNodes } from './rabbit-nodes.ts';
import { passed, reconcile } from './reconcile.ts';
import { measureRecovery } from './recovery.ts';
import { ReplicaWatch } from './replica-watch.ts';
import type { ChaosReport, FaultRecord } from './report.ts';
import { emptyReport, logTails, queueSummary } from './run-report.ts';
import { type ChaosContext, type Check, NAMES, type Scenario, type ScenarioSettings } from './scenario.ts';
import { type ClientPlacement, WarrenSystem } from './system.ts';
import { installTap, readTap, totalQueue } from './total-queue.ts';

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
  // Loopback scenarios are told apart by their ports too: `--base-port` runs a second copy of a
  // scenario (the self-check's) beside the suite's without sharing node names or run records.
  const runId = scenario.network ? scenario.name : `${scenario.name}-${scenario.basePort}`;
  const leftovers = new Leftovers(runId, runDir);
  const net = scenario.network
    ? new NetnsCluster({
        layout: new NetLayout(scenario.network.id, scenario.network.subnet, scenario.nodes),
        baseDir: join(runDir, 'rabbit'),
        netTicktimeS: scenario.network.netTicktimeS,
        log,
        onNodeStarted: (pid) => leftovers.addNode(pid),
      })
    : undefined;
  const nodes: BrokerCluster =
    net ??
    new RabbitNodes({
      prefix: `chaos-${runId}`,
      basePort: scenario.basePort,
      size: scenario.nodes,
      baseDir: join(runDir, 'rabbit'),
      log,
      onNodeStarted: (pid) => leftovers.addNode(pid),
    });
  const links = new Map<string, LinkProxy>();
  let placement: ClientPlacement | undefined;
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
    liveUrl: () => nodes.liveUrl(),
    ...(s.publishTimeoutMs ? { apiEnv: { API_PUBLISH_TIMEOUT_MS: String(s.publishTimeoutMs) } } : {}),
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
  const replicas = new ReplicaWatch(
    () => system.workerGroups,
    (pid) => leftovers.addGroup(pid),
  );
  const load = new LoadDriver({
    client: system.client,
    ledger,
    rate: s.rate,
    durationMs: Number.POSITIVE_INFINITY,
    prefix,
    poisonEvery: s.poisonEvery,
    retryWindowMs: s.retryWindowS * 1000,
  });
  let loadStarted = 0;
  let loadEnded = 0;
  const recoveries: Promise<void>[] = [];
  const recoveryAbort = new AbortController();
  // Aborted by an interrupt or by cleanup, so no sleep of the run outlives it.
  const local = new AbortController();
  const signal = o.signal ? AbortSignal.any([o.signal, local.signal]) : local.signal;
  const ctx: ChaosContext = {
    settings: s,
    nodes,
    net,
    links,
    get placement() {
      return placement;
    },
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
      for (const [name, link] of links) await step(`link ${name}`, link.close());
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
    if (net) leftovers.addNetwork(net.layout);
    log(`starting ${scenario.nodes} RabbitMQ node(s) at ${nodes.amqpUrls.map((u) => new URL(u).host).join(', ')}`);
    await nodes.start();
    log('broker up; applying the topology');
    await system.applyTopology();
    if (scenario.totalQueue) await installTap(await nodes.management(), { exchange: NAMES.exchange, routingKey: NAMES.resultKey });
    if (net && scenario.place) {
      const leader = net.indexOf(await net.leaderOf(NAMES.requests));
      placement = await scenario.place({ cluster: net, leader, settings: s, links, query: s.heartbeatS ? `?heartbeat=${s.heartbeatS}` : '' });
      system.place(placement);
      log(`clients: ${placement.note}`);
      report.network = {
        partitionHandling: 'pause_minority',
        netTicktimeS: net.o.netTicktimeS,
        placement: placement.note,
        leaderAtStart: net.nodeNames[leader] ?? '',
      };
    }
    // Side by side: neither needs the other to start, and each takes seconds on a busy machine.
    await Promise.all([system.startApi(), system.startWorkers(NAMES.requests)]);
    supervising = true;
    log(`API on ${system.client.baseUrl}, ${s.replicas} worker replicas; load ${s.rate}/s for ${s.durationS}s`);
    watch.start();
    replicas.start();
    loadStarted = Date.now();
    load.start();
    // A fault that could not be injected or undone fails the run, but the load so far is still
    // drained and reconciled: its figures are what a post-mortem needs.
    const injected = scenario.inject(ctx).catch((err: unknown) => {
      if (signal.aborted) throw err;
      report.errors.push(`injecting faults: ${(err as Error).stack ?? String(err)}`);
      log(`fault injection failed: ${(err as Error).message}`);
    });
    await Promise.all([injected, ctx.sleep(s.durationS * 1000)]);
    await ctx.sleep(1000);
    loadEnded = Date.now();
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
    report.answers202 = ledger.acceptTimes.length;
    report.blindWindow = blindWindow({
      acceptTimes: ledger.acceptTimes,
      loadStart: loadStarted,
      loadEnd: loadEnded,
      retries: load.retries,
      faults: faults.map((f) => ({
        fault: f.fault,
        at: loadStarted + f.atSeconds * 1000,
        until: loadStarted + (f.atSeconds + Math.max(f.downSeconds, 1)) * 1000,
      })),
      apiLogFile: system.api.spec.logFile,
      brokerLogs: {
        files: nodes.nodeNames.map((node, i) => ({ node, file: join(runDir, 'rabbit', `n${i + 1}`, 'log', `${node}.log`) })),
        queue: NAMES.requests,
      },
    });
    const afterLeader = report.blindWindow.afterLeaderS;
    log(
      `longest window without a 202: ${report.blindWindow.seconds} s (at ${report.blindWindow.fromS}-${report.blindWindow.toS} s)${afterLeader === undefined ? '' : `; ${afterLeader} s of it after ${NAMES.requests} had a new leader`}`,
    );
    const deadLetters = malformed.size > 0 || scenario.totalQueue ? await watch.deadLetters(NAMES.dead) : undefined;
    const brokerIdle = await watch.brokerIdle().catch(() => false);
    const r = reconcile({ entries: ledger.entries(), observations: d.observations, deadLetters, brokerIdle });
    Object.assign(report, r);
    const checks: Record<string, Check> = scenario.check ? await scenario.check(ctx) : {};
    if (scenario.totalQueue) {
      const dead = new Map<string, string>(deadLetters ?? []);
      for (const [id, obs] of d.observations) if (obs.kind === 'record' && obs.status === 'dead') dead.set(id, obs.reason ?? 'unknown');
      const tq = totalQueue({ entries: ledger.entries(), results: await readTap((await nodes.liveUrl()).amqpUrl), dead, unknown: ledger.unknownIds });
      report.totalQueue = tq;
      checks.totalQueue = {
        ok: tq.lost === 0 && tq.unexpected === 0,
        detail: `lost=${tq.lost} duplicated=${tq.duplicated} unexpected=${tq.unexpected} (of refused keys ${tq.unexpectedOfRefusedKeys})`,
      };
    }
    if (s.maxBlindS !== undefined && report.blindWindow) {
      checks.blindWindow = { ok: report.blindWindow.seconds <= s.maxBlindS, detail: `${report.blindWindow.seconds} s without a 202 (limit ${s.maxBlindS} s)` };
    }
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
