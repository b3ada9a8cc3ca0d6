// test-lane: chaos
// test-timeout-ms: 400000
import { type ChildProcess, spawn } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createTestVhost, loud, type TestVhost, waitFor, within } from '../helpers/broker.ts';
import { ROOT } from '../helpers/warren-process.ts';

// Warren as a team installs it: `npm pack`, the tarball installed into a project outside the repo,
// the examples' TypeScript handlers type-checked there against the package's own declarations,
// then the installed bin runs the topology, two worker replicas and the API, and a plain .mjs
// script of that project enqueues with createProducer while a replica is SIGKILLed.

// Compiled in the user's project: the package's declarations must type the handlers' data (no
// `any` slipping through) and refuse what is wrong, or these expected errors go unused and fail.
const TYPE_CHECKS = `import { createProducer, defineJob, EnqueueError, type HandlerContext } from 'warren';
import thumbnails from './jobs/thumbnails.js';
import { thumbnailData } from './schemas.js';

// @ts-expect-error the handler must be a function
defineJob({ queue: 'x', handler: 'not a function' });
// @ts-expect-error the schema types data: width is a number
defineJob({ queue: 'x', schema: thumbnailData, handler: (data) => data.width.toUpperCase() });
export const attemptOf = (ctx: HandlerContext): number => ctx.attempt;
export async function enqueueOne(): Promise<string> {
  const producer = await createProducer({ urls: ['amqp://localhost'], topology: './topology', jobs: [thumbnails] });
  try {
    return await producer.enqueue(thumbnails, { url: 'https://img.example/a.png', width: 64 });
  } catch (err) {
    if (err instanceof EnqueueError) return err.code satisfies string;
    throw err;
  } finally {
    await producer.close();
  }
}
`;
const FIXTURE = join(ROOT, 'test', 'fixtures', 'package-app');

const work = mkdtempSync(join(tmpdir(), 'warren-package-'));
const project = join(work, 'app');
const started: ChildProcess[] = [];
let tarball = '';
let vh: TestVhost | undefined;

/**
 * The environment of a user's shell: none of the npm_* variables npm gives the repo's scripts, no
 * Warren settings (a DATABASE_URL would move the API off its DATA_DIR). NPM_CONFIG_* stay: a
 * registry or cache the machine configures.
 */
function cleanEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  const skip = /^(npm_|AMQP_|TOPOLOGY$|DEMO_|WORKER_|DATA_DIR$|DATABASE_|PORT$|LOG_|API_|ADMIN_TOKEN$)/;
  for (const [k, v] of Object.entries(process.env)) if (!skip.test(k)) env[k] = v;
  return { ...env, LOG_PRETTY: '0', ...extra };
}

const t0 = Date.now();
const timings: string[] = [];
/** Notes how long a step took (the test's duration matters in CI). */
async function timed<T>(step: string, p: Promise<T>): Promise<T> {
  const started = Date.now();
  const v = await p;
  timings.push(`${step} ${((Date.now() - started) / 1000).toFixed(1)}s`);
  return v;
}

/** Runs a command to completion; rejects with its output when it fails or passes `ms`. */
function run(cmd: string, args: string[], cwd: string, ms: number, env = cleanEnv({})): Promise<string> {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    started.push(p);
    let out = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const timer = setTimeout(() => kill(p, 'SIGKILL'), ms);
    p.once('exit', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve(out);
      else reject(new Error(`${cmd} ${args.join(' ')} ${signal ? `killed (${signal}, limit ${ms} ms)` : `exited ${code}`}:\n${out.slice(-3000)}`));
    });
  });
}

/** Starts a long-running command in its own process group; `lines()` are its JSON log lines. */
function start(args: string[], env: NodeJS.ProcessEnv) {
  const p = spawn('npx', args, { cwd: project, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  started.push(p);
  let out = '';
  p.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  p.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  // Complete lines only: the last one may still be arriving.
  const lines = () =>
    out
      .slice(0, out.lastIndexOf('\n') + 1)
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  return { p, lines, output: () => out };
}

/** Signals a whole process group we started (npx, its shell, node, the replicas). */
function kill(p: ChildProcess, signal: NodeJS.Signals, evenIfLeaderExited = false): void {
  if (p.pid === undefined || (!evenIfLeaderExited && (p.exitCode !== null || p.signalCode !== null))) return;
  try {
    process.kill(-p.pid, signal);
  } catch {
    // already gone
  }
}

async function stopAll(): Promise<void> {
  for (const p of started) kill(p, 'SIGTERM');
  await waitFor('started processes to exit', () => started.every((p) => p.exitCode !== null || p.signalCode !== null) || undefined, 20_000).catch(
    () => undefined,
  );
  // Whatever of a group outlived its leader (a replica of a supervisor that died) goes too.
  for (const p of started.splice(0)) kill(p, 'SIGKILL', true);
}

process.once('exit', () => {
  for (const p of started) kill(p, 'SIGKILL');
  rmSync(work, { recursive: true, force: true });
});

test.after(
  loud(async () => {
    await stopAll();
    await vh?.cleanup();
    rmSync(work, { recursive: true, force: true });
  }),
);

test('npm pack: compiled JavaScript with declarations and the bin; no tests, bench results, chaos reports or examples', async () => {
  const packDir = join(work, 'pack');
  mkdirSync(packDir);
  await timed('npm pack', run('npm', ['pack', '--pack-destination', packDir], ROOT, 120_000));
  tarball = join(packDir, readdirSync(packDir).find((f) => f.endsWith('.tgz')) ?? 'missing.tgz');
  const files = (await run('tar', ['tzf', tarball], work, 30_000)).split('\n').filter(Boolean);
  for (const f of [
    'package/dist/index.js',
    'package/dist/index.d.ts',
    'package/dist/producer/producer.d.ts',
    'package/bin/warren.js',
    'package/package.json',
  ]) {
    assert.ok(files.includes(f), `${f} in the tarball`);
  }
  const unwanted = files.filter((f) =>
    /^package\/(test|bench|examples|chaos\/reports|coverage|\.warren)\/|\.test\.|\.cpuprofile$|erl_crash|(?<!\.d)\.ts$/.test(f),
  );
  assert.equal(unwanted, [], 'no tests, bench results, chaos reports, examples or TypeScript sources');
});

test('installs into a project outside the repo, and the example app (handlers, server) type-checks against its declarations', async () => {
  assert.ok(existsSync(tarball), 'the tarball was made');
  mkdirSync(join(project, 'src', 'jobs'), { recursive: true });
  writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'warren-user-app', private: true, type: 'module' }));
  // @types/node 20: the project runs on Node 20 (newer @types/node fail amqp-connection-manager's own typings).
  await timed(
    'npm install',
    run(
      'npm',
      ['install', tarball, 'zod', 'express', 'typescript', '@types/node@20', '@types/express', '--no-audit', '--no-fund', '--prefer-offline'],
      project,
      180_000,
    ),
  );
  assert.not.ok(existsSync(join(project, 'node_modules', 'tsx')), 'tsx is not installed with warren');
  const installed = JSON.parse(readFileSync(join(project, 'node_modules', 'warren', 'package.json'), 'utf8')) as { dependencies?: Record<string, string> };
  assert.not.ok(installed.dependencies?.tsx, 'tsx is not a dependency');

  cpSync(join(ROOT, 'examples', 'src', 'jobs'), join(project, 'src', 'jobs'), { recursive: true });
  cpSync(join(ROOT, 'examples', 'src', 'schemas.ts'), join(project, 'src', 'schemas.ts'));
  // The example's server too: examples/ is outside the root typecheck, and this keeps it honest.
  cpSync(join(ROOT, 'examples', 'src', 'server.ts'), join(project, 'src', 'server.ts'));
  writeFileSync(join(project, 'src', 'type-checks.ts'), TYPE_CHECKS);
  cpSync(join(FIXTURE, 'tsconfig.json'), join(project, 'tsconfig.json'));
  await timed('tsc', run(join(project, 'node_modules', '.bin', 'tsc'), ['-p', '.'], project, 120_000));
  assert.ok(existsSync(join(project, 'dist', 'jobs', 'thumbnails.js')) && existsSync(join(project, 'dist', 'jobs', 'emails.js')), 'handlers compiled');
});

interface Line {
  msg?: string;
  pid?: number;
  replica?: number;
  port?: number;
}

interface Planned {
  job: string;
  kind: string;
  requestId: string;
}

test('the installed bin runs the topology, 2 worker replicas and the API; every job ends stored while a replica is SIGKILLed', async () => {
  assert.ok(existsSync(join(project, 'dist', 'jobs')), 'the project was built');
  vh = await within(10_000, 'a vhost', createTestVhost('package'));
  cpSync(join(FIXTURE, 'topology'), join(project, 'topology'), { recursive: true });
  cpSync(join(FIXTURE, 'enqueue.mjs'), join(project, 'enqueue.mjs'));
  const env = cleanEnv({ AMQP_URL: vh.url, TOPOLOGY: './topology', LOG_LEVEL: 'info' });
  await timed('topology apply', run('npx', ['warren', 'topology', 'apply'], project, 60_000, env));

  let phase = Date.now();
  const lap = (step: string) => {
    timings.push(`${step} ${((Date.now() - phase) / 1000).toFixed(1)}s`);
    phase = Date.now();
  };
  const worker = start(['warren', 'worker', '--handler', './dist/jobs', '--replicas', '2', '--concurrency', '4'], { ...env, WORKER_METRICS_PORT: '0' });
  const api = start(['warren', 'api', '--handler', './dist/jobs'], { ...env, PORT: '0', DATA_DIR: join(work, 'data') });
  const wl = () => worker.lines() as Line[];
  const replicaPid = (index: number) =>
    wl()
      .filter((l) => l.msg === 'replica started' && l.replica === index)
      .at(-1)?.pid;
  const alive = (s: ReturnType<typeof start>) => {
    if (s.p.exitCode !== null) throw new Error(`exited ${s.p.exitCode}: ${s.output().slice(-2000)}`);
  };
  await waitFor(
    '2 replicas started',
    () => {
      alive(worker);
      return wl().filter((l) => l.msg === 'worker started').length >= 2 || undefined;
    },
    60_000,
  );
  const apiPort = await waitFor(
    'api listening',
    () => {
      alive(api);
      return (api.lines() as Line[]).find((l) => l.msg === 'api listening')?.port;
    },
    60_000,
  );
  const base = `http://127.0.0.1:${apiPort}`;
  await waitFor('api ready', async () => (await fetch(`${base}/readyz`)).ok || undefined, 30_000);
  // warren api --handler checks a public job's schema at the HTTP front: a 400 naming the field.
  const bad = await fetch(`${base}/api/v1/jobs/thumbnails`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ data: { url: 'https://img.example/a.png' } }),
  });
  assert.is(bad.status, 400, 'data without width refused');
  assert.match(await bad.text(), 'data.width');
  const metricsPort = await waitFor('worker metrics', () => wl().find((l) => l.msg === 'metrics at GET /metrics' && l.replica === undefined)?.port, 10_000);

  lap('worker and api start');
  // Replica 0 is killed once it has settled work, with the rest of the run still queued behind it.
  const victim = replicaPid(0) as number;
  const enqueue = run('node', ['enqueue.mjs'], project, 120_000, env);
  enqueue.catch(() => undefined); // awaited below; a failure meanwhile must not end the process unhandled
  await waitFor('replica 0 settling jobs', () => wl().filter((l) => l.msg === 'message processed' && l.pid === victim).length >= 10 || undefined, 60_000, 20);
  process.kill(victim, 'SIGKILL');
  await waitFor('replica 0 restarted', () => (replicaPid(0) !== victim ? true : undefined), 30_000);
  const planned = JSON.parse(await enqueue) as Planned[];
  assert.is(planned.length, 350, 'every job enqueued (createProducer resolved each)');

  const records = new Map<string, { status: string; attempts?: number; error?: { reason: string }; result?: { attempt?: number } }>();
  await waitFor(
    'every job done or dead at GET /api/v1/requests/:id',
    async () => {
      const pending = planned.filter((p) => !records.has(p.requestId));
      for (let i = 0; i < pending.length; i += 25) {
        await Promise.all(
          pending.slice(i, i + 25).map(async ({ requestId }) => {
            const res = await fetch(`${base}/api/v1/requests/${requestId}`);
            const body = res.ok ? ((await res.json()) as { status: string }) : undefined;
            if (body && body.status !== 'queued') records.set(requestId, body);
          }),
        );
      }
      return records.size === planned.length || undefined;
    },
    90_000,
    250,
  ).catch((err: Error) => {
    throw new Error(`${err.message}; stored ${records.size} of ${planned.length}`);
  });

  lap('enqueue, kill and every outcome stored');
  for (const p of planned) {
    const r = records.get(p.requestId);
    const what = `${p.job} ${p.kind} ${p.requestId}: ${JSON.stringify(r)}`;
    if (p.kind === 'permanent') {
      assert.is(r?.status, 'dead', what);
      assert.is(r?.error?.reason, 'permanent', what);
    } else {
      assert.is(r?.status, 'done', what);
    }
    // Transient failures retried through the job's own tiers: thumbnails fail twice, emails once.
    if (p.kind === 'transient') assert.is(r?.attempts, p.job === 'thumbnails' ? 3 : 2, what);
    if (p.kind === 'ok') assert.is(r?.attempts, 1, what);
  }
  // Each job retried in its own tier queues (the broker's counts), none in the other's.
  const count = (n: number) => planned.filter((p) => p.kind === 'transient' && p.job === (n === 0 ? 'thumbnails' : 'emails')).length;
  const published = async (queue: string) =>
    (await vh?.mgmt.get<{ message_stats?: { publish?: number } }>(vh.mgmt.path('queues', vh.vhost, queue)))?.message_stats?.publish ?? 0;
  await waitFor(
    'retry tier counts in the management API',
    async () =>
      ((await published('thumbnails.retry.1')) >= count(0) &&
        (await published('thumbnails.retry.2')) >= count(0) &&
        (await published('emails.retry.1')) >= count(1)) ||
      undefined,
    20_000,
    500,
  );
  assert.is(await published('emails.retry.2'), 0, 'emails fail once: their second tier stays unused');
  assert.is(await published('thumbnails.retry.3'), 0, 'thumbnails succeed on attempt 3: their third tier stays unused');

  // The kill hit work in flight: the broker redelivered it, and it still ended stored (above).
  const metrics = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
  const redeliveries = [...metrics.matchAll(/^warren_redeliveries_total\{[^}]*\} (\d+)/gm)].reduce((s, m) => s + Number(m[1]), 0);
  assert.ok(redeliveries > 0, `redeliveries after the SIGKILL (got ${redeliveries})`);
  timings.push(`total ${((Date.now() - t0) / 1000).toFixed(1)}s`);
  console.log(`  package test: ${planned.length} jobs stored; ${redeliveries} redelivered after the SIGKILL of pid ${victim}; ${timings.join(', ')}`);
});

test.run();
