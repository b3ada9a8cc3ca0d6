import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import amqplib from 'amqplib';
import pg from 'pg';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { HEADERS } from '../../core/index.ts';
import { applyTopology, loadCompiledTopology } from '../../topology/index.ts';
import { createTestVhost, loud, type TestVhost, within } from '../helpers/broker.ts';
import { ROOT, runWarren } from '../helpers/warren-process.ts';

/**
 * `warren dlq` as a person and a script use it: it refuses the DATABASE_SCHEMA the API refuses
 * (one validator), human commands print their summary alone on stdout with logs on stderr at
 * warn unless LOG_LEVEL asks for more, and --json stays one JSON document on stdout.
 */
const TOPOLOGY = join(ROOT, 'test/fixtures/worker-topology.yaml');
const PG_URL = process.env.TEST_DATABASE_URL ?? 'postgresql://postgres@127.0.0.1:5432/test';
const SCHEMA = `warren_dlqcli_${randomBytes(4).toString('hex')}`;
let vh: TestVhost;
let dir: string;
let env: Record<string, string | undefined>;

async function deadLetters(n: number): Promise<void> {
  const conn = await amqplib.connect(vh.url);
  const ch = await conn.createConfirmChannel();
  for (let i = 0; i < n; i++) {
    const id = randomUUID();
    ch.publish('processing.requests.dlx', '', Buffer.from(JSON.stringify({ requestId: id, data: i })), {
      persistent: true,
      messageId: id,
      headers: { [HEADERS.reason]: 'permanent', [HEADERS.errorMessage]: 'no', [HEADERS.originQueue]: 'processing.requests' },
    });
  }
  await ch.waitForConfirms();
  await conn.close();
}

test.before(
  loud(async () => {
    vh = await within(10_000, 'vhost', createTestVhost('dlqcli'));
    dir = mkdtempSync(join(tmpdir(), 'warren-dlqcli-'));
    // LOG_LEVEL unset (a CI shell may export one): the commands' own default is under test.
    env = {
      AMQP_URL: vh.url,
      AMQP_MANAGEMENT_URL: vh.managementUrl,
      TOPOLOGY,
      DATA_DIR: dir,
      LOG_LEVEL: undefined,
      DATABASE_URL: PG_URL,
      DATABASE_SCHEMA: SCHEMA,
    };
    await applyTopology({ amqpUrl: vh.url, managementUrl: vh.managementUrl, compiled: loadCompiledTopology(TOPOLOGY) });
  }),
);

test.after(async () => {
  await vh?.cleanup();
  rmSync(dir, { recursive: true, force: true });
  const c = new pg.Client({ connectionString: PG_URL });
  await c.connect();
  await c.query(`DROP SCHEMA IF EXISTS "${SCHEMA}" CASCADE`);
  await c.end();
});

test('dlq refuses a DATABASE_SCHEMA the API refuses, with the same message', async () => {
  const bad = { ...env, DATABASE_URL: 'postgresql://postgres@127.0.0.1:5432/test', DATABASE_SCHEMA: 'Not-A-Schema' };
  const dlq = await runWarren(['dlq', 'list'], bad);
  assert.is(dlq.code, 1, dlq.output);
  assert.match(dlq.stderr, /DATABASE_SCHEMA: expected a lower-case SQL identifier/);
  const api = await runWarren(['api'], { ...bad, PORT: '0' });
  assert.is(api.code, 1, api.output);
  assert.match(api.stderr, /DATABASE_SCHEMA: expected a lower-case SQL identifier/);
});

test('a human replay prints its summary alone on stdout, and logs only at warn on stderr', async () => {
  await deadLetters(3);
  const r = await runWarren(['dlq', 'replay', '--all'], env);
  assert.is(r.code, 0, r.output);
  assert.is(r.stdout, 'replayed 3 of 3 matching dead letter(s)\n');
  const infoLines = r.stderr.split('\n').filter((l) => /"level":(30|20|10)/.test(l));
  assert.equal(infoLines, [], 'no info lines on stderr unless LOG_LEVEL asks');
});

test('LOG_LEVEL=info adds one log line per message on stderr, never on stdout', async () => {
  await deadLetters(2);
  const r = await runWarren(['dlq', 'replay', '--all'], { ...env, LOG_LEVEL: 'info' });
  assert.is(r.code, 0, r.output);
  assert.is(r.stdout, 'replayed 2 of 2 matching dead letter(s)\n');
  assert.is(r.stderr.split('\n').filter((l) => l.includes('"dead letter replayed"')).length, 2);
});

test('--json prints one JSON document on stdout (replay and purge)', async () => {
  await deadLetters(2);
  const replay = await runWarren(['dlq', 'replay', '--all', '--dry-run', '--json'], { ...env, LOG_LEVEL: 'info' });
  assert.is(replay.code, 0, replay.output);
  assert.equal((JSON.parse(replay.stdout) as { matched: number }).matched, 2);
  const purge = await runWarren(['dlq', 'purge', '--all', '--yes', '--json'], { ...env, LOG_LEVEL: 'info' });
  assert.is(purge.code, 0, purge.output);
  assert.equal((JSON.parse(purge.stdout) as { purged: number }).purged, 2);
  const human = await runWarren(['dlq', 'purge', '--all', '--yes'], env);
  assert.is(human.stdout, 'purged 0 dead letter(s)\n');
});

test('with the embedded store held by a running API, list reads the queues and says so on stderr', async () => {
  await deadLetters(1);
  const held = mkdtempSync(join(tmpdir(), 'warren-dlqcli-held-'));
  // The lock a running API holds on its embedded store (this live process stands in for it).
  writeFileSync(join(held, 'store.lock'), String(process.pid));
  try {
    const r = await runWarren(['dlq', 'list', '--json'], { ...env, DATABASE_URL: undefined, DATABASE_SCHEMA: undefined, DATA_DIR: held });
    assert.is(r.code, 0, r.output);
    const doc = JSON.parse(r.stdout) as { source: string; count: number };
    assert.equal([doc.source, doc.count], ['queue', 1]);
    assert.match(r.stderr, /note: .*in use by process \d+.*reading the dead-letter queues instead of the store/);
  } finally {
    rmSync(held, { recursive: true, force: true });
  }
});

test.run();
