import { type ChildProcess, spawn } from 'node:child_process';
import { resolve } from 'node:path';
import { z } from 'zod';
import { apiNodeOptions } from '../api/heap.ts';
import { amqpUrlsVar, intVar, LocalRabbitNode, logLevelVar, portAnswers, readEnv, redactUrl } from '../core/index.ts';
import { applyTopology, loadCompiledTopology } from '../topology/index.ts';
import { DEFAULT_WORKER_METRICS_PORT } from '../worker/index.ts';
import { cliLogger } from './log.ts';
import { WARREN_BIN } from './paths.ts';

const HOW_TO_GET_A_BROKER = `No RabbitMQ broker answers on 127.0.0.1:5672 and rabbitmq-server is not installed.
Get one of these, then run npm start again:
  Debian/Ubuntu: sudo apt-get install -y rabbitmq-server && sudo rabbitmq-plugins enable rabbitmq_management
  macOS:         brew install rabbitmq && brew services start rabbitmq
  Docker:        docker run -d --name rabbitmq -p 5672:5672 -p 15672:15672 rabbitmq:3.13-management
Or point AMQP_URL at a broker you have: AMQP_URL=amqp://user:pass@host:5672 npm start
`;

/**
 * `warren start`: everything on one machine for a newcomer. Uses AMQP_URL, or the broker on
 * localhost:5672, or starts a private node in .warren/rabbitmq; applies the topology; runs the API
 * and two worker replicas as child processes; Ctrl-C stops all of it.
 */
export async function run(_args: string[]): Promise<number> {
  const env = readEnv({
    AMQP_URL: amqpUrlsVar(),
    PORT: intVar(3000, 0, 65535),
    DATA_DIR: z.string().default('.warren'),
    START_WORKERS: intVar(2, 1, 64),
    LOG_LEVEL: logLevelVar(),
  });
  const log = cliLogger('warren-start', env.LOG_LEVEL);
  let node: LocalRabbitNode | undefined;
  let urls = env.AMQP_URL;
  let managementUrl: string | undefined = process.env.AMQP_MANAGEMENT_URL;

  if (!process.env.AMQP_URL && !(await portAnswers(5672))) {
    if (!LocalRabbitNode.installed()) {
      process.stderr.write(HOW_TO_GET_A_BROKER);
      return 1;
    }
    node = new LocalRabbitNode({ nodeName: 'warren-start@localhost', amqpPort: 5680, baseDir: resolve(env.DATA_DIR, 'rabbitmq') });
    if (await portAnswers(5680)) {
      log.info({ port: 5680 }, 'reusing the private RabbitMQ node of an earlier start');
      node = undefined;
    } else {
      log.info({ port: 5680, dir: node.options.baseDir }, 'no broker on 5672: starting a private RabbitMQ node (about 10 s)');
      await node.start();
    }
    urls = ['amqp://guest:guest@127.0.0.1:5680'];
    managementUrl = 'http://127.0.0.1:15680';
  }
  const amqpUrl = urls[0] as string;
  log.info({ broker: redactUrl(amqpUrl) }, 'using broker');

  const result = await applyTopology({ amqpUrl, managementUrl, compiled: loadCompiledTopology(), logger: log });
  if (result.failed || result.conflicts.length > 0) {
    process.stderr.write(
      `topology could not be applied:\n${[...result.conflicts, result.failed?.error ?? ''].join('\n')}\nRun npx warren topology plan to see the differences.\n`,
    );
    await node?.stop();
    return 1;
  }
  log.info({ created: result.applied.length }, 'topology applied');

  const childEnv = {
    ...process.env,
    AMQP_URL: urls.join(','),
    PORT: String(env.PORT),
    DATA_DIR: env.DATA_DIR,
    ...(managementUrl ? { AMQP_MANAGEMENT_URL: managementUrl } : {}),
  };
  // Each child in a process group of its own: a terminal's Ctrl-C then reaches only this process,
  // which sends each child one SIGTERM. Had they received the SIGINT too, that SIGTERM would be
  // their second signal, which means "stop now, without draining".
  const children: ChildProcess[] = [
    spawn(process.execPath, [WARREN_BIN, 'api'], {
      env: { ...childEnv, NODE_OPTIONS: apiNodeOptions(process.env.NODE_OPTIONS) },
      stdio: 'inherit',
      detached: true,
    }),
    spawn(process.execPath, [WARREN_BIN, 'worker', '--replicas', String(env.START_WORKERS)], { env: childEnv, stdio: 'inherit', detached: true }),
  ];

  let stopping = false;
  const exited = children.map((c) => new Promise<void>((r) => c.once('exit', () => r())));
  const stop = async (why: string): Promise<void> => {
    if (stopping) {
      for (const c of children) c.kill('SIGKILL');
      return;
    }
    stopping = true;
    log.info({ why }, 'stopping the API and workers');
    for (const c of children) c.kill('SIGTERM');
    const forced = setTimeout(() => {
      for (const c of children) c.kill('SIGKILL');
    }, 30_000);
    await Promise.all(exited);
    clearTimeout(forced);
    if (node) {
      log.info('stopping the private RabbitMQ node');
      await node.stop();
    }
  };
  process.on('SIGINT', () => void stop('SIGINT'));
  process.on('SIGTERM', () => void stop('SIGTERM'));
  for (const c of children) c.once('exit', (code) => !stopping && void stop(`a child exited (${code})`));

  if (await waitReady(env.PORT, 60_000, () => stopping)) {
    const base = `http://localhost:${env.PORT}`;
    process.stdout.write(
      `\nWarren is up: API ${base}, ${env.START_WORKERS} worker replicas, broker ${redactUrl(amqpUrl)}.\n\nTry:\n` +
        `  curl -s -X POST ${base}/api/v1/processData -H 'content-type: application/json' -d '{"data":"my-data"}'\n` +
        `  curl -s ${base}/api/v1/requests/<requestId>          # queued, then done after DEMO_DELAY_MS (5 s)\n` +
        `  curl -s -X POST ${base}/api/v1/jobs/process -H 'content-type: application/json' -d '{"data":"x"}'   # the same job by its name\n` +
        (process.env.ADMIN_TOKEN
          ? `  ${base}/admin                                    # the failure console (sign in with ADMIN_TOKEN)\n`
          : `  ADMIN_TOKEN=<16+ characters> npm start         # turns on the failure console at ${base}/admin\n`) +
        `  curl -s ${base}/metrics                          # the API's Prometheus metrics\n` +
        `  curl -s http://localhost:${process.env.WORKER_METRICS_PORT || DEFAULT_WORKER_METRICS_PORT}/metrics             # the workers' (summed over the replicas)\n` +
        `  npx warren status                                # queues, dead letters, services\n` +
        `  npx warren topology plan\n\nCtrl-C stops everything.\n\n`,
    );
  }
  await Promise.all(exited);
  if (!stopping) await stop('children exited');
  return 0;
}

async function waitReady(port: number, ms: number, cancelled: () => boolean): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline && !cancelled()) {
    try {
      const res = await fetch(`http://127.0.0.1:${port}/readyz`, { signal: AbortSignal.timeout(1000) });
      if (res.ok) return true;
    } catch {
      /* not up yet */
    }
    await new Promise((r) => setTimeout(r, 500));
  }
  return false;
}
