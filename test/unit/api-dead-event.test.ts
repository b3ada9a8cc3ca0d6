import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { decodeDeadEvent } from '../../api/index.ts';

const body = (o: unknown) => Buffer.from(JSON.stringify(o));

test('a worker dead letter: reason, code, message and attempts from x-warren-* headers', () => {
  const d = decodeDeadEvent({
    content: body({ requestId: 'r1', data: 1 }),
    properties: {
      messageId: 'r1',
      headers: { 'x-warren-reason': 'max-attempts', 'x-warren-error-code': 'E_X', 'x-warren-error-message': Buffer.from('boom'), 'x-warren-attempts': 4 },
    },
  });
  assert.equal(d, { requestId: 'r1', info: { reason: 'max-attempts', code: 'E_X', message: 'boom', attempts: 4 } });
});

test('a broker dead letter for the delivery limit: reason delivery-limit, attempts from x-delivery-count', () => {
  const d = decodeDeadEvent({
    content: body({ requestId: 'r2', data: 1 }),
    properties: {
      correlationId: 'r2',
      headers: { 'x-delivery-count': 11, 'x-death': [{ reason: 'delivery_limit', queue: 'processing.requests', count: 1 }] },
    },
  });
  assert.is(d.requestId, 'r2');
  assert.is(d.info.reason, 'delivery-limit');
  assert.is(d.info.attempts, 11);
  assert.is(d.info.code, 'BROKER_DEAD_LETTER');
});

test('as RabbitMQ sends it (x-delivery-count reset to 0): attempts are the queue delivery limit + 1', () => {
  const d = decodeDeadEvent(
    {
      content: body({ requestId: 'r7' }),
      properties: { messageId: 'r7', headers: { 'x-delivery-count': 0, 'x-death': [{ count: 1, reason: 'delivery_limit', queue: 'processing.requests' }] } },
    },
    { deliveryLimits: { 'processing.requests': 10 } },
  );
  assert.is(d.info.reason, 'delivery-limit');
  assert.is(d.info.attempts, 11);
});

test('without x-delivery-count nor a known limit, attempts come from the x-death count (a long, as a bigint)', () => {
  const d = decodeDeadEvent({ content: body({}), properties: { messageId: 'r3', headers: { 'x-death': [{ reason: 'delivery_limit', count: 3n }] } } });
  assert.is(d.info.reason, 'delivery-limit');
  assert.is(d.info.attempts, 3);
});

test('the requestId falls back to the body when properties carry none', () => {
  const d = decodeDeadEvent({ content: body({ requestId: 'r4', data: 1 }), properties: { headers: { 'x-warren-reason': 'permanent' } } });
  assert.is(d.requestId, 'r4');
  assert.is(d.info.reason, 'permanent');
  assert.is(d.info.attempts, undefined);
});

test('a malformed body without properties has no requestId', () => {
  const d = decodeDeadEvent({ content: Buffer.from('{not json'), properties: { headers: { 'x-warren-reason': 'malformed' } } });
  assert.is(d.requestId, undefined);
  assert.is(d.info.reason, 'malformed');
});

test('a dead letter with no reason at all is stored as unknown', () => {
  assert.equal(decodeDeadEvent({ content: body({ requestId: 'r5' }), properties: {} }).info, { reason: 'unknown' });
});

test('long error messages are truncated', () => {
  const d = decodeDeadEvent({
    content: body({ requestId: 'r6' }),
    properties: { headers: { 'x-warren-reason': 'permanent', 'x-warren-error-message': 'x'.repeat(5000) } },
  });
  assert.ok((d.info.message?.length ?? 0) <= 2001);
});

test.run();
