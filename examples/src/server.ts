import express, { type NextFunction, type Request, type Response } from 'express';
import { createProducer, EnqueueError, JobValidationError } from 'warren';
import { emailData, thumbnailData } from './schemas.js';

/**
 * The application's own HTTP server. It enqueues through Warren's producer: a 202 means the
 * broker confirmed the job (it survives a broker restart); a full queue or a broker under an
 * alarm is a 503 with Retry-After, never a request held in memory; bad data is a 400 before
 * anything is sent.
 */
const env = (name: string, fallback: string) => process.env[name]?.trim() || fallback;
const urls = env('AMQP_URL', 'amqp://guest:guest@127.0.0.1:5672').split(',');
const topology = env('TOPOLOGY', new URL('../topology', import.meta.url).pathname);
const port = Number(env('PORT', '8080'));
// Where clients poll a thumbnail's status: the `warren api` that stores the results.
const statusBase = env('WARREN_API_URL', 'http://127.0.0.1:3000');

const producer = await createProducer({
  urls,
  topology,
  // The schemas enqueue checks, by job name (the same ones the worker checks).
  jobs: [
    { queue: 'thumbnails', schema: thumbnailData },
    { queue: 'emails', schema: emailData },
  ],
  connectionName: 'example-server',
});

const app = express();
app.use(express.json({ limit: '64kb' }));

app.post('/thumbnails', async (req: Request, res: Response) => {
  const requestId = await producer.enqueue('thumbnails', req.body, { idempotencyKey: req.get('Idempotency-Key') });
  res.status(202).json({ requestId, statusUrl: `${statusBase}/api/v1/requests/${requestId}` });
});

app.post('/emails', async (req: Request, res: Response) => {
  // Fire-and-forget: the requestId is for the logs and the dead letters, not for polling.
  const requestId = await producer.enqueue('emails', req.body, { idempotencyKey: req.get('Idempotency-Key') });
  res.status(202).json({ requestId });
});

app.use((err: unknown, _req: Request, res: Response, _next: NextFunction) => {
  if (err instanceof JobValidationError) {
    res.status(400).json({ error: err.code, message: err.message, issues: err.issues });
  } else if (err instanceof EnqueueError) {
    // TIMEOUT means the outcome is unknown: a retry with the same Idempotency-Key is harmless.
    res.set('Retry-After', String(Math.ceil(err.retryAfterMs / 1000)));
    res.status(503).json({ error: err.code, message: err.message, outcome: err.outcome });
  } else if (err instanceof SyntaxError) {
    res.status(400).json({ error: 'INVALID_JSON', message: 'the body is not valid JSON' });
  } else {
    console.error(err);
    res.status(500).json({ error: 'INTERNAL', message: 'internal error' });
  }
});

const server = app.listen(port, () => console.log(`example server on http://127.0.0.1:${port}`));

// Stop taking requests, then wait for the confirms still pending before the process ends.
const stop = () => {
  server.close();
  producer.close().then(
    () => process.exit(0),
    () => process.exit(1),
  );
};
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
