/**
 * The wire contract between the API, the workers and the dead-letter tools. Header names are
 * stable: scripts and other teams' services read them.
 *
 * Request  (exchange/routing key from the topology's main queue binding; tutorial: processing/request)
 *   body: JSON {"requestId": string, "data": any, "acceptedAt"?: ms since the epoch, set by the API};
 *   properties: persistent, messageId = requestId,
 *   correlationId = requestId, contentType application/json, headers may carry traceparent.
 * Result   (the results queue's binding; tutorial: processing/result)
 *   body: JSON {"requestId", "result", "attempts", "processedAt", "acceptedAt"?}; correlationId = requestId.
 *   acceptedAt rides in the bodies (not a header: a header table on every message cost a fifth of
 *   the publish rate, measured) for the end-to-end time, accepted to outcome stored.
 * Results  (several results in one message: what a worker sends for results finished together)
 *   body: JSON array of result bodies as above, each with "headers"?: the trace headers its own
 *   message would have carried; contentType application/vnd.warren.results+json, header
 *   x-warren-results = the number of results. A consumer of a results queue handles both forms.
 * Dead letter (the main queue's dead-letter exchange)
 *   body: the original body, unchanged; headers below say why.
 */
export const HEADERS = {
  /** Attempts already made and failed (0 or absent on the first delivery). */
  attempt: 'x-warren-attempt',
  /** Time of the first failure (ISO 8601), kept across retries. */
  firstFailure: 'x-warren-first-failure',
  lastFailure: 'x-warren-last-failure',
  /** Dead-letter reason code: malformed | permanent | max-attempts | delivery-limit | timeout. */
  reason: 'x-warren-reason',
  errorCode: 'x-warren-error-code',
  errorMessage: 'x-warren-error-message',
  errorStack: 'x-warren-error-stack',
  /** Number of attempts made when dead-lettered. */
  attempts: 'x-warren-attempts',
  /** The queue the message was consumed from when it failed. */
  originQueue: 'x-warren-origin-queue',
  deadAt: 'x-warren-dead-at',
  /** JSON array of {at, code, message} for each failed attempt (bounded). */
  history: 'x-warren-history',
  /** W3C trace context. */
  traceparent: 'traceparent',
  tracestate: 'tracestate',
  /** Replays done by `warren dlq replay` (kept when the attempt count is reset). */
  replays: 'x-warren-replays',
} as const;

/** The content type of a message holding several results (a JSON array of result bodies). */
export const RESULTS_BATCH_CONTENT_TYPE = 'application/vnd.warren.results+json';
/** On a results batch: how many results it holds. */
export const RESULTS_BATCH_HEADER = 'x-warren-results';

/** Headers a result carries over from its request. */
export const RESULT_CARRIED_HEADERS: readonly string[] = [HEADERS.traceparent, HEADERS.tracestate];

/** Headers the broker writes when it dead-letters or redelivers; a new copy must not carry them. */
export const BROKER_DEATH_HEADERS: readonly string[] = [
  'x-death',
  'x-first-death-exchange',
  'x-first-death-queue',
  'x-first-death-reason',
  'x-last-death-exchange',
  'x-last-death-queue',
  'x-last-death-reason',
  'x-delivery-count',
];

/** The newest entry of a message's x-death header: the broker's own record of why it died. */
export interface BrokerDeath {
  /** The broker's reason: delivery_limit, expired, rejected, maxlen. */
  reason: string | undefined;
  queue: string | undefined;
  /** How many times it died this way (deaths, not deliveries). */
  count: number;
  /** When, in seconds since the epoch (an AMQP timestamp). */
  timeSeconds: number | undefined;
}

/** Reads x-death[0] (the most recent death), decoding the ways amqplib hands its fields over. */
export function brokerDeathOf(headers: Record<string, unknown> | undefined): BrokerDeath | undefined {
  const deaths = headers?.['x-death'];
  if (!Array.isArray(deaths)) return undefined;
  const first: unknown = deaths[0];
  if (typeof first !== 'object' || first === null) return undefined;
  const d = first as Record<string, unknown>;
  const text = (v: unknown) => (typeof v === 'string' ? v : Buffer.isBuffer(v) ? v.toString('utf8') : undefined);
  // amqplib decodes AMQP timestamps as {'!': 'timestamp', value: seconds}.
  const t = d.time as { value?: unknown } | number | undefined;
  const timeSeconds = typeof t === 'number' ? t : typeof t?.value === 'number' ? t.value : undefined;
  return { reason: text(d.reason), queue: text(d.queue), count: numberHeader(d, 'count'), timeSeconds };
}

export type DeadReason = 'malformed' | 'permanent' | 'max-attempts' | 'delivery-limit' | 'timeout';

export interface RequestMessage {
  requestId: string;
  data: unknown;
  /** When the API published it (ms since the epoch); absent from other publishers. */
  acceptedAt?: number;
}

export interface ResultMessage {
  requestId: string;
  result: unknown;
  attempts: number;
  processedAt: string;
  /** The request's acceptedAt, carried over. */
  acceptedAt?: number;
}

/** Parses a request body; returns a reason instead of throwing, for dead-lettering as malformed. */
export function decodeRequest(body: Buffer): { ok: true; value: RequestMessage } | { ok: false; reason: string } {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body.toString('utf8'));
  } catch {
    return { ok: false, reason: 'body is not valid JSON' };
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return { ok: false, reason: 'body is not a JSON object' };
  const o = parsed as Record<string, unknown>;
  if (typeof o.requestId !== 'string' || o.requestId === '') return { ok: false, reason: 'missing field requestId (a non-empty string)' };
  if (!('data' in o)) return { ok: false, reason: 'missing field data' };
  const value: RequestMessage = { requestId: o.requestId, data: o.data };
  if (typeof o.acceptedAt === 'number' && Number.isFinite(o.acceptedAt)) value.acceptedAt = o.acceptedAt;
  return { ok: true, value };
}

export function decodeResult(body: Buffer): ResultMessage | undefined {
  try {
    return resultOf(JSON.parse(body.toString('utf8')));
  } catch {
    return undefined;
  }
}

/**
 * A results batch's items, each decoded as decodeResult does (undefined for one without a string
 * requestId); undefined when the body is not a JSON array.
 */
export function decodeResults(body: Buffer): Array<ResultMessage | undefined> | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body.toString('utf8'));
  } catch {
    return undefined;
  }
  if (!Array.isArray(parsed)) return undefined;
  return parsed.map(resultOf);
}

/** How many results a message of a results queue holds: a batch's count header, else one. */
export function resultCountOf(properties: { contentType?: unknown; headers?: Record<string, unknown> | undefined }): number {
  return properties.contentType === RESULTS_BATCH_CONTENT_TYPE ? Number(properties.headers?.[RESULTS_BATCH_HEADER]) : 1;
}

function resultOf(parsed: unknown): ResultMessage | undefined {
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return undefined;
  const o = parsed as Partial<ResultMessage>;
  if (typeof o.requestId !== 'string') return undefined;
  const out: ResultMessage = {
    requestId: o.requestId,
    result: o.result,
    attempts: Number(o.attempts ?? 1),
    processedAt: String(o.processedAt ?? new Date().toISOString()),
  };
  if (typeof o.acceptedAt === 'number' && Number.isFinite(o.acceptedAt)) out.acceptedAt = o.acceptedAt;
  return out;
}

/** The requestId of any message: its messageId or correlationId, else the body's field. */
export function requestIdOf(msg: { properties: { messageId?: unknown; correlationId?: unknown }; content: Buffer }): string | undefined {
  const { messageId, correlationId } = msg.properties;
  if (typeof messageId === 'string' && messageId) return messageId;
  if (typeof correlationId === 'string' && correlationId) return correlationId;
  try {
    const o = JSON.parse(msg.content.toString('utf8')) as { requestId?: unknown };
    return typeof o.requestId === 'string' ? o.requestId : undefined;
  } catch {
    return undefined;
  }
}

/** A header value as a number (AMQP tables may carry numbers as strings or longs). */
export function numberHeader(headers: Record<string, unknown> | undefined, name: string): number {
  const v = headers?.[name];
  const n = typeof v === 'number' ? v : typeof v === 'string' ? Number(v) : typeof v === 'bigint' ? Number(v) : 0;
  return Number.isFinite(n) && n > 0 ? n : 0;
}

export function stringHeader(headers: Record<string, unknown> | undefined, name: string): string | undefined {
  const v = headers?.[name];
  if (typeof v === 'string') return v;
  if (Buffer.isBuffer(v)) return v.toString('utf8');
  return undefined;
}
