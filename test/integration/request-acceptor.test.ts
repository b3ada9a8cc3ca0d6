import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { openResultStore, RequestAcceptor, type RequestPublisher, type ResultStore } from '../../api/index.ts';
import { createLogger } from '../../core/index.ts';
import { EnqueueError } from '../../producer/index.ts';
import { type CompiledJob, loadCompiledTopology } from '../../topology/index.ts';
import { waitFor, within } from '../helpers/broker.ts';

/**
 * The accept step against the embedded store, with a publisher the test settles by hand: the
 * queued row is written while the publish waits, the answer waits for both, and a refused publish
 * leaves no row behind. (The real broker's nacks and timeouts are in api-faults.test.ts.)
 */
const logger = createLogger({ name: 'test', level: process.env.LOG_LEVEL ?? 'silent' });
const T = 60_000;
const job = loadCompiledTopology().jobs.process as CompiledJob;

/** Holds every publish until the test acks or refuses it. */
class HeldPublisher implements RequestPublisher {
  readonly held = new Map<string, { resolve: () => void; reject: (err: Error) => void }>();
  publish(_job: CompiledJob, requestId: string): Promise<void> {
    return new Promise((resolve, reject) => this.held.set(requestId, { resolve, reject }));
  }
  async next(): Promise<string> {
    return waitFor('a publish', () => [...this.held.keys()][0]);
  }
  settle(requestId: string, err?: Error): void {
    const h = this.held.get(requestId);
    this.held.delete(requestId);
    if (err) h?.reject(err);
    else h?.resolve();
  }
}

const s = suite<{ dir: string; store?: ResultStore; publisher: HeldPublisher; acceptor?: RequestAcceptor }>('request acceptor', {
  dir: '',
  publisher: new HeldPublisher(),
});

s.before(async (ctx) => {
  ctx.dir = mkdtempSync(join(tmpdir(), 'warren-acceptor-'));
  ctx.store = await within(T, 'open store', openResultStore({ dataDir: ctx.dir, logger }));
  ctx.acceptor = new RequestAcceptor({ publisher: ctx.publisher, store: ctx.store, logger, publishTimeoutMs: 5000 });
});
s.after(async (ctx) => {
  await ctx.store?.close();
  rmSync(ctx.dir, { recursive: true, force: true });
});

/** Starts an accept and waits for its publish: its outcome (the error, if it rejects) and requestId. */
async function startAccept(
  ctx: { acceptor?: RequestAcceptor; publisher: HeldPublisher },
  data: unknown,
): Promise<{ requestId: string; outcome: Promise<unknown> }> {
  const outcome = (ctx.acceptor as RequestAcceptor).accept(job, data).then(
    () => undefined,
    (e: unknown) => e,
  );
  return { requestId: await ctx.publisher.next(), outcome };
}

function queuedRow(store: ResultStore, requestId: string): Promise<true> {
  return waitFor('the queued row', async () => (await store.get(requestId))?.status === 'queued' || undefined);
}

s('the row is written while the publish waits; the answer waits for the confirm', async (ctx) => {
  const { store, acceptor, publisher } = ctx as Required<typeof ctx>;
  let answered = false;
  const accepted = acceptor.accept(job, { n: 1 }).then((a) => {
    answered = true;
    return a;
  });
  const requestId = await publisher.next();
  await queuedRow(store, requestId);
  assert.is(answered, false, 'answered before the broker confirmed');
  publisher.settle(requestId);
  assert.equal(await within(T, 'accept', accepted), { requestId, replayed: false });
  assert.is((await store.get(requestId))?.status, 'queued');
});

const refusal = (code: 'PUBLISH_REJECTED' | 'TIMEOUT' | 'BROKER_UNAVAILABLE', requestId: string) => new EnqueueError(code, `refused: ${code}`, requestId, 1000);

for (const code of ['PUBLISH_REJECTED', 'BROKER_UNAVAILABLE'] as const) {
  s(`a publish that fails (${code}) rejects, and its row is removed`, async (ctx) => {
    const { store, publisher } = ctx as Required<typeof ctx>;
    const { requestId, outcome } = await startAccept(ctx, { n: 2 });
    await queuedRow(store, requestId);
    publisher.settle(requestId, refusal(code, requestId));
    const err = await within(T, 'accept', outcome);
    assert.ok(err instanceof EnqueueError);
    await waitFor('the row removed', async () => ((await store.get(requestId)) === undefined ? true : undefined));
  });
}

s('a publish that fails before the row is written leaves no row either', async (ctx) => {
  const { store, publisher } = ctx as Required<typeof ctx>;
  // Keep the store's accept batches busy, so this request's row waits for a later batch.
  const busy = Promise.all(Array.from({ length: 2000 }, (_, i) => store.accept(`busy-${i}`)));
  await new Promise((r) => setImmediate(r));
  const { requestId, outcome } = await startAccept(ctx, { n: 3 });
  // Refused before the row's write is done.
  publisher.settle(requestId, refusal('PUBLISH_REJECTED', requestId));
  assert.ok((await within(T, 'accept', outcome)) instanceof EnqueueError);
  await within(T, 'busy accepts', busy);
  await within(T, 'the refused row removed', (ctx.acceptor as RequestAcceptor).drain());
  assert.is(await store.get(requestId), undefined);
});

s('a refused request whose outcome arrives anyway (it reached the queue) keeps that outcome', async (ctx) => {
  const { store, publisher } = ctx as Required<typeof ctx>;
  const { requestId, outcome } = await startAccept(ctx, { n: 4 });
  await queuedRow(store, requestId);
  // The worker was faster than the failure: the result is in before the row is removed.
  await store.recordResult({ requestId, result: 'processed', attempts: 1 });
  publisher.settle(requestId, refusal('BROKER_UNAVAILABLE', requestId));
  await within(T, 'accept', outcome);
  await within(T, 'the refused request handled', (ctx.acceptor as RequestAcceptor).drain());
  assert.is((await store.get(requestId))?.status, 'done');
});

s('a confirm timeout is answered as unknown with the requestId; the row stays until the broker refuses it after all', async (ctx) => {
  const { store, publisher, acceptor } = ctx as Required<typeof ctx>;
  const accepted = acceptor.accept(job, { n: 6 });
  const requestId = await publisher.next();
  publisher.settle(requestId, refusal('TIMEOUT', requestId));
  assert.equal(await within(T, 'accept', accepted), { requestId, replayed: false, unknown: true });
  assert.is((await store.get(requestId))?.status, 'queued', 'the row stays: the message may be enqueued');
  // The broker's late answer: a nack. It surely was not enqueued, and the status says so (404).
  acceptor.lateOutcome(requestId, false);
  await within(T, 'the late refusal handled', acceptor.drain());
  assert.is(await store.get(requestId), undefined);
  // A late confirm changes nothing.
  const second = acceptor.accept(job, { n: 7 });
  const other = await publisher.next();
  publisher.settle(other, refusal('TIMEOUT', other));
  assert.is((await within(T, 'accept', second)).unknown, true);
  acceptor.lateOutcome(other, true);
  await within(T, 'drain', acceptor.drain());
  assert.is((await store.get(other))?.status, 'queued');
});

s('a request refused at once (no broker, blocked, window full) writes no row at all', async (ctx) => {
  const { store } = ctx as Required<typeof ctx>;
  let writes = 0;
  const counting = new Proxy(store, {
    get(target, prop, receiver) {
      if (prop === 'accept') {
        return (...args: Parameters<ResultStore['accept']>) => {
          writes += 1;
          return target.accept(...args);
        };
      }
      const v = Reflect.get(target, prop, receiver);
      return typeof v === 'function' ? v.bind(target) : v;
    },
  });
  const refusing: RequestPublisher = {
    publish: () => Promise.reject(new Error('not reached')),
    refusal: (_job, requestId) => refusal('BROKER_UNAVAILABLE', requestId),
  };
  const acceptor = new RequestAcceptor({ publisher: refusing, store: counting, logger, publishTimeoutMs: 5000 });
  const err = await within(
    T,
    'accept',
    acceptor.accept(job, { n: 5 }).catch((e: unknown) => e),
  );
  assert.instance(err, EnqueueError);
  assert.is((err as EnqueueError).code, 'BROKER_UNAVAILABLE');
  await within(T, 'cleanups', acceptor.drain());
  assert.is(writes, 0, 'no store statement for a request that could not be sent');
});

s.run();
