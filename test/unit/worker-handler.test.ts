import { setTimeout as sleep } from 'node:timers/promises';
import { pino } from 'pino';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { isPermanent, PermanentError, RetryableError, TimeoutError } from '../../core/index.ts';
import { runHandler } from '../../worker/handler.ts';
import { createDemoProcessor, type Handler, HandlerAbandonedError, type HandlerContext } from '../../worker/index.ts';

const logger = pino({ level: 'silent' });
const context = { requestId: 'r', attempt: 1, maxAttempts: 3, redelivered: false, headers: {}, logger };
const never = new AbortController().signal;

test('runHandler returns the handler result and passes the context', async () => {
  const seen: HandlerContext[] = [];
  const handler: Handler<string, string> = (data, ctx) => {
    seen.push(ctx);
    return `${data}!`;
  };
  assert.is(await runHandler(handler, 'x', context, 1000, never), 'x!');
  assert.is(seen[0]?.requestId, 'r');
  assert.is(seen[0]?.signal.aborted, false);
});

test('a handler past its timeout fails with TimeoutError and sees its signal aborted', async () => {
  let signal: AbortSignal | undefined;
  const handler: Handler = async (_d, ctx) => {
    signal = ctx.signal;
    await sleep(10_000, undefined, { signal: ctx.signal });
  };
  const started = Date.now();
  const err = await runHandler(handler, null, context, 50, never).catch((e: unknown) => e);
  assert.instance(err, TimeoutError);
  assert.ok(Date.now() - started < 1000);
  assert.is(signal?.aborted, true);
  assert.not.ok(isPermanent(err), 'a timeout is retryable');
});

test('a shutdown abandons a running handler at once', async () => {
  const shutdown = new AbortController();
  const p = runHandler(() => sleep(10_000, undefined, { signal: shutdown.signal }), null, context, 60_000, shutdown.signal);
  shutdown.abort(new HandlerAbandonedError());
  const err = await p.catch((e: unknown) => e);
  assert.instance(err, HandlerAbandonedError);
});

test('a handler that throws synchronously is a failure, not a crash', async () => {
  const err = await runHandler(
    () => {
      throw new PermanentError('nope');
    },
    null,
    context,
    1000,
    never,
  ).catch((e: unknown) => e);
  assert.ok(isPermanent(err));
});

test('isPermanent knows a PermanentError thrown by another copy of the package', async () => {
  // A query string loads core/errors.ts a second time: the classes of another copy of Warren.
  const spec = '../../core/errors.ts?another-copy';
  const other = (await import(spec)) as typeof import('../../core/errors.ts');
  assert.is.not(other.PermanentError, PermanentError);
  assert.ok(isPermanent(new other.PermanentError('hard bounce')));
  assert.not.ok(isPermanent(new other.RetryableError('greylisted')));
  assert.not.ok(isPermanent({ code: 'PERMANENT' }), 'the code alone does not make an error permanent');
});

const ctx: HandlerContext = { ...context, signal: never };

test('demo processor: appends -processed after its delay', async () => {
  const demo = createDemoProcessor({ delayMs: 20, failRate: 0, hooks: false });
  const started = Date.now();
  assert.is(await demo('hello', ctx), 'hello-processed');
  assert.ok(Date.now() - started >= 15);
});

test('demo processor: fail: always fails transiently; non-string data is permanent', async () => {
  const demo = createDemoProcessor({ delayMs: 0, failRate: 0, hooks: true });
  for (let i = 0; i < 3; i++) {
    const err = await Promise.resolve(demo('fail:x', { ...ctx, attempt: i + 1 })).catch((e: unknown) => e);
    assert.instance(err, RetryableError);
  }
  const err = await Promise.resolve(demo({ not: 'a string' }, ctx)).catch((e: unknown) => e);
  assert.ok(isPermanent(err));
});

test('demo processor: DEMO_FAIL_RATE fails when the dice say so', async () => {
  const rolls = [0.1, 0.9];
  const demo = createDemoProcessor({ delayMs: 0, failRate: 0.5, hooks: false, random: () => rolls.shift() ?? 1 });
  assert.instance(await Promise.resolve(demo('a', ctx)).catch((e: unknown) => e), RetryableError);
  assert.is(await demo('a', ctx), 'a-processed');
});

test('demo processor: crash: calls the crash hook before doing any work', async () => {
  let crashed = 0;
  const demo = createDemoProcessor({ delayMs: 10_000, failRate: 0, hooks: true, crash: () => void crashed++ });
  const err = await Promise.resolve(demo('crash:now', ctx)).catch((e: unknown) => e);
  assert.is(crashed, 1);
  assert.ok(err instanceof Error);
});

test('demo processor: without DEMO_HOOKS, crash: and fail: data is ordinary data (a client cannot end the workers)', async () => {
  let crashed = 0;
  const demo = createDemoProcessor({ delayMs: 0, failRate: 0, hooks: false, crash: () => void crashed++ });
  assert.is(await demo('crash:now', ctx), 'crash:now-processed');
  assert.is(await demo('fail:x', ctx), 'fail:x-processed');
  assert.is(crashed, 0);
});

test.run();
