import { ConfigError, TopologyError } from '../core/index.ts';

/** Each command lives in its own module exporting `run(args): Promise<number>` (the exit code). */
type Command = { run: (args: string[]) => Promise<number>; USAGE?: string };
const commands: Record<string, { summary: string; load: () => Promise<Command> }> = {
  topology: { summary: 'topology plan|apply   compare with / declare on the broker', load: () => import('./topology.ts') },
  worker: { summary: 'worker [--replicas N] [--concurrency C]   run the demo processor', load: () => import('./worker.ts') },
  api: { summary: 'api   run the HTTP API (PORT, default 3000)', load: () => import('./api.ts') },
  dlq: { summary: 'dlq list|show|stats|replay|purge   inspect and replay dead letters', load: () => import('./dlq.ts') },
  chaos: { summary: 'chaos <scenario>|all|list [--quick]   fault-injection scenarios (chaos/README.md)', load: () => import('./chaos.ts') },
  cluster: { summary: 'cluster up|down|status [--purge]   local 3-node RabbitMQ cluster on 5701-5703', load: () => import('./cluster.ts') },
  status: { summary: 'status   queues, dead letters and connected services at a glance', load: () => import('./status.ts') },
  start: { summary: 'start   broker (if needed), topology, API and two workers, for a newcomer', load: () => import('./start.ts') },
};

export const USAGE = `Usage: warren <command> [options]

Commands:
${Object.values(commands)
  .map((c) => `  ${c.summary}`)
  .join('\n')}

Environment: AMQP_URL (comma-separated for a cluster), TOPOLOGY, DATABASE_URL, DATA_DIR, PORT, LOG_LEVEL.
`;

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(USAGE);
    return name ? 0 : 1;
  }
  const cmd = commands[name];
  if (!cmd) {
    process.stderr.write(`warren: unknown command "${name}"\n\n${USAGE}`);
    return 1;
  }
  // `--help` anywhere after the command prints its usage and runs nothing (`warren start --help`
  // used to start the whole system; `status` and `topology plan` failed with a parser stack).
  const usage = (mod: Command) => mod.USAGE ?? `Usage: warren ${cmd.summary}\n`;
  try {
    const mod = await cmd.load();
    if (rest.includes('--help') || rest.includes('-h')) {
      process.stdout.write(usage(mod));
      return 0;
    }
    try {
      return await mod.run(rest);
    } catch (err) {
      // node:util parseArgs: an unknown option or a missing value. Say which, and how to call it.
      const code = (err as NodeJS.ErrnoException).code;
      if (typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS')) {
        process.stderr.write(`warren ${name}: ${(err as Error).message.split('. ')[0]}\n\n${usage(mod)}`);
        return 1;
      }
      throw err;
    }
  } catch (err) {
    if (err instanceof TopologyError) {
      process.stderr.write(`warren ${name}: invalid topology; nothing was declared.\n${err.message}\n`);
    } else if (err instanceof ConfigError) {
      process.stderr.write(`warren ${name}: configuration error: ${err.message}\n`);
    } else {
      process.stderr.write(`warren ${name}: ${(err as Error).stack ?? String(err)}\n`);
    }
    return 1;
  }
}
