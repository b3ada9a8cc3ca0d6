import { parseArgs } from 'node:util';
import { ApiServer, adminRoutes, readApiConfig, TopologyMissingError, tuneApiHeap } from '../api/index.ts';
import { ConfigError } from '../core/index.ts';
import { loadCompiledTopology } from '../topology/index.ts';
import { loadJobs } from './load-jobs.ts';
import { cliLogger } from './log.ts';

export const USAGE = `Usage: warren api [--handler PATH]

Runs the HTTP API: POST /api/v1/jobs/:job (the topology's public jobs), POST /api/v1/processData
(the tutorial's job), GET /api/v1/requests/:id, /healthz, /readyz, /metrics.

Options:
  --handler PATH   your job modules (as for warren worker): their schemas are checked at the HTTP
                   front (400 naming the field) before anything is published

Environment:
  PORT                     HTTP port (default 3000; 0 picks a free one)
  AMQP_URL                 broker URL, or a comma-separated list for a cluster
  TOPOLOGY                 topology file or folder (default: the shipped topology)
  DATABASE_URL             PostgreSQL store, shared by replicas (default: embedded store)
  DATABASE_SCHEMA          PostgreSQL schema for the tables (default public)
  DATA_DIR                 folder of the embedded store (default .warren)
  API_BODY_LIMIT           largest request body (default 1mb)
  API_PUBLISH_TIMEOUT_MS   broker confirm deadline before answering 503 (default 5000, at most 10000)
  API_MAX_IN_FLIGHT        unconfirmed publishes before answering 503 at once (default 1000)
  API_RESULTS_PREFETCH     unacked results/dead events per consumer (default 50)
  ADMIN_TOKEN              the failure console at /admin and Bearer token of /api/v1/admin/* (at least 16 characters; off when unset)
  LOG_LEVEL                fatal|error|warn|info|debug|trace|silent (default info)
`;

/** Past the publish timeout, what a shutdown may take at most (bounded close steps, the store). */
const SHUTDOWN_MARGIN_MS = 10_000;

/** `warren api`: runs until SIGTERM or SIGINT, then shuts down gracefully and exits 0. */
export async function run(args: string[]): Promise<number> {
  let values: { handler?: string | undefined };
  try {
    ({ values } = parseArgs({ args, options: { handler: { type: 'string' } }, strict: true, allowPositionals: false }));
  } catch (err) {
    throw new ConfigError('arguments', `${(err as Error).message}\n\n${USAGE}`);
  }
  const config = readApiConfig(process.env);
  const logger = cliLogger('warren-api', config.logLevel);
  // Before the store's thread starts, which takes them over (api/heap.ts says what and why).
  const heapFlags = tuneApiHeap();
  if (heapFlags.length > 0) logger.debug({ flags: heapFlags }, 'V8 heap settings for a small resident set');
  const compiled = loadCompiledTopology(config.topologyPath);
  const jobs = values.handler === undefined ? undefined : await loadJobs(values.handler);
  const adminToken = config.adminToken;
  const server = new ApiServer({
    config,
    logger,
    compiled,
    ...(jobs ? { jobs } : {}),
    routes: ({ store }) =>
      adminToken ? adminRoutes({ token: adminToken, amqpUrl: config.amqpUrls[0] as string, managementUrl: config.managementUrl, compiled, store, logger }) : [],
  });
  try {
    await server.start();
  } catch (err) {
    if (!(err instanceof TopologyMissingError)) throw err;
    process.stderr.write(`warren api: ${err.message}\n`);
    return 1;
  }
  const signal = await new Promise<NodeJS.Signals>((resolve) => {
    process.once('SIGTERM', () => resolve('SIGTERM'));
    process.once('SIGINT', () => resolve('SIGINT'));
  });
  logger.info({ signal }, 'shutting down');
  // A second signal while draining means "now".
  const force = (s: NodeJS.Signals) => {
    logger.warn({ signal: s }, 'second signal; exiting without draining');
    process.exit(1);
  };
  process.once('SIGTERM', force);
  process.once('SIGINT', force);
  // Whatever the broker or the store do, the process ends within its grace: requests in flight get
  // the publish timeout, every closing step is bounded; this is the last resort.
  const deadline = setTimeout(() => {
    logger.error({ afterMs: config.publishTimeoutMs + SHUTDOWN_MARGIN_MS }, 'shutdown did not finish in time; exiting');
    process.exit(1);
  }, config.publishTimeoutMs + SHUTDOWN_MARGIN_MS);
  deadline.unref();
  await server.stop();
  clearTimeout(deadline);
  return 0;
}
