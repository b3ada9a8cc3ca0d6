import { parseArgs } from 'node:util';
import { cleanupNetworks, findScenario, runChaos, SCENARIOS, type SettingsOverrides, summaryLine } from '../chaos/index.ts';
import { PACKAGE_ROOT } from './paths.ts';

export const USAGE = `Usage: warren chaos <scenario>|all|list|cleanup [options]

Starts private RabbitMQ node(s), the API and workers as real processes, drives HTTP load, injects
a fault, drains and reconciles every 202 against the store. Exit 0 only when nothing was lost or
stuck. Reports: chaos/reports/<scenario>-<time>.json.

partition, pause-node and slow-link run their nodes in network namespaces (root, ip netns,
iptables; cluster_partition_handling = pause_minority). "cleanup" removes what a crashed run of
them left (namespaces, links, /etc/hosts lines).

Scenarios:
${SCENARIOS.map((s) => `  ${s.name.padEnd(16)} ${s.summary}`).join('\n')}

Options:
  --quick             short version (CI)
  --duration S        seconds of load (default: 20-30 quick, 120-150 long)
  --rate R            new requests per second (default 20 quick, 50 long)
  --replicas N        worker replicas (default 3)
  --concurrency C     per replica (default 4)
  --delay-ms MS       the demo processor's DEMO_DELAY_MS (default 20)
  --topology FILE     topology file (default test/fixtures/chaos-topology.yaml)
  --poison-every N    make every Nth request poison ("fail:...", must end dead) in any scenario
  --drain-timeout S   how long to wait for every request to be final (default 60 quick, 180 long)
  --retry-window S    how long the load's clients keep retrying one request before giving up (default 60)
  --heartbeat S       AMQP heartbeat the clients ask for (?heartbeat=S on their URLs; netns scenarios)
  --publish-timeout-ms MS   the API's API_PUBLISH_TIMEOUT_MS
  --max-blind S       fail when the longest window without a 202 exceeds S seconds (default: report only)
  --base-port P       first AMQP port of a loopback scenario's nodes (management +10000,
                      distribution +20000), to run it beside another copy of itself
  --report-dir DIR    where reports go (default chaos/reports)
  --keep              keep the temp folder (broker data, logs, store) for a post-mortem
`;

function num(v: string | undefined, name: string, integer = false): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0 || (integer && !Number.isInteger(n))) {
    throw new Error(`--${name}: expected a positive ${integer ? 'integer' : 'number'} (got ${JSON.stringify(v)})`);
  }
  return n;
}

export async function run(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      quick: { type: 'boolean', default: false },
      duration: { type: 'string' },
      rate: { type: 'string' },
      replicas: { type: 'string' },
      concurrency: { type: 'string' },
      'delay-ms': { type: 'string' },
      topology: { type: 'string' },
      'drain-timeout': { type: 'string' },
      'retry-window': { type: 'string' },
      'poison-every': { type: 'string' },
      'report-dir': { type: 'string' },
      'base-port': { type: 'string' },
      heartbeat: { type: 'string' },
      'publish-timeout-ms': { type: 'string' },
      'max-blind': { type: 'string' },
      keep: { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
  });
  const [name] = positionals;
  if (values.help || !name || name === 'list') {
    process.stdout.write(USAGE);
    return values.help || name === 'list' ? 0 : 1;
  }
  if (name === 'cleanup') {
    const removed = cleanupNetworks();
    process.stdout.write(removed.length ? `removed: ${removed.join(', ')}\n` : 'nothing left over\n');
    return 0;
  }
  const basePort = num(values['base-port'], 'base-port', true);
  const scenarios = (name === 'all' ? SCENARIOS : [findScenario(name)].filter((s) => s !== undefined)).map((s) =>
    basePort === undefined || s.network ? s : { ...s, basePort },
  );
  if (scenarios.length === 0) {
    process.stderr.write(`warren chaos: unknown scenario "${name}"\n\n${USAGE}`);
    return 1;
  }
  const overrides: SettingsOverrides = {
    durationS: num(values.duration, 'duration'),
    rate: num(values.rate, 'rate'),
    replicas: num(values.replicas, 'replicas', true),
    concurrency: num(values.concurrency, 'concurrency', true),
    demoDelayMs: values['delay-ms'] === '0' ? 0 : num(values['delay-ms'], 'delay-ms'),
    topology: values.topology,
    drainTimeoutS: num(values['drain-timeout'], 'drain-timeout'),
    retryWindowS: num(values['retry-window'], 'retry-window'),
    poisonEvery: num(values['poison-every'], 'poison-every', true),
    heartbeatS: num(values.heartbeat, 'heartbeat', true),
    publishTimeoutMs: num(values['publish-timeout-ms'], 'publish-timeout-ms', true),
    maxBlindS: num(values['max-blind'], 'max-blind'),
  };

  // A reader that went away (`| head`) must not crash the run before it stops its nodes: output
  // is best effort, cleanup is not.
  const ignoreEpipe = (err: NodeJS.ErrnoException) => {
    if (err.code !== 'EPIPE') throw err;
  };
  process.stdout.on('error', ignoreEpipe);
  process.stderr.on('error', ignoreEpipe);
  // Ctrl-C (or a CI timeout's SIGTERM) stops every node and process the run started, then exits.
  const controller = new AbortController();
  const interrupt = (sig: NodeJS.Signals) => {
    process.stderr.write(`\nwarren chaos: ${sig}: cleaning up\n`);
    controller.abort();
  };
  process.once('SIGINT', interrupt);
  process.once('SIGTERM', interrupt);
  process.once('SIGHUP', interrupt);
  try {
    const { reports } = await runChaos(scenarios, {
      root: PACKAGE_ROOT,
      quick: values.quick,
      overrides,
      reportDir: values['report-dir'],
      keep: values.keep,
      signal: controller.signal,
      log: (msg) => process.stderr.write(`${msg}\n`),
      onReport: (report, file) => process.stdout.write(`${summaryLine(report, file)}\n`),
    });
    if (controller.signal.aborted) return 130;
    if (reports.length > 1) {
      const failed = reports.filter((r) => !r.ok).map((r) => r.scenario);
      process.stdout.write(
        `chaos: ${reports.length - failed.length}/${reports.length} scenarios passed${failed.length ? `; failed: ${failed.join(', ')}` : ''}\n`,
      );
    }
    return reports.every((r) => r.ok) ? 0 : 1;
  } finally {
    process.off('SIGINT', interrupt);
    process.off('SIGTERM', interrupt);
    process.off('SIGHUP', interrupt);
  }
}
