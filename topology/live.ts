import amqplib from 'amqplib';
import { ManagementClient } from '../core/index.ts';
import type { CompiledTopology } from './compile.ts';
import type { LiveState } from './plan.ts';

interface MgmtQueue {
  name: string;
  durable: boolean;
  arguments: Record<string, unknown>;
}
interface MgmtExchange {
  name: string;
  type: string;
  durable: boolean;
}
interface MgmtBinding {
  source: string;
  destination: string;
  destination_type: string;
  routing_key: string;
}

/**
 * Reads what the broker has in the URL's vhost: everything, argument by argument, from the
 * management API; or, when it is off, existence only, by AMQP passive declares.
 */
export async function readLiveState(options: { amqpUrl: string; managementUrl?: string | undefined; compiled: CompiledTopology }): Promise<LiveState> {
  const mgmt = new ManagementClient({ amqpUrl: options.amqpUrl, managementUrl: options.managementUrl });
  if (await mgmt.available()) return readFromManagement(mgmt);
  return readByPassiveChecks(options.amqpUrl, options.compiled);
}

export async function readFromManagement(mgmt: ManagementClient): Promise<LiveState> {
  const v = mgmt.vhost;
  const [queues, exchanges, bindings] = await Promise.all([
    mgmt.get<MgmtQueue[]>(`${mgmt.path('queues', v)}?columns=name,durable,arguments`),
    mgmt.get<MgmtExchange[]>(`${mgmt.path('exchanges', v)}?columns=name,type,durable`),
    mgmt.get<MgmtBinding[]>(mgmt.path('bindings', v)),
  ]);
  if (queues === undefined || exchanges === undefined || bindings === undefined) {
    throw new Error(`vhost "${v}" does not exist on the broker (warren topology apply creates it)`);
  }
  return {
    detailed: true,
    queues: queues.map((q) => ({ name: q.name, durable: q.durable, arguments: q.arguments ?? {} })),
    exchanges: exchanges.map((e) => ({ name: e.name, type: e.type, durable: e.durable })),
    bindings: bindings
      .filter((b) => b.destination_type === 'queue' && b.source !== '')
      .map((b) => ({ exchange: b.source, queue: b.destination, routingKey: b.routing_key })),
  };
}

async function readByPassiveChecks(amqpUrl: string, compiled: CompiledTopology): Promise<LiveState> {
  const conn = await amqplib.connect(amqpUrl);
  const state: LiveState = { detailed: false, exchanges: [], queues: [], bindings: [] };
  try {
    // A failed passive declare closes its channel (404 NOT_FOUND), so each check gets its own.
    for (const ex of compiled.exchanges) {
      const ch = await conn.createChannel();
      ch.on('error', () => {});
      try {
        await ch.checkExchange(ex.name);
        state.exchanges.push({ name: ex.name, type: ex.type, durable: ex.durable });
        await ch.close();
      } catch {
        /* absent */
      }
    }
    for (const q of compiled.queues) {
      const ch = await conn.createChannel();
      ch.on('error', () => {});
      try {
        await ch.checkQueue(q.name);
        state.queues.push({ name: q.name, durable: q.durable, arguments: {} });
        await ch.close();
      } catch {
        /* absent */
      }
    }
  } finally {
    await conn.close().catch(() => {});
  }
  return state;
}
