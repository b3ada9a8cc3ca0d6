import type { MessageProperties } from 'amqplib';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { AdminAuth } from '../../api/admin/admin-auth.ts';
import { html } from '../../api/admin/html.ts';
import { databaseSchemaVar } from '../../api/config.ts';
import { classifyBrokerError, decodeDeadLetter, digestOf, ExportSigner } from '../../api/dead-letters/index.ts';
import { ConfigError, copyProperties, HEADERS, readEnv } from '../../core/index.ts';

const letter = (id: string, deadAt = '2026-01-01T00:00:00.000Z', body = '{}') =>
  decodeDeadLetter({
    properties: { messageId: id, headers: { [HEADERS.reason]: 'permanent', [HEADERS.errorMessage]: 'no', [HEADERS.deadAt]: deadAt } },
    content: Buffer.from(body),
  });

test('an export token lists exactly the exported (id, digest) pairs and nothing else verifies', () => {
  const signer = new ExportSigner('admin-token-0123456789');
  const entries = [['a', digestOf(letter('a'))] as const, ['b', digestOf(letter('b'))] as const];
  const token = signer.sign(entries);
  assert.equal(signer.verify(token), entries);
  const [payload, mac] = token.split('.') as [string, string];
  const forged = Buffer.from(JSON.stringify([...entries, ['c', 'x']])).toString('base64url');
  assert.is(signer.verify(`${forged}.${mac}`), undefined, 'a payload with another id');
  assert.is(signer.verify(`${payload}.${mac.slice(0, -1)}${mac.endsWith('x') ? 'y' : 'x'}`), undefined, 'a changed signature');
  assert.is(new ExportSigner('another-token-0123456789').verify(token), undefined, 'another secret');
  assert.is(signer.verify('nonsense'), undefined);
});

test('the same id dead-lettered again (after a replay) has another digest, so an old export cannot purge it', () => {
  assert.is(digestOf(letter('a')), digestOf(letter('a')));
  assert.is.not(digestOf(letter('a')), digestOf(letter('a', '2026-01-02T00:00:00.000Z')));
  assert.is.not(digestOf(letter('a')), digestOf(letter('a', undefined, '{"other":1}')));
});

test('a console session is signed, expires, and ends at sign-out; each has its own CSRF token', () => {
  const auth = new AdminAuth('admin-token-0123456789');
  const now = Date.now();
  const s1 = auth.newSession(now);
  const s2 = auth.newSession(now);
  const id1 = auth.sessionOf(s1, now);
  assert.ok(id1);
  assert.is.not(auth.csrfOf(id1 as string), auth.csrfOf(auth.sessionOf(s2, now) as string));
  assert.is(auth.sessionOf(`${s1.slice(0, -1)}${s1.endsWith('A') ? 'B' : 'A'}`, now), undefined, 'tampered');
  assert.is(auth.sessionOf(`${now + 10 ** 9}.${s1.split('.')[1]}.${s1.split('.')[2]}`, now), undefined, 'expiry changed');
  assert.is(auth.sessionOf(s1, now + 13 * 3600 * 1000), undefined, 'expired after 12 h');
  assert.is(new AdminAuth('another-token-0123456789').sessionOf(s1, now), undefined, 'another token');
  auth.signOut(s1, now);
  assert.is(auth.sessionOf(s1, now), undefined, 'signed out');
  assert.ok(auth.sessionOf(s2, now), 'the other session lives on');
  assert.ok(auth.tokenMatches('admin-token-0123456789'));
  assert.not.ok(auth.tokenMatches('admin-token-012345678'));
});

test('the pages escape what dead letters carry', () => {
  const evil = '<script>alert("x")</script>';
  assert.is(html`<td>${evil}</td>`.text, '<td>&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;</td>');
  assert.is(html`<ul>${[html`<li>${'a&b'}</li>`]}</ul>`.text, '<ul><li>a&amp;b</li></ul>');
});

test('a replay copies properties as the worker does: no expiration, no userId', () => {
  const props = { messageId: 'm', expiration: '60000', userId: 'someone', contentType: 'application/json', headers: {} } as unknown as MessageProperties;
  const out = copyProperties(props, { h: 1 });
  assert.equal(out, { persistent: true, headers: { h: 1 }, messageId: 'm', contentType: 'application/json' });
});

test('broker failures become answers naming the queue: 404 gone, 409 refused, 503 unavailable', () => {
  const closed = (code: number) => Object.assign(new Error(`Channel closed by server: ${code}`), { code });
  assert.equal(
    [classifyBrokerError(closed(404), 'q.dead').status, classifyBrokerError(closed(404), 'q.dead').message],
    [404, 'queue "q.dead" does not exist (run warren topology apply)'],
  );
  assert.is(classifyBrokerError(closed(405), 'q.dead').status, 409);
  assert.is(classifyBrokerError(new Error('Connection closed'), 'q.dead').status, 503);
});

test('DATABASE_SCHEMA: one validator for the API and warren dlq', () => {
  assert.equal(readEnv({ DATABASE_SCHEMA: databaseSchemaVar() }, { DATABASE_SCHEMA: 'tenant_1' }), { DATABASE_SCHEMA: 'tenant_1' });
  assert.throws(
    () => readEnv({ DATABASE_SCHEMA: databaseSchemaVar() }, { DATABASE_SCHEMA: 'x"; DROP TABLE requests; --' }),
    (e: unknown) => e instanceof ConfigError,
  );
});

test.run();
