import { parseArgs } from 'node:util';
import { z } from 'zod';
import { amqpUrlsVar, createLogger, logLevelVar, managementUrlVar, readEnv, redactUrl, vhostOf } from '../core/index.ts';
import { applyTopology, compileTopology, DEFAULT_TOPOLOGY, formatPlan, loadTopology, planTopology, readLiveState } from '../topology/index.ts';

export const USAGE = `Usage:
  warren topology plan  [--file PATH] [--json]
      Compare the topology files with the live broker. Exit 0: nothing differs; 2: changes pending; 1: error.
  warren topology apply [--file PATH] [--prune [--force]] [--recreate QUEUE]...
      Declare what is missing (idempotent). Deletes nothing unless --prune, which keeps queues
      that hold messages or have consumers unless --force. --recreate deletes an EMPTY queue
      whose arguments differ and declares it anew.

The topology comes from --file, else TOPOLOGY, else the shipped topology/processing.yaml.
The broker and vhost come from AMQP_URL (the first URL of a list); AMQP_MANAGEMENT_URL overrides
the management API address (default: the AMQP host, port 15672).
`;

export async function run(args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  if (sub !== 'plan' && sub !== 'apply') {
    process.stderr.write(USAGE);
    return sub === '--help' ? 0 : 1;
  }
  const { values } = parseArgs({
    args: rest,
    options: {
      file: { type: 'string' },
      json: { type: 'boolean', default: false },
      prune: { type: 'boolean', default: false },
      force: { type: 'boolean', default: false },
      recreate: { type: 'string', multiple: true, default: [] },
    },
  });
  const env = readEnv({
    AMQP_URL: amqpUrlsVar(),
    AMQP_MANAGEMENT_URL: managementUrlVar(),
    TOPOLOGY: z.string().optional(),
    LOG_LEVEL: logLevelVar(),
  });
  const path = values.file ?? env.TOPOLOGY ?? DEFAULT_TOPOLOGY;
  // Validation comes first and throws a TopologyError: an invalid file declares nothing.
  const compiled = compileTopology(loadTopology(path));
  for (const w of compiled.warnings) process.stderr.write(`warning: ${w}\n`);
  const amqpUrl = env.AMQP_URL[0] as string;
  const vhost = vhostOf(amqpUrl);

  if (sub === 'plan') {
    const live = await readLiveState({ amqpUrl, managementUrl: env.AMQP_MANAGEMENT_URL, compiled });
    const plan = planTopology(compiled, live);
    if (values.json)
      process.stdout.write(
        `${JSON.stringify(
          {
            vhost,
            brokerVersion: plan.brokerVersion,
            pending: plan.pending,
            notes: plan.notes,
            items: plan.items.map(({ kind, name, action, diffs }) => ({ kind, name, action, diffs })),
          },
          null,
          2,
        )}\n`,
      );
    else process.stdout.write(`${formatPlan(plan, vhost)}\n`);
    return plan.pending ? 2 : 0;
  }

  const logger = createLogger({ name: 'warren-topology', level: env.LOG_LEVEL, destination: 2 });
  const result = await applyTopology({
    amqpUrl,
    managementUrl: env.AMQP_MANAGEMENT_URL,
    compiled,
    prune: values.prune,
    force: values.force,
    recreate: values.recreate,
    logger,
  });
  const out: string[] = [];
  out.push(`broker ${redactUrl(amqpUrl)}${result.plan.brokerVersion ? ` (RabbitMQ ${result.plan.brokerVersion})` : ''} vhost ${vhost}, topology ${path}`);
  for (const n of result.plan.notes) out.push(`  note: ${n}`);
  for (const a of result.applied) out.push(`  ${a}`);
  if (result.applied.length === 0 && !result.failed && result.conflicts.length === 0 && result.refused.length === 0)
    out.push('  nothing to do: the broker matches the topology');
  const extras = result.plan.items.filter((i) => i.action === 'extra');
  if (extras.length > 0 && !values.prune)
    out.push(
      `  ${extras.length} item(s) on the broker are not in the files (kept; --prune deletes them): ${extras.map((e) => `${e.kind} ${e.name}`).join(', ')}`,
    );
  process.stdout.write(`${out.join('\n')}\n`);
  if (result.conflicts.length > 0) {
    process.stderr.write(`\n${result.conflicts.length} item(s) cannot be changed in place:\n${result.conflicts.map((c) => `  ${c}`).join('\n')}\n`);
  }
  if (result.refused.length > 0) {
    process.stderr.write(
      `\n${result.refused.length} queue(s) not pruned because deleting them would lose messages:\n${result.refused.map((r) => `  ${r}`).join('\n')}\n`,
    );
  }
  if (result.failed) {
    process.stderr.write(
      `\napply stopped at ${result.failed.item}: ${result.failed.error}\n` +
        `applied before the failure: ${result.applied.length ? result.applied.join(', ') : 'nothing'}. Fix the cause and run apply again: it is idempotent.\n`,
    );
    return 1;
  }
  return result.conflicts.length > 0 || result.refused.length > 0 ? 1 : 0;
}
