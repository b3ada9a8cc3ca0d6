import { connect } from 'amqplib';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { LinkProxy } from '../../chaos/link-proxy.ts';
import { createTestVhost, loud, type TestVhost, within } from '../helpers/broker.ts';

/**
 * The chaos suite's TCP proxy against a real broker: a stalled link holds a publish's confirm
 * (the client sees silence, not an error), releasing it lets the confirm through, and a reset
 * ends the client's connection with ECONNRESET.
 */
let vh: TestVhost;
let proxy: LinkProxy;

test.before(
  loud(async () => {
    vh = await createTestVhost('chaos-proxy');
    const u = new URL(vh.url);
    proxy = new LinkProxy('test', { host: u.hostname, port: Number(u.port || 5672) });
    await proxy.listen();
  }),
);

test.after(
  loud(async () => {
    await proxy.close();
    await vh.cleanup();
  }),
);

const viaProxy = () => vh.url.replace(/@[^/]+/, `@127.0.0.1:${proxy.port}`);

test('a stall holds confirms without an error; passing again lets them through; a reset ends the connection', async () => {
  const conn = await within(10_000, 'connect through the proxy', connect(viaProxy()));
  const closed = new Promise<string>((resolve) => {
    conn.on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
    conn.on('close', () => resolve('closed'));
  });
  const ch = await conn.createConfirmChannel();
  await ch.assertQueue('proxy-probe', { durable: false });
  assert.is(proxy.open, 1);

  proxy.setMode({ kind: 'stall' });
  ch.sendToQueue('proxy-probe', Buffer.from('a'));
  const confirmed = ch.waitForConfirms().then(() => 'confirmed');
  const during = await Promise.race([confirmed, new Promise((r) => setTimeout(() => r('silence'), 1500))]);
  assert.is(during, 'silence', 'no confirm may cross a stalled link');

  proxy.setMode({ kind: 'delay', ms: 50 });
  assert.is(await within(10_000, 'the held confirm', confirmed), 'confirmed');

  assert.is(proxy.reset(), 1);
  assert.match(await within(10_000, 'the connection to end after the reset', closed), /ECONNRESET|closed/);
});

test.run();
