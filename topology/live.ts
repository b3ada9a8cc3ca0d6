import amqplib from 'amqplib';
import { ManagementClient, redactUrl, vhostOf } from '../core/index.ts';
import { frameMaxHint } from './broker-version.ts';
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
 * management API; or, when it is off, existence only, by AMQP passive declares. The broker's
 * version always comes from the AMQP handshake (server properties), management API or not.
 */
export async function readLiveState(options: { amqpUrl: string; managementUrl?: string | undefined; compiled: CompiledTopology }): Promise<LiveState> {
  const mgmt = new ManagementClient({ amqpUrl: options.amqpUrl, managementUrl: options.managementUrl });
  const conn = await connectTopology(options.amqpUrl);
  try {
    const brokerVersion = brokerVersionOf(conn);
    const state = (await mgmt.available()) ? await readFromManagement(mgmt) : await readByPassiveChecks(conn, options.compiled);
    return { ...state, ...(brokerVersion ? { brokerVersion } : {}) };
  } finally {
    await conn.close().catch(() => {});
  }
}

/** The version string the broker announced in connection.start, if any. */
export function brokerVersionOf(conn: amqplib.ChannelModel): string | undefined {
  const v = (conn.connection.serverProperties as Record<string, unknown> | undefined)?.version;
  return typeof v === 'string' ? v : Buffer.isBuffer(v) ? v.toString('utf8') : undefined;
}

/**
 * An AMQP connection for plan and apply. A vhost that does not exist (or that the user may not
 * open) makes amqplib fail with "Expected ConnectionOpenOk; got <ConnectionClose ...>": the
 * error says instead which vhost on which broker, and what creates it.
 */
export async function connectTopology(amqpUrl: string): Promise<amqplib.ChannelModel> {
  try {
    const conn = await amqplib.connect(amqpUrl);
    conn.on('error', () => {});
    return conn;
  } catch (err) {
    const text = (err as Error).message;
    const hint = frameMaxHint(amqpUrl);
    let why = text.split('\n')[0] ?? text;
    if (/ConnectionOpenOk|NOT_ALLOWED|vhost/i.test(text)) {
      why =
        `the broker refused vhost "${vhostOf(amqpUrl)}" (it does not exist, or the user may not open it). ` +
        '`warren topology apply` creates it when the management API answers; without it: rabbitmqctl add_vhost <vhost> and rabbitmqctl set_permissions -p <vhost> <user> ".*" ".*" ".*"';
    }
    throw new Error(`cannot connect to ${redactUrl(amqpUrl)}: ${why}${hint ? `; ${hint}` : ''}`, { cause: err });
  }
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

async function readByPassiveChecks(conn: amqplib.ChannelModel, compiled: CompiledTopology): Promise<LiveState> {
  const state: LiveState = { detailed: false, exchanges: [], queues: [], bindings: [] };
  // A failed passive declare closes its channel (404 NOT_FOUND), so each check gets its own.
  for (const ex of compiled.exchanges) {
    if (await passive(conn, (ch) => ch.checkExchange(ex.name))) state.exchanges.push({ name: ex.name, type: ex.type, durable: ex.durable });
  }
  for (const q of compiled.queues) {
    if (await passive(conn, (ch) => ch.checkQueue(q.name))) state.queues.push({ name: q.name, durable: q.durable, arguments: {} });
  }
  return state;
}

async function passive(conn: amqplib.ChannelModel, check: (ch: amqplib.Channel) => Promise<unknown>): Promise<boolean> {
  const ch = await conn.createChannel();
  ch.on('error', () => {});
  try {
    await check(ch);
    await ch.close().catch(() => {});
    return true;
  } catch {
    return false;
  }
}
