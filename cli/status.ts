import { parseArgs } from 'node:util';
import { z } from 'zod';
import { amqpUrlsVar, ManagementClient, type ManagementQueue, managementUrlVar, readEnv, redactUrl } from '../core/index.ts';
import { loadCompiledTopology } from '../topology/index.ts';
import { formatTable } from './table.ts';

interface MgmtConnection {
  name: string;
  client_properties?: { connection_name?: string };
  state?: string;
}

/** `warren status`: queues (depth, consumers, rates), dead letters, and the services connected. */
export async function run(args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: { json: { type: 'boolean', default: false } } });
  const env = readEnv({ AMQP_URL: amqpUrlsVar(), AMQP_MANAGEMENT_URL: managementUrlVar(), TOPOLOGY: z.string().optional() });
  const url = env.AMQP_URL[0] as string;
  const mgmt = new ManagementClient({ amqpUrl: url, managementUrl: env.AMQP_MANAGEMENT_URL });
  if (!(await mgmt.available())) {
    process.stderr.write(
      `the management API at ${mgmt.baseUrl} does not answer: enable it with rabbitmq-plugins enable rabbitmq_management, or set AMQP_MANAGEMENT_URL\n`,
    );
    return 1;
  }
  const compiled = loadCompiledTopology(env.TOPOLOGY);
  const ours = new Map(compiled.queues.map((q) => [q.name, q]));
  const [queues, connections] = await Promise.all([
    mgmt.get<ManagementQueue[]>(
      `${mgmt.path('queues', mgmt.vhost)}?columns=name,type,messages,messages_ready,messages_unacknowledged,consumers,leader,message_stats`,
    ),
    mgmt.get<MgmtConnection[]>(`/api/vhosts/${encodeURIComponent(mgmt.vhost)}/connections`),
  ]);
  const rows = (queues ?? []).filter((q) => ours.has(q.name));
  const missing = [...ours.keys()].filter((n) => !rows.some((q) => q.name === n));
  const services = new Map<string, number>();
  for (const c of connections ?? []) {
    const name = (c.client_properties?.connection_name ?? 'unnamed').replace(/-\d+$/, '');
    services.set(name, (services.get(name) ?? 0) + 1);
  }
  const dead = rows.filter((q) => ours.get(q.name)?.role === 'dead');
  const report = {
    broker: redactUrl(url),
    vhost: mgmt.vhost,
    queues: rows.map((q) => ({
      name: q.name,
      role: ours.get(q.name)?.role,
      messages: q.messages ?? 0,
      ready: q.messages_ready ?? 0,
      unacked: q.messages_unacknowledged ?? 0,
      consumers: q.consumers ?? 0,
      publishRate: q.message_stats?.publish_details?.rate ?? 0,
      deliverRate: q.message_stats?.deliver_get_details?.rate ?? 0,
      ackRate: q.message_stats?.ack_details?.rate ?? 0,
      leader: q.leader,
    })),
    deadLetters: dead.reduce((n, q) => n + (q.messages ?? 0), 0),
    services: Object.fromEntries(services),
    missingQueues: missing,
  };
  if (values.json) {
    process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
    return missing.length ? 2 : 0;
  }
  const lines = [
    `broker ${report.broker}  vhost ${report.vhost}`,
    '',
    formatTable(
      ['queue', 'role', 'messages', 'ready', 'unacked', 'consumers', 'in/s', 'out/s', 'ack/s', 'leader'],
      report.queues.map((q) => [
        q.name,
        q.role,
        q.messages,
        q.ready,
        q.unacked,
        q.consumers,
        q.publishRate.toFixed(1),
        q.deliverRate.toFixed(1),
        q.ackRate.toFixed(1),
        q.leader ?? '',
      ]),
    ),
    '',
    `dead letters: ${report.deadLetters}${report.deadLetters ? ' (npx warren dlq stats)' : ''}`,
    `services connected: ${services.size ? [...services].map(([n, c]) => `${n} x${c}`).join(', ') : 'none'}`,
  ];
  if (missing.length) lines.push(`missing queues (run npm run topology:apply): ${missing.join(', ')}`);
  process.stdout.write(`${lines.join('\n')}\n`);
  return missing.length ? 2 : 0;
}
