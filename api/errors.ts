import { WarrenError } from '../core/index.ts';
import { EnqueueError, JobValidationError } from '../producer/index.ts';

/**
 * The API's own failures, each with a stable `code` that the HTTP layer maps to a status. The
 * mapping lives here, at one boundary, so routes never branch on messages.
 */

/** The store could not be reached or refused the operation for a reason retrying may fix. */
export class StoreUnavailableError extends WarrenError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('STORE_UNAVAILABLE', message, options);
  }
}

/** Another request with the same Idempotency-Key is still being published. */
export class IdempotencyInProgressError extends WarrenError {
  constructor(message: string) {
    super('IDEMPOTENCY_KEY_IN_PROGRESS', message);
  }
}

/** The Idempotency-Key was already used with a different body. */
export class IdempotencyMismatchError extends WarrenError {
  constructor(message: string) {
    super('IDEMPOTENCY_KEY_REUSED', message);
  }
}

/** Queues or exchanges the API needs are not on the broker (passive checks answered 404). */
export class TopologyMissingError extends WarrenError {
  readonly missing: readonly string[];

  constructor(missing: readonly string[]) {
    super('TOPOLOGY_MISSING', `missing on the broker: ${missing.join(', ')}; run \`warren topology apply\` (with the same AMQP_URL and TOPOLOGY)`);
    this.missing = missing;
  }
}

/** A client error detected by a route (bad body, bad header, unknown id). */
export class HttpError extends WarrenError {
  readonly status: number;

  constructor(status: number, code: string, message: string) {
    super(code, message);
    this.status = status;
  }
}

export interface ErrorAnswer {
  status: number;
  code: string;
  message: string;
  /** Seconds, for the Retry-After header of 503/409 answers. */
  retryAfter?: number;
}

/** Maps any thrown value to the answer a client sees. Unknown errors are 500 without details. */
export function answerFor(err: unknown): ErrorAnswer {
  if (err instanceof HttpError) return { status: err.status, code: err.code, message: err.message };
  if (err instanceof EnqueueError) return enqueueAnswer(err);
  if (err instanceof JobValidationError) return { status: 400, code: 'INVALID_DATA', message: err.message };
  if (err instanceof StoreUnavailableError) {
    return { status: 503, code: err.code, message: 'the result store is unavailable; try again later', retryAfter: 5 };
  }
  if (err instanceof IdempotencyInProgressError) return { status: 409, code: err.code, message: err.message, retryAfter: 1 };
  if (err instanceof IdempotencyMismatchError) return { status: 422, code: err.code, message: err.message };
  const parser = bodyParserAnswer(err);
  if (parser) return parser;
  return { status: 500, code: 'INTERNAL', message: 'internal error' };
}

/** 503 with Retry-After for every refusal: the producer's code says why (the client's contract). */
function enqueueAnswer(err: EnqueueError): ErrorAnswer {
  const retryAfter = Math.max(1, Math.round(err.retryAfterMs / 1000));
  switch (err.code) {
    case 'BROKER_UNAVAILABLE':
      return { status: 503, code: err.code, message: 'the message broker is unreachable; the request was not accepted', retryAfter };
    case 'BROKER_BLOCKED':
      return { status: 503, code: err.code, message: 'the message broker is refusing publishes (resource alarm); the request was not accepted', retryAfter };
    case 'OVERLOADED':
      return { status: 503, code: err.code, message: 'too many requests awaiting broker confirmation; the request was not accepted', retryAfter };
    case 'TIMEOUT':
      return { status: 503, code: 'PUBLISH_TIMEOUT', message: 'the message broker did not confirm in time; the request was not accepted', retryAfter };
    case 'UNROUTABLE':
      return { status: 503, code: err.code, message: 'no queue is bound for the request route (run warren topology apply); it was not accepted', retryAfter };
    case 'PUBLISH_REJECTED':
      return { status: 503, code: err.code, message: 'the message broker rejected the request (queue full or unroutable); it was not accepted', retryAfter };
  }
}

/**
 * body-parser (under express.json) reports its failures with `type` and `status` fields; those
 * fields are its documented contract, so they are what we classify on.
 */
function bodyParserAnswer(err: unknown): ErrorAnswer | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  const { type, status } = err as { type?: unknown; status?: unknown };
  if (type === 'entity.parse.failed') return { status: 400, code: 'MALFORMED_JSON', message: 'the body is not valid JSON (an object is expected)' };
  if (type === 'entity.too.large') return { status: 413, code: 'PAYLOAD_TOO_LARGE', message: 'the body exceeds the size limit' };
  if (type === 'charset.unsupported' || type === 'encoding.unsupported') {
    return { status: 415, code: 'UNSUPPORTED_MEDIA_TYPE', message: 'unsupported charset or content encoding' };
  }
  if (typeof status === 'number' && status >= 400 && status < 500 && typeof type === 'string') {
    return { status, code: 'BAD_REQUEST', message: 'the request body could not be read' };
  }
  return undefined;
}
