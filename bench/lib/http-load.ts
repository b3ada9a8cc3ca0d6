import autocannon from 'autocannon';

export interface HttpLoadResult {
  requestsPerSecond: number;
  /** 2xx answers per second. */
  acceptedPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  non2xx: number;
  /** Connection errors, timeouts included. */
  errors: number;
  timeouts: number;
  total: number;
  /** Answers by HTTP status. */
  statusCounts: Record<string, number>;
}

export interface PostLoadOptions {
  connections: number;
  seconds: number;
  /** Requests per second offered over all connections (autocannon's `overallRate`); unset: as fast as answered. */
  overallRate?: number;
  /** Sees every answer (status, body, headers as sent). */
  onResponse?: (status: number, body: string, headers: Record<string, string | string[]>) => void;
}

/** autocannon against one URL: POST processData bodies over `connections` keep-alive connections. */
export async function postLoad(url: string, options: PostLoadOptions): Promise<HttpLoadResult> {
  let n = 0;
  const onResponse = options.onResponse;
  const result = await autocannon({
    url,
    method: 'POST',
    connections: options.connections,
    duration: options.seconds,
    ...(options.overallRate ? { overallRate: options.overallRate } : {}),
    headers: { 'content-type': 'application/json' },
    requests: [
      {
        setupRequest: (req) => ({ ...req, body: JSON.stringify({ data: `bench-${n++}` }) }),
        ...(onResponse
          ? {
              onResponse: (status: number, body: string, _ctx: object, headers: unknown) =>
                onResponse(status, body, headers as Record<string, string | string[]>),
            }
          : {}),
      },
    ],
  });
  const total = result.requests.total;
  const ok = result['2xx'];
  const statusCounts = Object.fromEntries(Object.entries(result.statusCodeStats ?? {}).map(([code, s]) => [code, (s as { count: number }).count]));
  return {
    requestsPerSecond: total / options.seconds,
    acceptedPerSecond: ok / options.seconds,
    p50Ms: result.latency.p50,
    p99Ms: result.latency.p99,
    non2xx: result.non2xx,
    // autocannon counts a timeout in `errors` as well as in `timeouts`.
    errors: result.errors,
    timeouts: result.timeouts,
    total,
    statusCounts,
  };
}
