import { type ChildProcess, spawn } from 'node:child_process';
import { createServer, type Server, type Socket, connect as tcpConnect } from 'node:net';
import amqplib, { type ChannelModel, type ConfirmChannel } from 'amqplib';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { decodeResult, HEADERS } from '../../core/index.ts';
import { applyTopology, DEFAULT_REQUESTS_QUEUE, DEFAULT_RESULTS_QUEUE, loadCompiledTopology, routesFor } from '../../topology/index.ts';
import { createTestVhost, messageTaker, type TestVhost, waitFor, within } from '../helpers/broker.ts';

// The CLI as users run it: real processes (`node bin/warren.js worker`), real signals, a real
// broker. Each worker logs JSON lines to stdout; the tests read them to learn pids and progress.
const root = new URL('../..', import.meta.url).pathname;
const fixture = new URL('../fixtures/worker-topology.yaml', import.meta.url).pathname;
const compiled = loadCompiledTopology(fixture);
const requests = routesFor(compiled, DEFAULT_REQUESTS_QUEUE);
const publishRoute = requests.publish ?? { exchange: '', routingKey: '' };
const deadQueue = requests.deadLetter?.queue ?? '';

let vhost: TestVhost;
let conn: ChannelModel;
let ch: ConfirmChannel;
const running = new Set<Cli>();

type LogLine = Record<string, unknown> & { msg?: string; pid?: number };

class Cli {
  readonly child: ChildProcess;
  readonly lines: LogLine[] = [];
  stderr = '';
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;

  constructor(args: string[], env: Record<string, string>) {
    this.child = spawn(process.execPath, ['bin/warren.js', 'worker', ...args], {
      cwd: root,
      env: { ...process.env, AMQP_URL: vhost.url, TOPOLOGY: fixture, LOG_LEVEL: 'debug', LOG_PRETTY: '0', DEMO_DELAY_MS: '0', DEMO_HOOKS: '1', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    running.add(this);
    let buf = '';
    this.child.stdout?.on('data', (d: Buffer) => {
      buf += d.toString();
      for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        try {
          this.lines.push(JSON.parse(line) as LogLine);
        } catch {
          this.lines.push({ msg: `(not json) ${line}` });
        }
      }
    });
    this.child.stderr?.on('data', (d: Buffer) => {
      this.stderr += d.toString();
    });
    this.exited = new Promise((resolve) => {
      this.child.once('exit', (code, signal) => {
        running.delete(this);
        // TEST_WORKER_LOGS=1 prints what a process logged, to debug a failing test.
        if (process.env.TEST_WORKER_LOGS) for (const l of this.lines) console.log(JSON.stringify(l).slice(0, 300));
        resolve({ code, signal });
      });
    });
  }

  logs(msg: string, where: (l: LogLine) => boolean = () => true): LogLine[] {
    return this.lines.filter((l) => l.msg === msg && where(l));
  }

  waitLog(msg: string, where: (l: LogLine) => boolean = () => true, ms = 15_000): Promise<LogLine> {
    return waitFor(`log "${msg}"`, () => this.logs(msg, where)[0], ms, 50);
  }

  /** Worker pids this process tree has started (itself, or its replicas). */
  workerPids(): number[] {
    return [...new Set(this.logs('worker started').map((l) => Number(l.pid)))];
  }
}

const taker = messageTaker({ get: (q, o) => ch.get(q, o) });

const take = (queue: string, requestId: string, ms = 15_000) => taker.take(queue, requestId, ms);

async function publish(requestId: string, data: string): Promise<void> {
  ch.publish(publishRoute.exchange, publishRoute.routingKey, Buffer.from(JSON.stringify({ requestId, data })), {
    persistent: true,
    messageId: requestId,
    correlationId: requestId,
  });
  await ch.waitForConfirms();
}

interface QueueStats {
  messages?: number;
  messages_unacknowledged?: number;
  messages_ready?: number;
}

test.before(async () => {
  vhost = await createTestVhost('worker-processes');
  assert.is((await applyTopology({ amqpUrl: vhost.url, compiled })).failed, undefined);
  conn = await amqplib.connect(vhost.url);
  ch = await conn.createConfirmChannel();
});

test.after(async () => {
  // Only the processes this file started: each gets SIGKILL if a test left it running.
  for (const cli of running) {
    for (const pid of cli.workerPids()) killQuietly(pid);
    cli.child.kill('SIGKILL');
  }
  await conn?.close();
  await vhost?.cleanup();
});

function killQuietly(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // already gone
  }
}

test('startup without the topology fails fast, naming npm run topology:apply', async () => {
  const empty = await createTestVhost('worker-empty');
  try {
    const cli = new Cli([], { AMQP_URL: empty.url });
    const { code } = await within(20_000, 'worker to exit', cli.exited);
    assert.is(code, 78);
    assert.match(cli.stderr, /npm run topology:apply/);
    assert.match(cli.stderr, /processing\.requests/);
  } finally {
    await empty.cleanup();
  }
});

test('SIGTERM while processing: the message finishes, exit 0, nothing lost or left unacked', async () => {
  const cli = new Cli(['--concurrency', '2'], { DEMO_DELAY_MS: '1500' });
  await cli.waitLog('worker started');
  await publish('term-1', 'hello');
  await cli.waitLog('handling message', (l) => l.requestId === 'term-1');
  cli.child.kill('SIGTERM');
  const { code } = await within(10_000, 'worker to exit', cli.exited);
  assert.is(code, 0);
  assert.is(decodeResult((await take(DEFAULT_RESULTS_QUEUE, 'term-1', 2000)).content)?.result, 'hello-processed');
  assert.ok(cli.logs('message processed', (l) => l.requestId === 'term-1').length === 1);
  assert.is((await ch.checkQueue(DEFAULT_REQUESTS_QUEUE)).messageCount, 0, 'nothing requeued');
  const stats = await waitFor('management stats of the queue', async () => {
    const q = await vhost.mgmt.get<QueueStats>(vhost.mgmt.path('queues', vhost.vhost, DEFAULT_REQUESTS_QUEUE));
    return q && q.messages_unacknowledged === 0 && q.messages === 0 ? q : undefined;
  });
  assert.is(stats.messages_unacknowledged, 0);
});

test('SIGTERM past the grace period: the unfinished message is requeued, then processed by the next worker', async () => {
  const cli = new Cli([], { DEMO_DELAY_MS: '20000', WORKER_SHUTDOWN_GRACE_MS: '300' });
  await cli.waitLog('worker started');
  await publish('term-2', 'slow');
  await cli.waitLog('handling message', (l) => l.requestId === 'term-2');
  cli.child.kill('SIGTERM');
  const { code } = await within(5000, 'worker to exit', cli.exited);
  assert.is(code, 0);
  assert.is(cli.logs('shutdown deadline passed; requeued unfinished messages')[0]?.requeued, 1);
  assert.is((await ch.checkQueue(DEFAULT_REQUESTS_QUEUE)).messageCount, 1, 'the message is back in the queue');
  const next = new Cli([], {});
  assert.is(decodeResult((await take(DEFAULT_RESULTS_QUEUE, 'term-2')).content)?.result, 'slow-processed');
  next.child.kill('SIGTERM');
  assert.is((await within(10_000, 'second worker to exit', next.exited)).code, 0);
});

test('a second SIGTERM forces the exit; the unacked message returns to the queue', async () => {
  const cli = new Cli([], { DEMO_DELAY_MS: '20000', WORKER_SHUTDOWN_GRACE_MS: '20000' });
  await cli.waitLog('worker started');
  await publish('force-1', 'stuck');
  await cli.waitLog('handling message', (l) => l.requestId === 'force-1');
  cli.child.kill('SIGTERM');
  await cli.waitLog('stopping: consumer cancelled, finishing in-flight messages');
  cli.child.kill('SIGTERM');
  const { code } = await within(3000, 'forced exit', cli.exited);
  assert.is(code, 143);
  await waitFor('the message back in the queue', async () => ((await ch.checkQueue(DEFAULT_REQUESTS_QUEUE)).messageCount === 1 ? true : undefined));
  await ch.purgeQueue(DEFAULT_REQUESTS_QUEUE);
});

/** A port nothing listens on (yet): taken from the OS, then released. */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** A port from `from` to `to` that nothing listens on. */
async function freePortIn(from: number, to: number): Promise<number> {
  for (let port = from; port <= to; port++) {
    const server = createServer();
    const ok = await new Promise<boolean>((resolve) => {
      server.once('error', () => resolve(false));
      server.listen(port, '127.0.0.1', () => resolve(true));
    });
    if (ok) {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      return port;
    }
  }
  throw new Error(`no free port from ${from} to ${to}`);
}

/** A TCP proxy to the test broker, started when the test decides the broker is "up". */
async function startProxy(port: number, target: URL): Promise<{ close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    const upstream = tcpConnect(Number(target.port || 5672), target.hostname);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('error', () => {
        client.destroy();
        upstream.destroy();
      });
      s.on('close', () => sockets.delete(s));
    }
    client.pipe(upstream).pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return {
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

test('startup waits for an unreachable broker, says so, and consumes once it is up (URL list)', async () => {
  const [deadPort, proxyPort] = [await freePort(), await freePort()];
  const at = (port: number) => {
    const u = new URL(vhost.url);
    u.port = String(port);
    return u.toString();
  };
  // A two-node "cluster": one node that never answers, one that comes up later.
  const cli = new Cli([], { AMQP_URL: `${at(deadPort)},${at(proxyPort)}` });
  await cli.waitLog('waiting for the broker');
  // Proof that time passed with the broker away: three failed attempts, then it is still there.
  await waitFor('three failed connect attempts', () => (cli.logs('connect attempt failed').length >= 3 ? true : undefined), 15_000);
  assert.is(cli.child.exitCode, null, 'still running while the broker is away');
  assert.is(cli.logs('worker started').length, 0);
  const proxy = await startProxy(proxyPort, new URL(vhost.url));
  try {
    await cli.waitLog('worker started', () => true, 15_000);
    await publish('late-broker', 'patience');
    assert.is(decodeResult((await take(DEFAULT_RESULTS_QUEUE, 'late-broker')).content)?.result, 'patience-processed');
    cli.child.kill('SIGTERM');
    assert.is((await within(10_000, 'worker to exit', cli.exited)).code, 0);
  } finally {
    await proxy.close();
  }
});

test('SIGTERM while still waiting for the broker exits 0 at once', async () => {
  const cli = new Cli([], { AMQP_URL: `amqp://guest:guest@127.0.0.1:${await freePort()}/` });
  await cli.waitLog('waiting for the broker');
  cli.child.kill('SIGTERM');
  assert.is((await within(5000, 'worker to exit', cli.exited)).code, 0);
});

test('an unreachable broker on a port numbered 403xx is waited for, not taken for refused credentials', async () => {
  // amqp-connection-manager takes any connect failure whose message contains "403" for a
  // refusal: "connect ECONNREFUSED 127.0.0.1:40312" included.
  const cli = new Cli([], { AMQP_URL: `amqp://guest:guest@127.0.0.1:${await freePortIn(40300, 40399)}/` });
  await cli.waitLog('waiting for the broker');
  await waitFor('three failed connect attempts', () => (cli.logs('connect attempt failed').length >= 3 ? true : undefined), 15_000);
  assert.is(cli.child.exitCode, null, 'still waiting after a few connect attempts');
  cli.child.kill('SIGTERM');
  assert.is((await within(5000, 'worker to exit', cli.exited)).code, 0);
});

let supervisor: Cli | undefined;

test('SIGKILL of a replica mid-message: another replica processes it; the supervisor restarts the dead one', async () => {
  supervisor = new Cli(['--replicas', '2', '--concurrency', '1'], { DEMO_DELAY_MS: '1500' });
  const sup = supervisor;
  await waitFor('two replicas consuming', () => (sup.workerPids().length === 2 ? true : undefined), 20_000);
  await publish('kill-1', 'survivor');
  const handling = await sup.waitLog('handling message', (l) => l.requestId === 'kill-1');
  const victim = Number(handling.pid);
  process.kill(victim, 'SIGKILL');
  assert.is(decodeResult((await take(DEFAULT_RESULTS_QUEUE, 'kill-1')).content)?.result, 'survivor-processed');
  const processed = sup.logs('message processed', (l) => l.requestId === 'kill-1');
  assert.ok(processed.length >= 1 && processed.every((l) => l.pid !== victim), 'processed by another replica');
  const exit = await sup.waitLog('replica exited; restarting', (l) => l.pid === victim);
  assert.is(exit.signal, 'SIGKILL');
  await waitFor('the replacement replica', () => (sup.workerPids().length === 3 ? true : undefined), 15_000);
});

test('crash loop: a crash: message ends dead-lettered by the delivery limit; replicas keep coming back', async () => {
  const sup = supervisor;
  assert.ok(sup, 'the supervisor of the previous test');
  const exitsBefore = sup.logs('replica exited; restarting').length;
  await publish('crash-1', 'crash:boom');
  const dead = await take(deadQueue, 'crash-1', 30_000);
  const deaths = (dead.properties.headers?.['x-death'] ?? []) as Array<{ reason?: string; queue?: string }>;
  assert.ok(
    deaths.some((d) => d.reason === 'delivery_limit' && d.queue === DEFAULT_REQUESTS_QUEUE),
    `x-death: ${JSON.stringify(deaths)}`,
  );
  assert.is(dead.properties.headers?.[HEADERS.reason], undefined, 'dead-lettered by the broker, not by a handler');
  const crashes = sup.logs('replica exited; restarting').slice(exitsBefore);
  assert.ok(crashes.length >= 2, `${crashes.length} crashes`);
  assert.ok(crashes.every((l) => l.code === 137));
  // The replicas are back and serve the next message.
  await publish('after-crash', 'fine');
  assert.is(decodeResult((await take(DEFAULT_RESULTS_QUEUE, 'after-crash', 20_000)).content)?.result, 'fine-processed');

  sup.child.kill('SIGTERM');
  const { code } = await within(15_000, 'supervisor to exit', sup.exited);
  assert.is(code, 0);
  assert.ok(sup.logs('all replicas stopped').length === 1);
  for (const pid of sup.workerPids()) assert.throws(() => process.kill(pid, 0), undefined, `replica ${pid} still running`);
});

test.run();
