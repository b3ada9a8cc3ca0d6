import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { answerFor } from '../../api/errors.ts';
import { fastAccept } from '../../api/http/fast-accept.ts';

/**
 * The fast path for POST /api/v1/processData on a real HTTP server: the common form reaches the
 * accept step with the parsed body, a malformed one the error answer, and everything else falls
 * through to the application (here a stand-in answering 299) untouched.
 */
const seen: Array<{ via: 'accept' | 'fail' | 'app'; body?: unknown; code?: string }> = [];
let server: Server;
let base: string;

test.before(async () => {
  const fast = fastAccept({
    jobAt: (url) => (url === '/api/v1/processData' ? 'job' : undefined),
    limitBytes: 100,
    accept: async (job, body, _req, res) => {
      assert.is(job, 'job');
      seen.push({ via: 'accept', body });
      res.statusCode = 202;
      res.end();
    },
    fail: (err, _req, res) => {
      const answer = answerFor(err);
      seen.push({ via: 'fail', code: answer.code });
      res.statusCode = answer.status;
      res.end();
    },
  });
  server = createServer((req, res) => {
    if (fast(req, res)) return;
    seen.push({ via: 'app' });
    // What express would do with the body: read it.
    req.resume().once('end', () => {
      res.statusCode = 299;
      res.end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

test.after(() => new Promise<void>((r) => server.close(() => r())));

async function post(body: BodyInit, headers: Record<string, string> = { 'content-type': 'application/json' }, path = '/api/v1/processData') {
  seen.length = 0;
  const res = await fetch(`${base}${path}`, { method: 'POST', body, headers, duplex: 'half' } as RequestInit);
  await res.arrayBuffer();
  return { status: res.status, seen: [...seen] };
}

test('the common form reaches the accept step with the parsed body (a UTF-8 BOM dropped, the charset named or not)', async () => {
  assert.equal(await post('{"data":"x"}'), { status: 202, seen: [{ via: 'accept', body: { data: 'x' } }] });
  assert.equal(await post('\ufeff {"data":[1]}', { 'content-type': 'Application/JSON; charset=UTF-8' }), {
    status: 202,
    seen: [{ via: 'accept', body: { data: [1] } }],
  });
});

test('a body that is not a JSON object or array gets the error answer express gives (400 MALFORMED_JSON)', async () => {
  for (const body of ['{"data":', '"just a string"', '42', 'null']) {
    assert.equal(await post(body), { status: 400, seen: [{ via: 'fail', code: 'MALFORMED_JSON' }] }, body);
  }
});

test('every other request goes to the application untouched', async () => {
  const app = { status: 299, seen: [{ via: 'app' }] };
  assert.equal(await post('{"data":1}', { 'content-type': 'text/plain' }), app, 'another type');
  assert.equal(await post('{"data":1}', { 'content-type': 'application/json; charset=utf-16' }), app, 'another charset');
  assert.equal(await post('{"data":1}', { 'content-type': 'application/json', 'content-encoding': 'gzip' }), app, 'an encoding');
  assert.equal(await post(`{"data":"${'x'.repeat(200)}"}`), app, 'over the limit: express answers 413');
  assert.equal(await post(''), app, 'an empty body: express answers 400');
  assert.equal(await post('{"data":1}', undefined, '/api/v1/processData?x=1'), app, 'a query string');
  assert.equal(await post('{"data":1}', undefined, '/api/v1/other'), app, 'a path that names no job');
  const stream = new ReadableStream({
    start(c) {
      c.enqueue(new TextEncoder().encode('{"data":1}'));
      c.close();
    },
  });
  assert.equal(await post(stream), app, 'a chunked body (no declared length)');
});

test.run();
