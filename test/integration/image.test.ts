// test-lane: side (beside the chaos lane it shared before: the image build is minutes of podman; see scripts/test.js)
// test-timeout-ms: 900000
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { LocalRabbitNode, ManagementClient } from '../../core/index.ts';
import { loud, waitFor } from '../helpers/broker.ts';
import { ROOT } from '../helpers/warren-process.ts';

/**
 * Issue 15: the image, built with podman (`npm run image`, the stand-in base where the real one
 * cannot be pulled) and run for real against a PRIVATE RabbitMQ node this file starts (the worker
 * container is stopped mid-load: no fault goes near the shared broker). Containers use the host
 * network (../shared/machine-notes.md), so they reach the node on loopback.
 *
 * It checks: the image runs as a non-root user; `topology apply`, the API and a worker run from
 * it; 100 requests sent, the worker container stopped with SIGTERM mid-load (through tini, PID 1)
 * exits 0 after draining; another started; all 100 end done with their results: nothing lost.
 * Prints the image's size, build time and the API container's start-up time (README "Deploy").
 */

const run = promisify(execFile);
const { version } = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };
const IMAGE = `warren:${version}`;
const NODE = { nodeName: 'warren-img@localhost', amqpPort: 5761, managementPort: 15761, distPort: 25761 } as const;
const API_PORT = 3761;
/** The store of a deployment: PostgreSQL (shared by API replicas), in a schema of this run's own. */
const PG_URL = process.env.TEST_DATABASE_URL ?? process.env.DATABASE_URL ?? 'postgresql://postgres@127.0.0.1:5432/test';
const REQUESTS = 100;
const tag = randomBytes(3).toString('hex');
const SCHEMA = `warren_img_${tag}`;
const containers: string[] = [];
let node: LocalRabbitNode | undefined;
let baseDir: string | undefined;

async function podman(args: string[], timeoutMs = 60_000): Promise<string> {
  try {
    const { stdout } = await run('podman', args, { timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024 });
    return stdout.trim();
  } catch (err) {
    const e = err as Error & { stderr?: string; code?: number | string };
    throw new Error(`podman ${args.join(' ')} failed (exit ${e.code}): ${e.stderr?.slice(-2000) || e.message}`);
  }
}

const brokerEnv = () => [
  '-e',
  `AMQP_URL=amqp://guest:guest@127.0.0.1:${NODE.amqpPort}`,
  '-e',
  `AMQP_MANAGEMENT_URL=http://127.0.0.1:${NODE.managementPort}`,
  '-e',
  'LOG_LEVEL=info',
];

/** A detached container on the host network; `--health-interval disable`: no systemd timers here, the test runs the check itself. */
async function startContainer(role: string, env: string[], args: string[]): Promise<string> {
  const name = `warren-it-${tag}-${role}`;
  // Read-only root file system, as the Kubernetes manifests run it (readOnlyRootFilesystem, /tmp an emptyDir).
  const readOnly = ['--read-only', '--tmpfs', '/tmp'];
  await podman(['run', '-d', '--name', name, '--network', 'host', '--health-interval', 'disable', ...readOnly, ...brokerEnv(), ...env, IMAGE, ...args]);
  containers.push(name);
  return name;
}

const logsOf = (name: string) => podman(['logs', name]).catch((err: Error) => err.message);
const stateOf = async (name: string) => JSON.parse(await podman(['inspect', name, '--format', '{{json .State}}'])) as { Running: boolean; ExitCode: number };

test.before(
  loud(async () => {
    const started = Date.now();
    await run(process.execPath, [join(ROOT, 'scripts/image.js')], {
      cwd: ROOT,
      env: { ...process.env, CONTAINER_ENGINE: 'podman' },
      timeout: 780_000,
      maxBuffer: 64 * 1024 * 1024,
    }).catch((err: Error & { stdout?: string; stderr?: string }) => {
      throw new Error(
        `npm run image failed (podman, runc and debootstrap installed? .ci/run installs them): ${`${err.stdout ?? ''}${err.stderr ?? ''}`.slice(-3000) || err.message}`,
      );
    });
    const size = Number(await podman(['image', 'inspect', IMAGE, '--format', '{{.Size}}']));
    console.log(`image ${IMAGE}: ${(size / 1e6).toFixed(0)} MB, npm run image took ${((Date.now() - started) / 1000).toFixed(0)} s`);
    baseDir = mkdtempSync(join(tmpdir(), 'warren-image-'));
    node = new LocalRabbitNode({ ...NODE, baseDir });
    await node.start();
  }),
);

test.after(async () => {
  for (const name of containers) await podman(['rm', '-f', '-t', '0', name]).catch(() => undefined);
  const client = new pg.Client({ connectionString: PG_URL });
  await client
    .connect()
    .then(() => client.query(`DROP SCHEMA IF EXISTS ${SCHEMA} CASCADE`))
    .catch(() => undefined)
    .finally(() => client.end());
  await node?.stop();
  if (baseDir) rmSync(baseDir, { recursive: true, force: true });
});

test('the image runs as a non-root user, with tini as PID 1 and the warren CLI as entrypoint', async () => {
  const config = JSON.parse(await podman(['image', 'inspect', IMAGE, '--format', '{{json .Config}}'])) as { User: string; Entrypoint: string[] };
  assert.is(config.User, 'node');
  assert.equal(config.Entrypoint, ['/usr/bin/tini', '--', 'node', '/app/bin/warren.js']);
  const uid = await podman(['run', '--rm', '--entrypoint', 'id', IMAGE, '-u']);
  assert.is.not(uid, '0', 'the image runs as root');
  const usage = await podman(['run', '--rm', IMAGE, '--help']);
  assert.match(usage, /Usage: warren <command>/);
});

test('topology apply, the API and workers from the image: 100 requests, a worker stopped with SIGTERM mid-load, all done', async () => {
  // The Kubernetes pods' init container waits with `topology plan` (exit 0 once nothing is pending).
  const plan = ['run', '--rm', '--network', 'host', ...brokerEnv(), IMAGE, 'topology', 'plan'];
  await podman(plan).then(
    () => assert.unreachable('topology plan exited 0 before the topology was applied'),
    (err: Error) => assert.match(err.message, /\(exit 2\)/, 'plan should exit 2: changes pending'),
  );
  const apply = await podman(['run', '--rm', '--network', 'host', ...brokerEnv(), IMAGE, 'topology', 'apply'], 120_000);
  assert.match(apply, /processing\.requests/);
  await podman(plan); // exits 0 now: the init containers would let the pods start
  const mgmt = new ManagementClient({ amqpUrl: `amqp://guest:guest@127.0.0.1:${NODE.amqpPort}`, managementUrl: `http://127.0.0.1:${NODE.managementPort}` });
  const depth = async () => ((await mgmt.get(mgmt.path('queues', '/', 'processing.requests'))) as { messages?: number }).messages ?? 0;

  const apiStarted = Date.now();
  const api = await startContainer('api', ['-e', `PORT=${API_PORT}`, '-e', `DATABASE_URL=${PG_URL}`, '-e', `DATABASE_SCHEMA=${SCHEMA}`], ['api']);
  const base = `http://127.0.0.1:${API_PORT}`;
  await waitFor('the API container ready (/readyz 200)', async () => ((await fetch(`${base}/readyz`)).ok ? true : undefined), 120_000, 200).catch(
    async (err: Error) => {
      throw new Error(`${err.message}\n${await logsOf(api)}`);
    },
  );
  console.log(`API container start-up, PostgreSQL store (podman run to /readyz 200): ${Date.now() - apiStarted} ms`);
  assert.is(await podman(['exec', api, 'id', '-u']), '1000', 'the API runs as the node user');
  await podman(['healthcheck', 'run', api]); // exits non-zero when unhealthy

  // About 4 messages/s per worker: the 100 take long enough to stop one mid-load, short enough for CI.
  const workerEnv = (port: number) => [
    '-e',
    'DEMO_DELAY_MS=500',
    '-e',
    'WORKER_CONCURRENCY=2',
    '-e',
    'WORKER_SHUTDOWN_GRACE_MS=5000',
    '-e',
    `WORKER_METRICS_PORT=${port}`,
  ];
  const ids = new Map<string, string>();
  for (let i = 0; i < REQUESTS; i++) {
    const res = await fetch(`${base}/api/v1/processData`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ data: `img-${i}` }),
    });
    assert.is(res.status, 202, `request ${i}: ${res.status} ${await res.clone().text()}`);
    ids.set(((await res.json()) as { requestId: string }).requestId, `img-${i}`);
  }
  // The load is queued before the first worker starts, so its stop lands mid-load.
  const workerStarted = Date.now();
  const first = await startContainer('worker-1', workerEnv(9761), ['worker', '--replicas', '1']);
  await waitFor('the worker container serving /metrics', async () => ((await fetch('http://127.0.0.1:9761/metrics')).ok ? true : undefined), 120_000, 200);
  console.log(`worker container start-up (podman run to /metrics 200): ${Date.now() - workerStarted} ms`);

  const statuses = async () =>
    Promise.all(
      [...ids.keys()].map(
        async (id) => (await (await fetch(`${base}/api/v1/requests/${id}`)).json()) as { requestId: string; status: string; result?: unknown },
      ),
    );
  const doneCount = async () => (await statuses()).filter((s) => s.status === 'done').length;

  await waitFor('the first worker to finish 10 requests', async () => ((await doneCount()) >= 10 ? true : undefined), 60_000, 200).catch(async (err: Error) => {
    throw new Error(`${err.message}\n${await logsOf(first)}`);
  });
  await podman(['healthcheck', 'run', first]);
  const doneAtStop = await doneCount();
  assert.ok(doneAtStop <= REQUESTS - 20, `the stop must land mid-load (done ${doneAtStop} of ${REQUESTS})`);
  // podman stop sends the image's stop signal, SIGTERM, to PID 1 (tini), which forwards it.
  await podman(['stop', '--time', '30', first], 60_000);
  const state = await stateOf(first);
  const firstLogs = await logsOf(first);
  assert.is(state.ExitCode, 0, `the worker should drain and exit 0 on SIGTERM (143/137 = killed):\n${firstLogs.slice(-2000)}`);
  console.log(`stopped the first worker at ${doneAtStop} of ${REQUESTS} done; it exited ${state.ExitCode}`);

  const second = await startContainer('worker-2', workerEnv(9762), ['worker', '--replicas', '1']);
  const final = await waitFor(
    `all ${REQUESTS} requests done`,
    async () => {
      const all = await statuses();
      return all.every((s) => s.status === 'done') ? all : undefined;
    },
    180_000,
    500,
  ).catch(async (err: Error) => {
    const all = await statuses();
    throw new Error(`${err.message}: ${all.filter((s) => s.status !== 'done').length} not done\n${(await logsOf(second)).slice(-2000)}`);
  });
  for (const s of final) assert.is(s.result, `${ids.get(s.requestId)}-processed`);
  // The management API's queue figures lag by a few seconds.
  await waitFor('the requests queue empty', async () => ((await depth()) === 0 ? true : undefined), 30_000, 500);
  assert.is(await podman(['exec', api, 'id', '-u']), '1000');
});

test.run();
