import autocannon from 'autocannon';

export interface HttpLoadResult {
  requestsPerSecond: number;
  /** 2xx answers per second. */
  acceptedPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  non2xx: number;
  errors: number;
  total: number;
}

/** autocannon against one URL: POST processData bodies over `connections` keep-alive connections. */
export async function postLoad(url: string, options: { connections: number; seconds: number }): Promise<HttpLoadResult> {
  let n = 0;
  const result = await autocannon({
    url,
    method: 'POST',
    connections: options.connections,
    duration: options.seconds,
    headers: { 'content-type': 'application/json' },
    requests: [
      {
        setupRequest: (req) => ({ ...req, body: JSON.stringify({ data: `bench-${n++}` }) }),
      },
    ],
  });
  const total = result.requests.total;
  const ok = result['2xx'];
  return {
    requestsPerSecond: total / options.seconds,
    acceptedPerSecond: ok / options.seconds,
    p50Ms: result.latency.p50,
    p99Ms: result.latency.p99,
    non2xx: result.non2xx,
    errors: result.errors + result.timeouts,
    total,
  };
}
