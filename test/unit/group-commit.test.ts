import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { GroupCommit } from '../../core/index.ts';

/**
 * The store's group commit with a scripted flush: the test decides when each flush ends, and
 * checks which items went into which statement, what each caller gets back, and that one flush
 * runs at a time.
 */
interface Flush {
  items: string[];
  finish(results?: string[]): void;
  fail(err: Error): void;
}

function setup(maxBatch?: number) {
  const flushes: Flush[] = [];
  let running = 0;
  let maxRunning = 0;
  const gc = new GroupCommit<string, string>(
    (items) =>
      new Promise<string[]>((resolve, reject) => {
        running += 1;
        maxRunning = Math.max(maxRunning, running);
        const end = () => {
          running -= 1;
        };
        flushes.push({
          items,
          finish: (results) => {
            end();
            resolve(results ?? items.map((i) => `${i}!`));
          },
          fail: (err) => {
            end();
            reject(err);
          },
        });
      }),
    maxBatch === undefined ? {} : { maxBatch },
  );
  return { gc, flushes, maxRunning: () => maxRunning };
}

/** Lets promise callbacks and the group commit's setImmediate run. */
const turn = () => new Promise<void>((r) => setImmediate(r));
const settled = <T>(p: Promise<T>) => {
  const state: { value?: T; error?: unknown; done: boolean } = { done: false };
  p.then(
    (value) => Object.assign(state, { value, done: true }),
    (error: unknown) => Object.assign(state, { error, done: true }),
  );
  return state;
};

test('a lone item is flushed at once, in a batch of its own, and gets its result', async () => {
  const { gc, flushes } = setup();
  const a = gc.add('a');
  await turn();
  assert.equal(
    flushes.map((f) => f.items),
    [['a']],
  );
  flushes[0]?.finish();
  assert.is(await a, 'a!');
});

test('callers of the same event-loop turn share the first statement', async () => {
  const { gc, flushes } = setup();
  const ps = ['a', 'b', 'c'].map((x) => gc.add(x));
  await turn();
  assert.equal(
    flushes.map((f) => f.items),
    [['a', 'b', 'c']],
  );
  flushes[0]?.finish(['ra', 'rb', 'rc']);
  assert.equal(await Promise.all(ps), ['ra', 'rb', 'rc'], 'each caller gets the result at its own index');
});

test('a caller a few promise hops later in the same turn still joins the first statement', async () => {
  const { gc, flushes } = setup();
  const a = gc.add('a');
  // Callers of one turn arrive after awaits of their own (a parsed body, a validated key).
  await null;
  await null;
  const b = gc.add('b');
  await turn();
  assert.equal(
    flushes.map((f) => f.items),
    [['a', 'b']],
  );
  flushes[0]?.finish();
  assert.equal(await Promise.all([a, b]), ['a!', 'b!']);
});

test('callers arriving during a flush wait for it, then go together in the next one; one flush at a time', async () => {
  const { gc, flushes, maxRunning } = setup();
  const a = settled(gc.add('a'));
  await turn();
  const b = settled(gc.add('b'));
  const c = settled(gc.add('c'));
  await turn();
  assert.is(flushes.length, 1, 'no second flush while the first runs');
  assert.not.ok(b.done);
  flushes[0]?.finish();
  await turn();
  assert.ok(a.done);
  assert.not.ok(b.done, 'b waits for its own statement');
  assert.equal(
    flushes.map((f) => f.items),
    [['a'], ['b', 'c']],
  );
  flushes[1]?.finish();
  await turn();
  assert.equal([b.value, c.value], ['b!', 'c!']);
  assert.is(maxRunning(), 1);
});

test('a batch is cut at maxBatch; the rest follows in the next statement', async () => {
  const { gc, flushes } = setup(2);
  const ps = ['a', 'b', 'c', 'd', 'e'].map((x) => gc.add(x));
  await turn();
  flushes[0]?.finish();
  await turn();
  flushes[1]?.finish();
  await turn();
  flushes[2]?.finish();
  assert.equal(await Promise.all(ps), ['a!', 'b!', 'c!', 'd!', 'e!']);
  assert.equal(
    flushes.map((f) => f.items),
    [['a', 'b'], ['c', 'd'], ['e']],
  );
});

test('a failed flush rejects the callers of that batch only; the next batch is still written', async () => {
  const { gc, flushes } = setup();
  const a = settled(gc.add('a'));
  await turn();
  const b = settled(gc.add('b'));
  const boom = new Error('connection lost');
  flushes[0]?.fail(boom);
  await turn();
  assert.is(a.error, boom);
  assert.equal(flushes[1]?.items, ['b']);
  flushes[1]?.finish();
  await turn();
  assert.is(b.value, 'b!');
});

test('after the pending list drains, a new caller starts a new flush (the commit does not stall)', async () => {
  const { gc, flushes } = setup();
  const a = gc.add('a');
  await turn();
  flushes[0]?.fail(new Error('x'));
  await a.catch(() => undefined);
  await turn();
  const b = gc.add('b');
  await turn();
  assert.equal(flushes[1]?.items, ['b']);
  flushes[1]?.finish();
  assert.is(await b, 'b!');
});

test("addAll: one caller's items share the flushes with the others', in order, across maxBatch; one promise gets every result", async () => {
  const { gc, flushes } = setup(3);
  const lone = gc.add('a');
  const many = settled(gc.addAll(['b', 'c', 'd', 'e']));
  await turn();
  assert.equal(flushes[0]?.items, ['a', 'b', 'c']);
  flushes[0]?.finish(['a1', 'b1', 'c1']);
  await turn();
  assert.is(many.done, false, 'not settled while d and e are still being written');
  assert.equal(flushes[1]?.items, ['d', 'e']);
  flushes[1]?.finish(['d1', 'e1']);
  await turn();
  assert.is(await lone, 'a1');
  assert.equal(many.value, ['b1', 'c1', 'd1', 'e1']);
  assert.equal(await gc.addAll([]), []);
});

test('addAll: a failed flush rejects the caller once, even when its other items were written', async () => {
  const { gc, flushes } = setup(2);
  const many = settled(gc.addAll(['a', 'b', 'c']));
  await turn();
  flushes[0]?.finish();
  await turn();
  const boom = new Error('connection lost');
  flushes[1]?.fail(boom);
  await turn();
  assert.is(many.error, boom);
});

test('addAll past maxPending is refused whole, at once; nothing of it waits', async () => {
  const gc = new GroupCommit<string, string>(() => new Promise<string[]>(() => undefined), { maxPending: 3, behind: (n) => new Error(`behind ${n}`) });
  void gc.add('a');
  await turn();
  void gc.addAll(['b', 'c']);
  const refused = settled(gc.addAll(['d', 'e']));
  await turn();
  assert.is((refused.error as Error | undefined)?.message, 'behind 2');
  assert.is(gc.waiting, 2, 'only b and c wait; a is being flushed');
});

test.run();
