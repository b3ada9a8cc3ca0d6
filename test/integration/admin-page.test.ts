// test-timeout-ms: 240000
import { randomBytes, randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import amqplib from 'amqplib';
import pg from 'pg';
import { type Browser, chromium, type Page } from 'playwright-core';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { applyTopology, loadCompiledTopology } from '../../topology/index.ts';
import { createTestVhost, loud, type TestVhost, waitFor, within } from '../helpers/broker.ts';
import { killAll, ROOT, startApi, startWarren, type WarrenProcess } from '../helpers/warren-process.ts';

/**
 * The failure console in a real browser (Debian's Chromium, headless, driven by playwright-core):
 * sign-in with the token, a wrong token sees nothing, 20 malformed requests dead-lettered by a
 * real worker show as one group of 20, and Replay (with its confirmation) moves all 20 back to
 * their origin queue. With SCREENSHOTS=1 it writes the README's screenshots to docs/.
 */
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const TOPOLOGY = join(ROOT, 'test/fixtures/worker-topology.yaml');
const ORIGIN = 'processing.requests';
const DEAD = 'processing.requests.dead';
// PostgreSQL (a schema of its own): it starts in a second where a fresh embedded store takes tens on a busy machine.
const PG_URL = process.env.TEST_DATABASE_URL ?? 'postgresql://postgres@127.0.0.1:5432/test';
const SCHEMA = `warren_console_${randomBytes(4).toString('hex')}`;
const TOKEN = 'console-test-token-0123456789';
const SHOTS = process.env.SCREENSHOTS === '1';
let vh: TestVhost;
let dir: string;
let api: (WarrenProcess & { base: string }) | undefined;
let browser: Browser | undefined;
let page: Page;
const ids: string[] = [];

async function depth(queue: string): Promise<number> {
  const q = await vh.mgmt.get<{ messages?: number }>(vh.mgmt.path('queues', vh.vhost, queue));
  return q?.messages ?? -1;
}

async function shot(name: string): Promise<void> {
  if (SHOTS) await page.screenshot({ path: join(ROOT, 'docs', `console-${name}.png`), fullPage: true });
}

test.before(
  loud(async () => {
    if (!existsSync(CHROMIUM)) throw new Error(`no Chromium at ${CHROMIUM}: apt-get install -y chromium (or set CHROMIUM_PATH)`);
    vh = await within(10_000, 'vhost', createTestVhost('console'));
    dir = mkdtempSync(join(tmpdir(), 'warren-console-'));
    const env = {
      AMQP_URL: vh.url,
      AMQP_MANAGEMENT_URL: vh.managementUrl,
      TOPOLOGY,
      DATA_DIR: dir,
      ADMIN_TOKEN: TOKEN,
      LOG_LEVEL: 'warn',
      DATABASE_URL: PG_URL,
      DATABASE_SCHEMA: SCHEMA,
    };
    await applyTopology({ amqpUrl: vh.url, managementUrl: vh.managementUrl, compiled: loadCompiledTopology(TOPOLOGY) });
    api = await startApi(env);

    // 20 malformed requests, dead-lettered by a real worker (reason "malformed").
    const worker = startWarren(['worker', '--replicas', '1'], env);
    const conn = await amqplib.connect(vh.url);
    const ch = await conn.createConfirmChannel();
    for (let i = 0; i < 20; i++) {
      const id = randomUUID();
      ids.push(id);
      ch.publish('processing', 'request', Buffer.from(`{"data": broken ${i}`), {
        persistent: true,
        messageId: id,
        correlationId: id,
        contentType: 'application/json',
      });
    }
    await ch.waitForConfirms();
    await conn.close();
    await waitFor('20 dead letters in the dead-letter queue', async () => ((await depth(DEAD)) === 20 ? true : undefined), 60_000, 250);
    // No worker while replaying: the replayed messages stay in the origin queue, to be counted there.
    await worker.stop();
    const statuses = async () =>
      Promise.all(ids.map(async (id) => ((await (await fetch(`${api?.base}/api/v1/requests/${id}`)).json()) as { status: string }).status));
    await waitFor('the store records all 20 dead', async () => ((await statuses()).every((s) => s === 'dead') ? true : undefined), 30_000, 250);
    await waitFor('the origin queue empty', async () => ((await depth(ORIGIN)) === 0 ? true : undefined), 30_000, 250);

    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update'],
    });
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, acceptDownloads: true });
    page = await context.newPage();
  }),
);

test.after(async () => {
  await browser?.close();
  await api?.stop();
  killAll();
  await vh?.cleanup();
  // The before hook may have failed before it made the folder (no Chromium, say).
  if (dir) rmSync(dir, { recursive: true, force: true });
  const c = new pg.Client({ connectionString: PG_URL });
  await c.connect();
  await c.query(`DROP SCHEMA IF EXISTS "${SCHEMA}" CASCADE`);
  await c.end();
});

test('the console asks for the token and a wrong one sees nothing', async () => {
  await page.goto(`${api?.base}/admin`);
  assert.ok(await page.isVisible('input[name="token"]'), 'a sign-in form');
  assert.is(await page.locator('#queues, #groups').count(), 0, 'nothing shown before sign-in');
  await shot('sign-in');
  await page.fill('input[name="token"]', 'not-the-right-token-at-all');
  const [res] = await Promise.all([page.waitForNavigation(), page.click('button[type="submit"]')]);
  assert.is(res?.status(), 401);
  assert.match((await page.textContent('[role="alert"]')) ?? '', /Wrong token/);
  assert.is(await page.locator('#queues, #groups').count(), 0, 'nothing shown after a wrong token');
  assert.not.match(await page.content(), /malformed/);
  assert.is((await page.context().cookies()).length, 0, 'no session cookie');
  const api401 = await page.request.get(`${api?.base}/api/v1/admin/dead-letters/stats`);
  assert.is(api401.status(), 401);
});

test('signed in, the 20 malformed messages show as one group of 20', async () => {
  await page.fill('input[name="token"]', TOKEN);
  await Promise.all([page.waitForNavigation(), page.click('button[type="submit"]')]);
  const cookie = (await page.context().cookies()).find((c) => c.name === 'warren_admin');
  assert.ok(cookie, 'a session cookie');
  assert.is(cookie?.httpOnly, true);
  assert.is(cookie?.sameSite, 'Strict');
  const rows = page.locator('#groups tbody tr');
  assert.is(await rows.count(), 1);
  assert.is((await rows.first().locator('td.count').textContent())?.trim(), '20');
  assert.match((await rows.first().textContent()) ?? '', /malformed/);
  assert.match((await rows.first().textContent()) ?? '', new RegExp(ORIGIN.replace('.', '\\.')));
  // The live queue table refreshes from the management API.
  await page.waitForFunction(() => document.querySelector('#queues-updated')?.textContent?.startsWith('live ·'), undefined, { timeout: 15_000 });
  const deadOfOrigin = await page.evaluate(
    (name) =>
      [...document.querySelectorAll<HTMLTableRowElement>('#queues tbody tr')].find((tr) => tr.cells[0]?.textContent === name)?.lastElementChild?.textContent,
    ORIGIN,
  );
  assert.is(deadOfOrigin, '20', 'the dead count of the origin queue');
  await shot('home');

  await rows.first().locator('a').click();
  await page.waitForSelector('#letters');
  assert.is(await page.locator('#letters tbody tr').count(), 20);
  assert.is(await page.locator('#letters .status-dead').count(), 20, 'the store says dead next to each');
  await shot('group');
  await page.locator('#letters tbody tr a').first().click();
  await page.waitForSelector('dl.facts');
  assert.match((await page.textContent('main')) ?? '', /malformed/);
  await shot('message');
  await page.goto(`${api?.base}/admin`);
});

test('a state-changing call without the CSRF token is refused', async () => {
  const res = await page.request.post(`${api?.base}/api/v1/admin/dead-letters/replay`, { data: { all: true } });
  assert.is(res.status(), 403);
  assert.is(await depth(DEAD), 20);
});

test('Replay, confirmed, moves all 20 back to their origin queue', async () => {
  await page.click('#groups button[data-action="replay"]');
  await page.waitForSelector('dialog#confirm[open]');
  assert.match((await page.textContent('dialog#confirm p')) ?? '', /Replay 20 dead letter/);
  await shot('confirm');
  await Promise.all([page.waitForNavigation(), page.click('#confirm-ok')]);
  await page.waitForSelector('#flash.ok');
  assert.match((await page.textContent('#flash')) ?? '', /Replayed 20 of 20/);
  await waitFor(
    '20 messages back in the origin queue, none dead',
    async () => ((await depth(ORIGIN)) === 20 && (await depth(DEAD)) === 0 ? true : undefined),
    30_000,
    250,
  );
  assert.is(await page.locator('#groups tbody tr').count(), 0, 'the group is gone from the page');
  // The live table catches up with the management API (its figures lag by a few seconds).
  await page.waitForFunction(
    (name) => {
      const row = [...document.querySelectorAll<HTMLTableRowElement>('#queues tbody tr')].find((tr) => tr.cells[0]?.textContent === name);
      return row?.cells[2]?.textContent === '20' && row.lastElementChild?.textContent === '0';
    },
    ORIGIN,
    { timeout: 30_000 },
  );
  await shot('after-replay');
});

test('Purge downloads the export first, then removes exactly what it holds', async () => {
  const conn = await amqplib.connect(vh.url);
  const ch = await conn.createConfirmChannel();
  const doomed = [randomUUID(), randomUUID(), randomUUID()];
  for (const id of doomed) {
    ch.publish('processing.requests.dlx', '', Buffer.from('{}'), {
      persistent: true,
      messageId: id,
      headers: { 'x-warren-reason': 'permanent', 'x-warren-error-message': 'account closed', 'x-warren-origin-queue': ORIGIN },
    });
  }
  await ch.waitForConfirms();
  await conn.close();
  await waitFor('a group of 3 on the page', async () => {
    await page.goto(`${api?.base}/admin`);
    return (
      await page
        .locator('#groups td.count')
        .first()
        .textContent()
        .catch(() => '')
    )?.trim() === '3'
      ? true
      : undefined;
  });
  await page.click('#groups button[data-action="purge"]');
  await page.waitForSelector('dialog#confirm[open]');
  assert.match((await page.textContent('dialog#confirm p')) ?? '', /Purge 3 dead letter.*export downloads first/);
  const [download] = await Promise.all([page.waitForEvent('download'), page.click('#confirm-ok')]);
  const path = await download.path();
  const lines = readFileSync(path, 'utf8').trim().split('\n');
  assert.equal(lines.map((l) => (JSON.parse(l) as { requestId: string }).requestId).sort(), [...doomed].sort());
  await page.waitForSelector('#flash.ok');
  assert.match((await page.textContent('#flash')) ?? '', /Exported 3 .* then purged 3/);
  await waitFor('the dead-letter queue empty', async () => ((await depth(DEAD)) === 0 ? true : undefined), 30_000, 250);
});

test('sign-out ends the session', async () => {
  await Promise.all([page.waitForNavigation(), page.click('header button.link')]);
  assert.ok(await page.isVisible('input[name="token"]'));
  await page.goto(`${api?.base}/admin/groups/anything`);
  assert.ok(await page.isVisible('input[name="token"]'), 'back to the sign-in form');
});

test.run();
