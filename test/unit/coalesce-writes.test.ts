import { once } from 'node:events';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { coalesceWrites } from '../../core/coalesce-writes.ts';

// The frames amqplib writes in one turn leave in one write: counted at the socket's own _write
// and _writev (what the kernel is asked for), on a real loopback connection.
async function pair(): Promise<{ server: Server; client: Socket; received: () => string; calls: { write: number; writev: number } }> {
  let data = '';
  const server = createServer((s) => s.on('data', (d: Buffer) => (data += d.toString())));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as { port: number }).port;
  const client = connect({ port, host: '127.0.0.1', noDelay: true });
  await once(client, 'connect');
  const calls = { write: 0, writev: 0 };
  const s = client as unknown as { _write: (...a: unknown[]) => void; _writev: (...a: unknown[]) => void };
  const write = s._write;
  const writev = s._writev;
  s._write = function (...a: unknown[]) {
    calls.write += 1;
    write.apply(this, a);
  };
  s._writev = function (...a: unknown[]) {
    calls.writev += 1;
    writev.apply(this, a);
  };
  return { server, client, received: () => data, calls };
}

const turn = () => new Promise<void>((r) => setImmediate(r));

async function until(check: () => boolean): Promise<void> {
  while (!check()) await turn();
}

test('frames written in one turn leave in one writev; a later turn starts a new one', async () => {
  const { server, client, received, calls } = await pair();
  try {
    assert.is(coalesceWrites({ connection: { stream: client } }), true);
    for (const f of ['a', 'b', 'c']) client.write(Buffer.from(f));
    await turn();
    assert.equal(calls, { write: 0, writev: 1 }, 'three frames, one system call');
    client.write(Buffer.from('d'));
    client.write(Buffer.from('e'));
    await turn();
    assert.equal(calls, { write: 0, writev: 2 });
    await until(() => received() === 'abcde');
  } finally {
    client.destroy();
    server.close();
  }
});

test('without it, each frame is a write of its own (what amqplib does)', async () => {
  const { server, client, received, calls } = await pair();
  try {
    for (const f of ['a', 'b', 'c']) client.write(Buffer.from(f));
    await turn();
    assert.is(calls.write + calls.writev, 3);
    await until(() => received() === 'abc');
  } finally {
    client.destroy();
    server.close();
  }
});

test('a write after the socket is gone is not corked, and a connection without a socket is left alone', async () => {
  const { server, client } = await pair();
  coalesceWrites({ connection: { stream: client } });
  client.destroy();
  server.close();
  client.on('error', () => undefined);
  client.write(Buffer.from('late'));
  assert.is(client.writableCorked, 0);
  assert.is(coalesceWrites(undefined), false);
  assert.is(coalesceWrites({ connection: {} }), false);
  assert.is(coalesceWrites({ connection: { stream: { write() {} } } }), false);
});

test.run();
