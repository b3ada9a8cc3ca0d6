import amqplib, { type ChannelModel, type ConfirmChannel } from 'amqplib';
import { pino } from 'pino';
import * as assert from 'uvu/assert';
import { applyTopology, type CompiledTopology } from '../../topology/index.ts';
import { defineWorker, type Worker, type WorkerOptions } from '../../worker/index.ts';
import { createTestVhost, type TestVhost, within } from './broker.ts';

/** A worker started in a vhost of its own with the topology applied, and a confirm channel beside it. */
export interface WorkerInVhost {
  vhost: TestVhost;
  conn: ChannelModel;
  ch: ConfirmChannel;
  worker: Worker;
  /** Stops the worker (with `graceMs`), closes the connection and deletes the vhost. */
  cleanup(graceMs: number): Promise<void>;
}

export async function startWorkerInVhost<TData = unknown, TResult = unknown>(
  prefix: string,
  compiled: CompiledTopology,
  options: Omit<WorkerOptions<TData, TResult>, 'urls' | 'topology' | 'logger'>,
): Promise<WorkerInVhost> {
  const vhost = await createTestVhost(prefix);
  let conn: ChannelModel | undefined;
  let worker: Worker | undefined;
  let ch: ConfirmChannel;
  try {
    assert.is((await applyTopology({ amqpUrl: vhost.url, compiled })).failed, undefined);
    conn = await amqplib.connect(vhost.url);
    ch = await conn.createConfirmChannel();
    worker = defineWorker<TData, TResult>({
      ...options,
      urls: [vhost.url],
      topology: compiled,
      logger: pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' }),
    });
    await within(10_000, 'worker start', worker.start());
  } catch (err) {
    await worker?.stop(0).catch(() => undefined);
    await conn?.close().catch(() => undefined);
    await vhost.cleanup();
    throw err;
  }
  return {
    vhost,
    conn,
    ch,
    worker,
    cleanup: async (graceMs) => {
      await worker.stop(graceMs);
      await conn.close();
      await vhost.cleanup();
    },
  };
}
