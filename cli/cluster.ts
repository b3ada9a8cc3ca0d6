import { parseArgs } from 'node:util';
import { clusterDown, clusterStatus, clusterUp } from '../chaos/index.ts';
import { PACKAGE_ROOT } from './paths.ts';

const MODES = ['pause_minority', 'autoheal', 'ignore'] as const;

export const USAGE = `Usage: warren cluster up|down|status [--purge] [--partition-handling MODE]

A local three-node RabbitMQ cluster on loopback for trying Warren's high availability:
nodes warren-1..3@localhost, AMQP 5701-5703, management 15701-15703, state in .warren/cluster/.
  up       start the nodes and join them (idempotent; about 30 s the first time)
  down     stop them cleanly (state kept; --purge deletes it)
  status   which nodes answer

--partition-handling MODE   cluster_partition_handling of the nodes (${MODES.join(' | ')};
           default pause_minority, RabbitMQ's advice for quorum queues: a node cut off from the
           majority stops serving clients instead of accepting work it cannot replicate).
           Applies to nodes started by this command.
`;

export async function run(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { purge: { type: 'boolean', default: false }, 'partition-handling': { type: 'string', default: 'pause_minority' } },
  });
  const [sub] = positionals;
  const log = (msg: string) => process.stderr.write(`${msg}\n`);
  if (sub === 'up') {
    const mode = values['partition-handling'];
    if (!(MODES as readonly string[]).includes(mode)) {
      process.stderr.write(`--partition-handling: expected one of ${MODES.join(', ')} (got ${JSON.stringify(mode)})\n`);
      return 1;
    }
    // The nodes inherit this environment; an Erlang application flag sets rabbit's setting
    // without touching the rabbitmq.conf each node writes for itself.
    const extra = process.env.RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS ?? '';
    process.env.RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS = `${extra} -rabbit cluster_partition_handling ${mode}`.trim();
    const env = await clusterUp({ root: PACKAGE_ROOT, log });
    process.stdout.write(`cluster up (cluster_partition_handling = ${mode}). Use it with:\n${env}\n(for example: ${env.split('\n').join(' ')} npm start)\n`);
    return 0;
  }
  if (sub === 'down') {
    await clusterDown({ root: PACKAGE_ROOT, log, purge: values.purge });
    process.stdout.write(`cluster down${values.purge ? '; state deleted' : ' (state kept in .warren/cluster; --purge deletes it)'}\n`);
    return 0;
  }
  if (sub === 'status') {
    const s = await clusterStatus({ root: PACKAGE_ROOT, log });
    process.stdout.write(`${s.lines.join('\n')}\n${s.up > 0 ? `${s.env}\n` : ''}`);
    return s.up === 3 ? 0 : 1;
  }
  process.stderr.write(USAGE);
  return sub === undefined ? 1 : sub === '--help' ? 0 : 1;
}
