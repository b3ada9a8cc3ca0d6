/**
 * Why a dead-letter operation could not run, as an HTTP status and a stable code the CLI and the
 * admin routes both answer with: 404 a queue is missing, 409 the broker refused the operation in
 * the queue's present state, 503 the broker is unreachable or dropped the session.
 */
export class DeadLetterOperationError extends Error {
  readonly status: 404 | 409 | 503;
  readonly code: string;

  constructor(status: 404 | 409 | 503, code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'DeadLetterOperationError';
    this.status = status;
    this.code = code;
  }
}

/** The AMQP reply code of a channel or connection close, when the error carries one. */
function replyCodeOf(err: unknown): number | undefined {
  const code = typeof err === 'object' && err !== null ? (err as { code?: unknown }).code : undefined;
  return typeof code === 'number' ? code : undefined;
}

/** Maps an amqplib failure during an operation on `queue` to an answer that names the cause. */
export function classifyBrokerError(err: unknown, queue: string): DeadLetterOperationError {
  if (err instanceof DeadLetterOperationError) return err;
  const reply = replyCodeOf(err);
  const detail = err instanceof Error ? err.message : String(err);
  if (reply === 404) {
    return new DeadLetterOperationError(404, 'QUEUE_NOT_FOUND', `queue "${queue}" does not exist (run warren topology apply)`, { cause: err });
  }
  if (reply === 405 || reply === 406 || reply === 403) {
    return new DeadLetterOperationError(409, 'QUEUE_REFUSED', `the broker refused the operation on "${queue}": ${detail}`, { cause: err });
  }
  return new DeadLetterOperationError(503, 'BROKER_UNAVAILABLE', `the broker is unavailable for "${queue}": ${detail}`, { cause: err });
}
