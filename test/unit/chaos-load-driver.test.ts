import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ApiClient, retryAfterMs } from '../../chaos/api-client.ts';
import { drain } from '../../chaos/drain.ts';
import { Ledger } from '../../chaos/ledger.ts';
import { LoadDriver } from '../../chaos/load-driver.ts';
import { passed, reconcile } from '../../chaos/reconcile.ts';

/**
 * A tiny in-process stand-in for the API on loopback: it answers the first try of every third
 * request 503 (Retry-After 0), resets the connection on the first try of every fifth, and
 * otherwise accepts, keyed by Idempotency-Key. Results are "done" at once, except that
 * `forget` drops some from the store.
 */
function fakeApi(forget: Set<string> = new Set()): { server: Server; tries: Map<string, number>; posts: () => number } {
  const tries = new Map<string, number>();
  const store = new Map<string, string>();
  let posts = 0;
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (c) => {
      body += c;
    });
    req.on('end', () => {
      if (req.method === 'POST') {
        posts += 1;
        const key = String(req.headers['idempotency-key']);
        const n = (tries.get(key) ?? 0) + 1;
        tries.set(key, n);
        const seq = Number(key.split('-').pop());
        if (n === 1 && seq % 5 === 0) return req.socket.destroy();
        if (n === 1 && seq % 3 === 0) return res.writeHead(503, { 'retry-after': '0' }).end('{"error":"busy"}');
        const data = (JSON.parse(body) as { data: string }).data;
        const requestId = `r-${key}`;
        if (!forget.has(key)) store.set(requestId, `${data}-processed`);
        return res.writeHead(202, { 'content-type': 'application/json' }).end(JSON.stringify({ requestId, status: 'queued' }));
      }
      const id = decodeURIComponent(String(req.url).split('/').pop() ?? '');
      const result = store.get(id);
      if (result === undefined) return res.writeHead(404).end('{}');
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ requestId: id, status: 'done', result }));
    });
  });
  return { server, tries, posts: () => posts };
}

async function listen(server: Server): Promise<string> {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

test('drives load at the asked rate, retries 503 and resets until 202, and reconciles clean', async () => {
  const api = fakeApi();
  const url = await listen(api.server);
  try {
    const ledger = new Ledger();
    const client = new ApiClient(url, 2000);
    const load = new LoadDriver({ client, ledger, rate: 40, durationMs: 1000, prefix: 'u' });
    load.start();
    await load.finished();
    const entries = ledger.entries();
    assert.is(entries.length, 40, 'rate x duration requests, however late the timers fire');
    assert.ok(entries.every((e) => e.requestIds.length === 1));
    const retried = entries.filter((e) => e.rejections > 0).length;
    const expected = entries.filter((e) => {
      const seq = Number(e.key.split('-').pop());
      return seq % 5 === 0 || seq % 3 === 0;
    }).length;
    assert.is(retried, expected);
    assert.ok((load.stats.retryCauses['http 503'] ?? 0) > 0);
    const d = await drain(client, ledger.promisedIds(), { timeoutMs: 2000 });
    const r = reconcile({ entries, observations: d.observations, brokerIdle: true });
    assert.ok(passed(r));
    assert.is(r.done, entries.length);
  } finally {
    api.server.close();
  }
});

test('a request the store forgot is reported lost after the drain deadline', async () => {
  const api = fakeApi(new Set(['v-2']));
  const url = await listen(api.server);
  try {
    const ledger = new Ledger();
    const client = new ApiClient(url, 2000);
    const load = new LoadDriver({ client, ledger, rate: 20, durationMs: 250, prefix: 'v' });
    load.start();
    await load.finished();
    const d = await drain(client, ledger.promisedIds(), { timeoutMs: 300, everyMs: 100 });
    assert.is(d.drainedAfterMs, undefined);
    const r = reconcile({ entries: ledger.entries(), observations: d.observations, brokerIdle: true });
    assert.is(r.lost, 1);
    assert.is(r.problems[0]?.key, 'v-2');
    assert.not.ok(passed(r));
  } finally {
    api.server.close();
  }
});

test('a refused connection is retried until the retry window closes, then abandoned', async () => {
  // A port nobody listens on any more: connections are refused, as while the API is down.
  const closed = createServer();
  const url = await listen(closed);
  await new Promise((r) => closed.close(r));
  const client = new ApiClient(url, 500);
  const ledger = new Ledger();
  // A window that holds several retries even when the first connection attempt is slow (a loaded machine).
  const load = new LoadDriver({ client, ledger, rate: 10, durationMs: 150, prefix: 'w', retryWindowMs: 1000 });
  load.start();
  await load.finished();
  const e = ledger.entries()[0];
  assert.ok(e?.abandoned?.includes('ECONNREFUSED'), e?.abandoned);
  assert.ok((e?.rejections ?? 0) >= 2);
  assert.is(reconcile({ entries: ledger.entries(), observations: new Map(), brokerIdle: true }).abandoned, ledger.entries().length);
});

test('Retry-After in seconds or as a date', () => {
  assert.is(retryAfterMs('2'), 2000);
  assert.is(retryAfterMs(null), undefined);
  assert.is(retryAfterMs('soon'), undefined);
  const at = retryAfterMs(new Date(Date.now() + 5000).toUTCString()) ?? 0;
  assert.ok(at > 3000 && at <= 5000);
});

test.run();
