import type { Message } from 'amqplib';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { copyEnvelope } from '../../worker/envelopes.ts';
import { copyProperties, resultEnvelope } from '../../worker/index.ts';

/**
 * Copies and results property by property: a property the original lacks is absent from the copy
 * (not present as undefined), the ones it has are kept, copies are mandatory, and a message
 * without a messageId gets the one the caller names.
 */
const none = {
  messageId: undefined,
  correlationId: undefined,
  contentType: undefined,
  contentEncoding: undefined,
  headers: {},
  deliveryMode: undefined,
  priority: undefined,
  replyTo: undefined,
  expiration: undefined,
  timestamp: undefined,
  type: undefined,
  userId: undefined,
  appId: undefined,
  clusterId: undefined,
} satisfies Message['properties'];
const message = (properties: Partial<Message['properties']>): Message => ({
  content: Buffer.from('body'),
  fields: { deliveryTag: 1, redelivered: false, exchange: 'x', routingKey: 'k' } as Message['fields'],
  properties: { ...none, ...properties },
});

test('a message without properties gives a copy with only persistence and the headers', () => {
  assert.equal(copyProperties(none, { h: 1 }), { persistent: true, headers: { h: 1 } });
});

test('encoding, reply-to and priority are kept too', () => {
  assert.equal(copyProperties({ ...none, contentEncoding: 'gzip', replyTo: 'r', priority: 3, timestamp: 9 }, {}), {
    persistent: true,
    headers: {},
    contentEncoding: 'gzip',
    replyTo: 'r',
    priority: 3,
    timestamp: 9,
  });
});

test('a copy is the original body on the route, mandatory; the named messageId only fills a gap', () => {
  const msg = message({ messageId: 'own' });
  const e = copyEnvelope(msg, { exchange: 'dlx', routingKey: 'dead' }, { h: 1 }, 'fallback');
  assert.equal(e, {
    exchange: 'dlx',
    routingKey: 'dead',
    content: msg.content,
    options: { persistent: true, headers: { h: 1 }, messageId: 'own', mandatory: true },
  });
  assert.is(copyEnvelope(message({}), { exchange: 'dlx', routingKey: '' }, {}, 'fallback').options.messageId, 'fallback');
  assert.not.ok('messageId' in copyEnvelope(message({}), { exchange: 'dlx', routingKey: '' }, {}).options);
});

test('a result is stamped in seconds; an unencodable one says so', () => {
  const e = resultEnvelope(
    { exchange: 'e', routingKey: 'k' },
    { requestId: 'r', result: 1, attempts: 1, processedAt: new Date(1_700_000_000_999), requestHeaders: undefined },
  );
  assert.is(e.options.timestamp, 1_700_000_000);
  assert.not.ok('headers' in e.options, 'no header table when nothing is carried');
  assert.throws(
    () => resultEnvelope({ exchange: 'e', routingKey: 'k' }, { requestId: 'r', result: 1n, attempts: 1, processedAt: new Date(), requestHeaders: undefined }),
    /cannot be encoded as JSON/,
  );
});

test.run();
