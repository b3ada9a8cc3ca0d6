import { Agent, request } from 'node:http';
import { exactQuantile } from './steps.ts';

export interface FixedRateOptions {
  /** Requests per second, sent on an even schedule (request i at i / rate seconds). */
  rate: number;
  seconds: number;
  /** Keep-alive connections; requests due while all are busy wait for one (and that wait counts). */
  connections: number;
  /** The JSON body of request i. */
  body: (i: number) => string;
  /** How long to wait for the last answers after the schedule ends. */
  tailMs?: number;
}

export interface FixedRateResult {
  offered: number;
  /** Answers by HTTP status. */
  statusCounts: Record<string, number>;
  /** 2xx answers per second of the schedule. */
  acceptedPerSecond: number;
  /** Connection errors, and requests unanswered when the tail ran out. */
  errors: number;
  /** From the time each request was due (not sent) to its answer: no coordinated omission. */
  p50Ms: number | undefined;
  p99Ms: number | undefined;
  /** The largest delay between a request's due time and its send (the generator falling behind). */
  maxSendLagMs: number;
}

/**
 * An open-loop load generator in the OpenMessaging Benchmark's manner: POSTs at a fixed rate on an
 * even schedule, whether or not earlier requests were answered. autocannon's `overallRate` is not
 * that: each connection sends its whole quota for a second as fast as it is answered, then pauses
 * until the next second, so the load arrives in bursts at each second's start (autocannon
 * lib/httpClient.js, `reqsMadeThisSecond`), and a short run gets one second's quota more.
 */
export async function offerFixedRate(url: string, opts: FixedRateOptions): Promise<FixedRateResult> {
  const target = new URL(url);
  const agent = new Agent({ keepAlive: true, maxSockets: opts.connections });
  const total = Math.round(opts.rate * opts.seconds);
  const statusCounts: Record<string, number> = {};
  const latencies: number[] = [];
  let errors = 0;
  let answered = 0;
  let maxSendLagMs = 0;
  let sent = 0;
  let allAnswered: () => void = () => undefined;
  const done = new Promise<void>((r) => {
    allAnswered = r;
  });
  const settle = () => {
    answered++;
    if (answered === total) allAnswered();
  };
  const t0 = performance.now();
  const send = (i: number) => {
    const due = t0 + (i * 1000) / opts.rate;
    maxSendLagMs = Math.max(maxSendLagMs, performance.now() - due);
    const body = opts.body(i);
    const req = request(
      {
        host: target.hostname,
        port: target.port,
        path: target.pathname,
        method: 'POST',
        agent,
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
      },
      (res) => {
        res.resume();
        res.once('end', () => {
          const code = String(res.statusCode);
          statusCounts[code] = (statusCounts[code] ?? 0) + 1;
          latencies.push(performance.now() - due);
          settle();
        });
      },
    );
    req.once('error', () => {
      errors++;
      settle();
    });
    req.end(body);
  };
  // A 2 ms tick sends what has fallen due since the last one: even to within the tick at any rate.
  const ticker = setInterval(() => {
    const due = Math.min(total, Math.floor(((performance.now() - t0) / 1000) * opts.rate) + 1);
    while (sent < due) send(sent++);
    if (sent >= total) clearInterval(ticker);
  }, 2);
  if (total === 0) allAnswered();
  const tail = new Promise<void>((r) => setTimeout(r, opts.seconds * 1000 + (opts.tailMs ?? 30_000)).unref());
  await Promise.race([done, tail]);
  clearInterval(ticker);
  agent.destroy();
  const ok = Object.entries(statusCounts).reduce((n, [code, c]) => (code.startsWith('2') ? n + c : n), 0);
  return {
    offered: total,
    statusCounts,
    acceptedPerSecond: ok / opts.seconds,
    errors: errors + (total - answered),
    p50Ms: exactQuantile(latencies, 0.5),
    p99Ms: exactQuantile(latencies, 0.99),
    maxSendLagMs,
  };
}
