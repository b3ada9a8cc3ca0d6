import type { Observation } from './reconcile.ts';

/** What one POST /api/v1/processData came to, from a client's point of view. */
export type PostOutcome =
  | { kind: 'accepted'; requestId: string }
  /** Worth retrying: 503/429/409/5xx, a 202 whose outcome is unknown, or the API unreachable (refused, reset, timed out). */
  | {
      kind: 'retry';
      why: string;
      retryAfterMs: number | undefined;
      requestId?: string;
      /** The attempt may have taken effect: no answer came (timeout, reset) or the API said it cannot know. */
      indeterminate?: boolean;
    }
  /** A 4xx or a 202 without a requestId: retrying the same body cannot help. */
  | { kind: 'refused'; why: string };

const RETRYABLE = new Set([409, 429, 500, 502, 503, 504]);

/** The small HTTP client the load driver, the probes and the drain share. */
export class ApiClient {
  constructor(
    readonly baseUrl: string,
    private readonly timeoutMs = 10_000,
  ) {}

  async post(data: string, idempotencyKey?: string): Promise<PostOutcome> {
    let res: Response;
    try {
      res = await fetch(`${this.baseUrl}/api/v1/processData`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...(idempotencyKey ? { 'idempotency-key': idempotencyKey } : {}) },
        body: JSON.stringify({ data }),
        signal: AbortSignal.timeout(this.timeoutMs),
      });
    } catch (err) {
      const why = networkError(err);
      // Refused: the request never reached the API. Anything else may have reached it.
      return { kind: 'retry', why, retryAfterMs: undefined, indeterminate: why !== 'ECONNREFUSED' };
    }
    const text = await res.text().catch((err: unknown) => `(body unreadable: ${networkError(err)})`);
    if (res.status === 202) {
      const requestId = parseRequestId(text);
      // "unknown": no confirm in time. As the README tells clients: send it again with the same
      // Idempotency-Key (the requestId is reused) until it is queued; meanwhile its outcome is allowed.
      if (requestId && /"status"\s*:\s*"unknown"/.test(text))
        return { kind: 'retry', why: '202 unknown', retryAfterMs: undefined, requestId, indeterminate: true };
      return requestId ? { kind: 'accepted', requestId } : { kind: 'refused', why: `202 without a requestId: ${text.slice(0, 120)}` };
    }
    if (RETRYABLE.has(res.status)) {
      // An answer that names a requestId (an outcome the API could not know) may still be processed.
      const requestId = parseRequestId(text);
      const why = `http ${res.status}${errorCode(text)}`;
      return { kind: 'retry', why, retryAfterMs: retryAfterMs(res.headers.get('retry-after')), ...(requestId ? { requestId } : {}) };
    }
    return { kind: 'refused', why: `http ${res.status}: ${text.slice(0, 120)}` };
  }

  /** GET /api/v1/requests/:id as an Observation for the reconciler. */
  async observe(requestId: string): Promise<Observation> {
    let res: Response;
    try {
      res = await fetch(`${this.baseUrl}/api/v1/requests/${encodeURIComponent(requestId)}`, { signal: AbortSignal.timeout(this.timeoutMs) });
    } catch (err) {
      return { kind: 'unreadable', error: networkError(err) };
    }
    if (res.status === 404) {
      await res.body?.cancel();
      return { kind: 'missing' };
    }
    const text = await res.text().catch(() => '');
    if (res.status !== 200) return { kind: 'unreadable', error: `http ${res.status}: ${text.slice(0, 120)}` };
    try {
      const o = JSON.parse(text) as { status?: unknown; result?: unknown; error?: { reason?: unknown }; attempts?: unknown };
      return {
        kind: 'record',
        status: String(o.status),
        result: o.result,
        reason: typeof o.error?.reason === 'string' ? o.error.reason : undefined,
        attempts: typeof o.attempts === 'number' ? o.attempts : undefined,
      };
    } catch {
      return { kind: 'unreadable', error: `not JSON: ${text.slice(0, 120)}` };
    }
  }

  /** True when GET /readyz answers 200. */
  async ready(): Promise<boolean> {
    try {
      const res = await fetch(`${this.baseUrl}/readyz`, { signal: AbortSignal.timeout(2000) });
      await res.body?.cancel();
      return res.status === 200;
    } catch {
      return false;
    }
  }
}

function parseRequestId(text: string): string | undefined {
  try {
    const o = JSON.parse(text) as { requestId?: unknown };
    return typeof o.requestId === 'string' && o.requestId !== '' ? o.requestId : undefined;
  } catch {
    return undefined;
  }
}

/** " CODE" from an error body {"error":{"code":...}} or {"code":...}, for the retry causes; empty when none. */
function errorCode(text: string): string {
  try {
    const o = JSON.parse(text) as { code?: unknown; error?: { code?: unknown } | string };
    const code = typeof o.error === 'object' ? o.error?.code : o.code;
    return typeof code === 'string' ? ` ${code}` : '';
  } catch {
    return '';
  }
}

/** Retry-After in seconds (or an HTTP date), as milliseconds; undefined when absent or unreadable. */
export function retryAfterMs(header: string | null): number | undefined {
  if (header === null || header.trim() === '') return undefined;
  const secs = Number(header);
  if (Number.isFinite(secs) && secs >= 0) return secs * 1000;
  const at = Date.parse(header);
  return Number.isNaN(at) ? undefined : Math.max(0, at - Date.now());
}

/** undici hides the socket error in `cause`: ECONNREFUSED while the API is down, ECONNRESET/UND_ERR_SOCKET when it dies mid-request. */
function networkError(err: unknown): string {
  const e = err as { name?: string; message?: string; cause?: { code?: string; message?: string } };
  if (e.name === 'TimeoutError') return 'timeout';
  return e.cause?.code ?? e.cause?.message ?? e.message ?? String(err);
}
