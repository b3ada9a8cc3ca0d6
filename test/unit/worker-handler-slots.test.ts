import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { HandlerSlots } from '../../worker/handler-slots.ts';

test('slots are taken up to the size, then waiters get them in arrival order as they are released', async () => {
  const slots = new HandlerSlots(2);
  assert.ok(await slots.acquire());
  assert.ok(await slots.acquire());
  const order: string[] = [];
  const a = slots.acquire().then((got) => order.push(`a:${got}`));
  const b = slots.acquire().then((got) => order.push(`b:${got}`));
  await Promise.resolve();
  assert.is(slots.busy, 2);
  assert.is(slots.waiting, 2);
  assert.equal(order, []);
  slots.release();
  await a;
  assert.equal(order, ['a:true']);
  assert.is(slots.busy, 2, 'the released slot went to the waiter, not back to the pool');
  slots.release();
  await b;
  assert.equal(order, ['a:true', 'b:true']);
  slots.release();
  slots.release();
  assert.is(slots.busy, 0);
});

test('an abort ends a wait without a slot; an aborted signal takes none at all', async () => {
  const slots = new HandlerSlots(1);
  assert.ok(await slots.acquire());
  const stop = new AbortController();
  const waiting = slots.acquire(stop.signal);
  stop.abort();
  assert.is(await waiting, false);
  assert.is(slots.waiting, 0);
  assert.is(await slots.acquire(stop.signal), false);
  slots.release();
  assert.is(slots.busy, 0, 'the aborted waiter took nothing: the release frees the only slot');
  assert.ok(await slots.acquire(new AbortController().signal));
});

test('a size that is not a positive integer is refused', () => {
  assert.throws(() => new HandlerSlots(0), /positive integer/);
  assert.throws(() => new HandlerSlots(1.5), /positive integer/);
});

test.run();
