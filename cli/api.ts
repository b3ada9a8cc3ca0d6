import { ApiServer, adminRoutes, readApiConfig, TopologyMissingError } from '../api/index.ts';
import { createLogger } from '../core/index.ts';
import { loadCompiledTopology } from '../topology/index.ts';

const HELP = `Usage: warren api

Runs the HTTP API: POST /api/v1/processData, GET /api/v1/requests/:id, /healthz, /readyz.

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

/** `warren api`: runs until SIGTERM or SIGINT, then shuts down gracefully and exits 0. */
export async function run(args: string[]): Promise<number> {
  if (args.includes('--help') || args.includes('-h')) {
    process.stdout.write(HELP);
    return 0;
  }
  const config = readApiConfig();
  const logger = createLogger({ name: 'warren-api', level: config.logLevel });
  const compiled = loadCompiledTopology(config.topologyPath);
  const adminToken = config.adminToken;
  const server = new ApiServer({
    config,
    logger,
    compiled,
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
  await server.stop();
  return 0;
}
