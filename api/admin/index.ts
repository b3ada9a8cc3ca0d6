import type { Router } from 'express';
import { type Logger, ManagementClient } from '../../core/index.ts';
import type { CompiledTopology } from '../../topology/index.ts';
import { DeadLetterQueues, deadLetterAdminRouter, ExportSigner } from '../dead-letters/index.ts';
import type { ResultStore } from '../store/result-store.ts';
import { AdminAuth } from './admin-auth.ts';
import { consoleRouter, queuesRouter } from './console-routes.ts';

export { AdminAuth, SESSION_COOKIE } from './admin-auth.ts';
export { type QueueRow, queueOverview } from './queue-overview.ts';

export interface AdminRoutesOptions {
  /** ADMIN_TOKEN: the routes exist only when it is set. */
  token: string;
  amqpUrl: string;
  managementUrl?: string | undefined;
  compiled: CompiledTopology;
  store: ResultStore;
  logger: Logger;
  /** Replays from the console and the routes run at most this many messages per second unless asked (default 100). */
  replayRate?: number;
}

/** Where the console is, for `npm start` and `warren api` to print. */
export const CONSOLE_PATH = '/admin';

/**
 * Everything ADMIN_TOKEN turns on, as routers for ApiServerOptions.routes: the dead-letter
 * routes, the queue overview, and the failure console page.
 */
export function adminRoutes(o: AdminRoutesOptions): Array<{ path: string; router: Router }> {
  const auth = new AdminAuth(o.token);
  const authorize = auth.middleware();
  const dlq = new DeadLetterQueues(o.amqpUrl, o.compiled, o.logger);
  const mgmt = new ManagementClient({ amqpUrl: o.amqpUrl, managementUrl: o.managementUrl });
  return [
    {
      path: '/api/v1/admin/dead-letters',
      router: deadLetterAdminRouter({ dlq, store: o.store, logger: o.logger, signer: new ExportSigner(o.token), authorize, defaultRate: o.replayRate ?? 100 }),
    },
    { path: '/api/v1/admin/queues', router: queuesRouter({ authorize, mgmt, compiled: o.compiled }) },
    { path: CONSOLE_PATH, router: consoleRouter({ auth, dlq, store: o.store, mgmt, compiled: o.compiled, logger: o.logger }) },
  ];
}
