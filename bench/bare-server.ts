// The HTTP baseline: an express endpoint that parses the body and answers 202 without publishing,
// run as its own process like Warren's API so both are measured the same way.
import express from 'express';

const app = express();
app.use(express.json({ limit: '1mb' }));
let i = 0;
app.post('/api/v1/processData', (req, res) => {
  const requestId = `bare-${i++}`;
  res.status(202).json({ requestId, status: 'queued', statusUrl: `/api/v1/requests/${requestId}`, kind: typeof req.body });
});
app.get('/readyz', (_req, res) => {
  res.json({ ready: true });
});
const server = app.listen(Number(process.env.PORT ?? 0), '127.0.0.1');
process.on('SIGTERM', () => server.close(() => process.exit(0)));
