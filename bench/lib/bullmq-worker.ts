// One BullMQ worker process for the peer section: `node --import tsx bullmq-worker.ts`, with
// BULLMQ_PORT, BULLMQ_QUEUE, BULLMQ_PREFIX and BULLMQ_CONCURRENCY. A no-op processor returning a
// small result, kept by BullMQ as the job's return value (removeOnComplete off: the result stored).
import { Worker } from 'bullmq';

const port = Number(process.env.BULLMQ_PORT);
const queue = process.env.BULLMQ_QUEUE;
const prefix = process.env.BULLMQ_PREFIX;
const concurrency = Number(process.env.BULLMQ_CONCURRENCY ?? '50');
if (!Number.isInteger(port) || !queue || !prefix) throw new Error('BULLMQ_PORT, BULLMQ_QUEUE and BULLMQ_PREFIX are required');

const worker = new Worker(queue, async (job) => ({ ok: true, id: job.id }), {
  connection: { host: '127.0.0.1', port, maxRetriesPerRequest: null },
  prefix,
  concurrency,
  removeOnComplete: { count: 1_000_000 },
});
worker.on('error', (err) => console.error(`bullmq worker: ${err.message}`));
// The parent waits until the queue lists both workers before it adds jobs: start-up is not timed.
await worker.waitUntilReady();
process.once('SIGTERM', () => {
  void worker.close().then(() => process.exit(0));
});
