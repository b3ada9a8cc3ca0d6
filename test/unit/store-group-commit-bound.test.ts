import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { StoreUnavailableError } from '../../api/errors.ts';
import { STORE_BATCHES } from '../../api/store/sql-store.ts';
import { GroupCommit } from '../../core/index.ts';

/** A flush the test completes by hand: the database "stalls" until release() is called. */
function stalledFlush() {
  const calls: string[][] = [];
  let release: () => void = () => {};
  const gate = new Promise<void>((r) => {
    release = r;
  });
  const flush = async (items: string[]) => {
    calls.push(items);
    await gate;
    return items.map(() => undefined);
  };
  return { flush, calls, release: () => release() };
}

test('a stalled store: writes past maxPending are refused at once, the waiting list stays bounded', async () => {
  const db = stalledFlush();
  const gc = new GroupCommit<string>(db.flush, { ...STORE_BATCHES, maxBatch: 2, maxPending: 3 });
  const first = gc.add('a'); // the first batch, written (and stalled) from the next turn
  await new Promise<void>((r) => setImmediate(r));
  assert.equal(db.calls, [['a']]);
  const waiting = ['b', 'c', 'd'].map((x) => gc.add(x));
  assert.is(gc.waiting, 3);
  let refused: unknown;
  await gc.add('e').catch((err: unknown) => {
    refused = err;
  });
  assert.instance(refused, StoreUnavailableError);
  assert.match(String((refused as Error).message), /the store is behind: 3 writes/);
  assert.is(gc.waiting, 3, 'a refused write is not queued');
  db.release();
  await Promise.all([first, ...waiting]);
  assert.equal(db.calls, [['a'], ['b', 'c'], ['d']]);
  assert.is(gc.waiting, 0);
  // Room again once the backlog is written.
  await gc.add('f');
});

test('many callers in one turn are one batch; the bound counts only what waits', async () => {
  const flushed: string[][] = [];
  const gc = new GroupCommit<string>(async (items) => {
    flushed.push(items);
    return items.map(() => undefined);
  }, STORE_BATCHES);
  await Promise.all(Array.from({ length: 500 }, (_, i) => gc.add(String(i))));
  assert.is(flushed.length, 1);
  assert.is(flushed[0]?.length, 500);
});

test.run();
