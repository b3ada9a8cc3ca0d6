import type { Server } from 'node:http';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import {
  aggregateMetrics,
  ConfigError,
  createMetricsRegistry,
  type Logger,
  ManagementClient,
  type Registry,
  registerQueueGauges,
  serveMetrics,
} from '../core/index.ts';
import { type CompiledTopology, jobFor, loadCompiledTopology } from '../topology/index.ts';
import {
  answerMetricsRequests,
  BrokerRefusedError,
  createDemoProcessor,
  defineWorker,
  FATAL_EXIT_CODE,
  handleShutdownSignals,
  type JobDefinition,
  MissingTopologyError,
  REPLICA_ENV,
  REPLICA_SETTLED_MESSAGE,
  readDemoConfig,
  readWorkerConfig,
  resolveJobRoutes,
  resolveWorkerRoutes,
  Supervisor,
  topologyNeeds,
  type Worker,
  type WorkerConfig,
  WorkerStoppedError,
} from '../worker/index.ts';
import { loadJobs } from './load-jobs.ts';
import { cliLogger } from './log.ts';
import { WARREN_BIN } from './paths.ts';

export const USAGE = `Usage: warren worker [--handler PATH] [--replicas N] [--concurrency C]

Runs your jobs: --handler names a module whose default export is defineJob({ queue, handler })
(or an array of them), or a folder of such modules; one process consumes every job's queue.
Without --handler it runs the demo processor (the tutorial's ProcessorService) on WORKER_QUEUE.

Options:
  --handler PATH    a handler module or a folder of them (compiled JavaScript, e.g. ./dist/jobs)
  --replicas N      worker processes (default 1). N > 1 starts a supervisor that runs N child
                    processes and restarts one that dies (with backoff); N = 1 runs the worker
                    in this process (let your process manager restart it).
  --concurrency C   handlers running at once per process (prefetch: four times that);
                    overrides WORKER_CONCURRENCY.

Environment:
  AMQP_URL                   broker URL, or a comma-separated list for a cluster
  TOPOLOGY                   topology file or folder (default: the shipped processing.yaml)
  WORKER_QUEUE               queue to consume (default processing.requests)
  WORKER_CONCURRENCY         default 4
  WORKER_TIMEOUT_MS          handler timeout, a retryable failure (default 30000)
  WORKER_SHUTDOWN_GRACE_MS   time in-flight messages get on SIGTERM before requeue (default 10000)
  WORKER_RESULT_BATCH        results finished together leave in one message of up to this many
                             (default 100; 1 = one message per result)
  WORKER_METRICS_PORT        port of GET /metrics (default 9464; 0 = any free port; off = none).
                             With --replicas N the supervisor serves the sum of its replicas there.
  AMQP_MANAGEMENT_URL        management API for the queue depth gauges (default: AMQP host, port 15672)
  DEMO_DELAY_MS              simulated work per message (default 5000)
  DEMO_FAIL_RATE             0 to 1, chance of a transient failure per attempt (default 0)
  DEMO_HOOKS                 1 turns on the demo's test hooks (data "crash:..." exits the process,
                             "fail:..." always fails); off by default
  LOG_LEVEL                  fatal|error|warn|info|debug|trace|silent (default info)

Signals: SIGTERM/SIGINT stop gracefully (exit 0); a second signal forces.
`;

interface Flags {
  replicas: number;
  concurrency: number | undefined;
  handler: string | undefined;
}

export async function run(args: string[]): Promise<number> {
  const flags = parseFlags(args);
  const config = readWorkerConfig(process.env);
  const root = cliLogger('warren-worker', config.logLevel);
  const logger = config.replica === undefined ? root : root.child({ replica: config.replica });
  // Validated before anything starts, in the supervisor too: a bad topology file fails once,
  // not once per replica restart.
  const compiled = loadCompiledTopology(config.topology);
  const jobs = flags.handler === undefined ? undefined : await loadJobs(flags.handler);
  if (jobs) for (const job of jobs) jobFor(compiled, job.queue);
  else if (!compiled.routes[config.queue]) {
    throw new ConfigError('WORKER_QUEUE', `queue "${config.queue}" is not in the topology (it declares: ${Object.keys(compiled.routes).join(', ')})`);
  }
  const concurrency = flags.concurrency ?? config.concurrency;
  const code =
    config.replica === undefined && flags.replicas > 1
      ? await supervise(flags, concurrency, config, compiled, jobs, logger)
      : await runWorker(config, compiled, jobs, concurrency, logger);
  // A handler that ignores its abort signal may hold timers; the process must still end.
  setTimeout(() => process.exit(code), 2000).unref();
  return code;
}

async function runWorker(
  config: WorkerConfig,
  compiled: CompiledTopology,
  jobs: readonly JobDefinition[] | undefined,
  concurrency: number,
  logger: Logger,
): Promise<number> {
  const worker = defineWorker({
    ...(jobs ? { jobs } : { handler: createDemoProcessor(readDemoConfig(process.env)), queue: config.queue }),
    urls: config.amqpUrls,
    topology: compiled,
    logger,
    concurrency,
    timeoutMs: config.timeoutMs,
    shutdownGraceMs: config.shutdownGraceMs,
    resultBatch: config.resultBatch,
  });
  const metricsServer = await exposeMetrics(worker, config, logger);
  let requested: () => void = () => undefined;
  const stopRequested = new Promise<void>((resolve) => {
    requested = resolve;
  });
  const stop = () => {
    requested();
    return worker.stop();
  };
  const disposeSignals = handleShutdownSignals({ logger, stop, force: (signal) => process.exit(signal === 'SIGINT' ? 130 : 143) });
  // A supervised replica has an IPC channel to the supervisor: when it closes, the supervisor is
  // gone (even SIGKILLed) and nobody would stop this replica, so it stops itself.
  if (process.channel) {
    process.channel.unref();
    process.once('disconnect', () => {
      logger.warn('supervisor gone; stopping');
      stop().catch((err: unknown) => logger.error({ err }, 'stop failed'));
    });
  }
  try {
    await worker.start();
    reportFirstSettle(worker);
    await stopRequested;
    await worker.stop();
    return 0;
  } catch (err) {
    if (err instanceof WorkerStoppedError) {
      await worker.stop();
      return 0;
    }
    if (err instanceof MissingTopologyError || err instanceof ConfigError || err instanceof BrokerRefusedError) {
      logger.error({ code: err.code, detail: err.message }, 'worker cannot start');
      process.stderr.write(`warren worker: ${err.message}\n`);
      return FATAL_EXIT_CODE;
    }
    throw err;
  } finally {
    disposeSignals();
    metricsServer?.close();
  }
}

/**
 * A supervised replica answers the supervisor's metrics requests over IPC (the supervisor
 * serves the sum); a worker on its own serves GET /metrics itself, with the queue depth gauges.
 */
async function exposeMetrics(worker: Worker, config: WorkerConfig, logger: Logger): Promise<Server | undefined> {
  if (config.replica !== undefined) {
    answerMetricsRequests(worker.registry, logger);
    return undefined;
  }
  if (config.metricsPort === undefined) return undefined;
  addQueueGauges(worker.registry, worker.needs.queues, config, logger);
  return serveMetrics({ source: worker.registry, port: config.metricsPort, logger });
}

function addQueueGauges(registry: Registry, queues: readonly string[], config: WorkerConfig, logger: Logger): void {
  const management = new ManagementClient({ amqpUrl: config.amqpUrls[0] as string, managementUrl: config.managementUrl });
  registerQueueGauges(registry, { management, queues, logger });
}

async function supervise(
  flags: Flags,
  concurrency: number,
  config: WorkerConfig,
  compiled: CompiledTopology,
  jobs: readonly JobDefinition[] | undefined,
  logger: Logger,
): Promise<number> {
  const handlerArgs = flags.handler === undefined ? [] : ['--handler', resolve(flags.handler)];
  const supervisor = new Supervisor({
    replicas: flags.replicas,
    command: process.execPath,
    args: [WARREN_BIN, 'worker', '--concurrency', String(concurrency), ...handlerArgs],
    env: process.env,
    replicaEnv: REPLICA_ENV,
    logger,
    stopTimeoutMs: config.shutdownGraceMs + 15_000,
  });
  const disposeSignals = handleShutdownSignals({ logger, stop: () => supervisor.stop('SIGTERM'), force: () => supervisor.kill() });
  let metricsServer: Server | undefined;
  if (config.metricsPort !== undefined) {
    const registry = createMetricsRegistry();
    const routes = jobs ? jobs.map((j) => resolveJobRoutes(compiled, jobFor(compiled, j.queue))) : [resolveWorkerRoutes(compiled, config.queue, undefined)];
    addQueueGauges(registry, [...new Set(routes.flatMap((r) => topologyNeeds(r).queues))], config, logger);
    const source = async () => aggregateMetrics([await registry.getMetricsAsJSON(), ...(await supervisor.collectMetrics())]);
    metricsServer = await serveMetrics({ source, port: config.metricsPort, logger });
  }
  try {
    supervisor.start();
    return await supervisor.done;
  } finally {
    disposeSignals();
    metricsServer?.close();
  }
}

function parseFlags(args: string[]): Flags {
  let values: { replicas?: string | undefined; concurrency?: string | undefined; handler?: string | undefined };
  try {
    ({ values } = parseArgs({
      args,
      options: { replicas: { type: 'string' }, concurrency: { type: 'string' }, handler: { type: 'string' } },
      strict: true,
      allowPositionals: false,
    }));
  } catch (err) {
    throw new ConfigError('arguments', `${(err as Error).message}\n\n${USAGE}`);
  }
  return {
    replicas: values.replicas === undefined ? 1 : intFlag('--replicas', values.replicas, 1, 64),
    concurrency: values.concurrency === undefined ? undefined : intFlag('--concurrency', values.concurrency, 1, 10_000),
    handler: values.handler,
  };
}

function intFlag(name: string, raw: string, min: number, max: number): number {
  const n = Number(raw);
  if (!/^\d+$/.test(raw) || n < min || n > max) throw new ConfigError(name, `expected an integer from ${min} to ${max} (got ${JSON.stringify(raw)})`);
  return n;
}

/** Tells the supervisor (when there is one) that this replica settled a message: it is healthy. */
function reportFirstSettle(worker: Worker): void {
  const send = process.send?.bind(process);
  if (!send) return;
  const timer = setInterval(() => {
    const c = worker.stats();
    if (c.done + c.retried + c.dead + c.malformed > 0) {
      clearInterval(timer);
      send({ type: REPLICA_SETTLED_MESSAGE });
    }
  }, 500);
  timer.unref();
}
