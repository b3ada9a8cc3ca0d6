import type { SpawnOptions } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { pino } from 'pino';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { MetricsJson } from '../../core/index.ts';
import { FATAL_EXIT_CODE, METRICS_REPLY_MESSAGE, METRICS_REQUEST_MESSAGE, REPLICA_SETTLED_MESSAGE, Supervisor } from '../../worker/supervisor.ts';
import { FakeClock } from '../helpers/fake-clock.ts';

/**
 * The supervisor's state machine with scripted child processes and a controllable clock: restart
 * backoff (0.5 s doubling to 30 s, back to 0.5 s after 30 s of uptime or a settled message), a
 * fatal exit code that stops everything, and stop() with stragglers SIGKILLed after the grace.
 */
class FakeChild extends EventEmitter {
  readonly signals: NodeJS.Signals[] = [];
  readonly sent: unknown[] = [];
  constructor(
    readonly pid: number | undefined,
    readonly env: NodeJS.ProcessEnv | undefined,
  ) {
    super();
  }
  kill(signal: NodeJS.Signals = 'SIGTERM'): boolean {
    this.signals.push(signal);
    return true;
  }
  send(message: unknown): boolean {
    this.sent.push(message);
    return true;
  }
  exit(code: number | null, signal: NodeJS.Signals | null = null): void {
    this.emit('exit', code, signal);
  }
}

function setup(replicas = 1, options: { stopTimeoutMs?: number; failSpawn?: boolean } = {}) {
  const clock = new FakeClock();
  const children: FakeChild[] = [];
  const spawned: Array<{ command: string; args: string[]; options: SpawnOptions }> = [];
  let pid = 1000;
  const sup = new Supervisor({
    replicas,
    command: 'node',
    args: ['worker.js'],
    env: { KEEP: 'me' },
    replicaEnv: 'WARREN_REPLICA',
    logger: pino({ level: 'silent' }),
    clock,
    ...(options.stopTimeoutMs === undefined ? {} : { stopTimeoutMs: options.stopTimeoutMs }),
    spawnReplica: (command, args, spawnOptions) => {
      spawned.push({ command, args, options: spawnOptions });
      const child = new FakeChild(options.failSpawn ? undefined : ++pid, spawnOptions.env);
      children.push(child);
      return child;
    },
  });
  let exitCode: number | undefined;
  void sup.done.then((c) => {
    exitCode = c;
  });
  /** The live child of replica `index` (the last one spawned for it). */
  const child = (index: number): FakeChild => {
    const c = children.filter((ch) => ch.env?.WARREN_REPLICA === String(index)).at(-1);
    if (!c) throw new Error(`replica ${index} was never spawned`);
    return c;
  };
  const settle = () => new Promise<void>((r) => setImmediate(r));
  return { clock, children, spawned, sup, child, settle, exitCode: () => exitCode };
}

/** Kills replica 0 after `ranMs` and returns how long its restart was delayed (by the fake clock). */
function restartDelay(s: ReturnType<typeof setup>, ranMs: number): number {
  s.clock.advance(ranMs);
  const before = s.children.length;
  s.child(0).exit(1);
  let waited = 0;
  while (s.children.length === before) {
    if (waited > 60_000) throw new Error('no restart within 60 s');
    s.clock.advance(1);
    waited += 1;
  }
  return waited;
}

test('start spawns one detached child per replica with its index, the environment and an IPC channel', () => {
  const s = setup(3);
  s.sup.start();
  assert.is(s.spawned.length, 3);
  assert.equal(
    s.spawned.map((x) => x.options.env?.WARREN_REPLICA),
    ['0', '1', '2'],
  );
  for (const x of s.spawned) {
    assert.is(x.command, 'node');
    assert.equal(x.args, ['worker.js']);
    assert.is(x.options.env?.KEEP, 'me');
    assert.is(x.options.detached, true);
    assert.equal(x.options.stdio, ['ignore', 'inherit', 'inherit', 'ipc']);
  }
  assert.equal(s.sup.pids(), [1001, 1002, 1003]);
});

test('a replica that keeps dying young restarts after 0.5 s, doubling up to 30 s', () => {
  const s = setup();
  s.sup.start();
  const delays = Array.from({ length: 9 }, () => restartDelay(s, 100));
  assert.equal(delays, [500, 1000, 2000, 4000, 8000, 16_000, 30_000, 30_000, 30_000]);
});

test('a replica that ran 30 s before dying restarts after 0.5 s again; 29.999 s is not enough', () => {
  const s = setup();
  s.sup.start();
  for (let i = 0; i < 4; i++) restartDelay(s, 100); // next young death: 8 s
  assert.is(restartDelay(s, 29_999), 8000, 'an uptime just under 30 s still counts as dying young');
  assert.is(restartDelay(s, 30_000), 500, 'an uptime of 30 s resets the backoff');
  assert.is(restartDelay(s, 100), 1000, 'and the doubling starts over');
});

test('a replica that settled a message before it died restarts after 0.5 s whatever its uptime', () => {
  const s = setup();
  s.sup.start();
  for (let i = 0; i < 4; i++) restartDelay(s, 100);
  s.child(0).emit('message', { type: REPLICA_SETTLED_MESSAGE });
  assert.is(restartDelay(s, 100), 500);
  assert.is(restartDelay(s, 100), 1000, 'the next child has not settled anything: back to doubling');
});

test('only the replica that died is restarted; the others keep their process', () => {
  const s = setup(2);
  s.sup.start();
  const other = s.child(1);
  restartDelay(s, 100);
  assert.is(s.child(1), other);
  assert.equal(other.signals, []);
  assert.is(s.children.length, 3);
});

test(`exit code ${FATAL_EXIT_CODE} stops all replicas with SIGTERM, restarts none, and ends with 1`, async () => {
  const s = setup(3);
  s.sup.start();
  s.child(1).exit(FATAL_EXIT_CODE);
  assert.equal(s.child(0).signals, ['SIGTERM']);
  assert.equal(s.child(2).signals, ['SIGTERM']);
  s.child(0).exit(0);
  s.child(2).exit(null, 'SIGTERM');
  s.clock.advance(60_000);
  assert.is(s.children.length, 3, 'nothing restarted');
  await s.settle();
  assert.is(s.exitCode(), 1);
});

test('stop() sends SIGTERM, cancels pending restarts and ends with 0 once every replica exits cleanly', async () => {
  const s = setup(2);
  s.sup.start();
  s.child(1).exit(1); // restart pending in 0.5 s
  void s.sup.stop();
  assert.equal(s.child(0).signals, ['SIGTERM']);
  s.clock.advance(1000);
  assert.is(s.children.length, 2, 'the pending restart was cancelled');
  await s.settle();
  assert.is(s.exitCode(), undefined, 'not done while replica 0 runs');
  s.child(0).exit(0);
  await s.settle();
  assert.is(s.exitCode(), 0);
  assert.is(s.clock.pending(), 0, 'the stop deadline was cleared');
});

test('stop() SIGKILLs stragglers after the grace and ends with 1', async () => {
  const s = setup(2, { stopTimeoutMs: 5000 });
  s.sup.start();
  void s.sup.stop();
  s.child(0).exit(0);
  s.clock.advance(4999);
  assert.equal(s.child(1).signals, ['SIGTERM'], 'no SIGKILL before the grace ends');
  s.clock.advance(1);
  assert.equal(s.child(1).signals, ['SIGTERM', 'SIGKILL']);
  assert.equal(s.child(0).signals, ['SIGTERM'], 'a replica that exited in time is not signalled again');
  s.child(1).exit(null, 'SIGKILL');
  await s.settle();
  assert.is(s.exitCode(), 1);
});

test('a replica that fails its stop (non-zero exit) makes the supervisor end with 1', async () => {
  const s = setup(2);
  s.sup.start();
  void s.sup.stop();
  s.child(0).exit(0);
  s.child(1).exit(2);
  await s.settle();
  assert.is(s.exitCode(), 1);
});

test('a child that cannot be spawned counts as a death and is retried with backoff', () => {
  const s = setup(1, { failSpawn: true });
  s.sup.start();
  s.child(0).emit('error', new Error('spawn node ENOENT'));
  s.clock.advance(499);
  assert.is(s.children.length, 1);
  s.clock.advance(1);
  assert.is(s.children.length, 2);
  s.child(0).emit('error', new Error('spawn node ENOENT'));
  s.clock.advance(999);
  assert.is(s.children.length, 2);
  s.clock.advance(1);
  assert.is(s.children.length, 3);
});

test('a second error event from a child (a failed IPC send after a failed kill) does not crash the supervisor', () => {
  const s = setup(1);
  s.sup.start();
  const c = s.child(0);
  c.emit('error', new Error('kill EPERM'));
  // Without a listener left, EventEmitter throws the error: that is the crash this guards.
  c.emit('error', new Error('Channel closed'));
  c.exit(1);
  s.clock.advance(500);
  assert.is(s.children.length, 2, 'the replica is still restarted after its exit');
});

test('collectMetrics gathers the answers of running replicas and leaves out one that is silent', async () => {
  const s = setup(2);
  s.sup.start();
  const metrics = [{ name: 'm', help: 'h', values: [], aggregator: 'sum' }] as unknown as MetricsJson;
  const pending = s.sup.collectMetrics(2000);
  const ask = s.child(0).sent[0] as { type: string; id: string };
  assert.is(ask.type, METRICS_REQUEST_MESSAGE);
  assert.is((s.child(1).sent[0] as { type: string }).type, METRICS_REQUEST_MESSAGE);
  s.child(0).emit('message', { type: METRICS_REPLY_MESSAGE, id: ask.id, metrics });
  s.clock.advance(2000);
  assert.equal(await pending, [metrics]);
  assert.is(s.clock.pending(), 0, 'both waits are over');
});

test.run();
