import { brokerDeathOf, HEADERS, numberHeader, requestIdOf, stringHeader } from '../../core/index.ts';
import type { DeadInfo } from '../store/result-store.ts';

/** The parts of an AMQP message a dead event is read from. */
export interface DeadEventMessage {
  content: Buffer;
  properties: { messageId?: unknown; correlationId?: unknown; headers?: Record<string, unknown> | undefined };
}

export interface DecodedDeadEvent {
  requestId: string | undefined;
  info: DeadInfo;
}

/**
 * Reads why a request died. The worker dead-letters with x-warren-* headers; the broker
 * dead-letters on its own (quorum delivery limit after crash loops, expiry, rejection) and then
 * only x-death says why. x-death[0] is the most recent death.
 */
export function decodeDeadEvent(msg: DeadEventMessage, options: { deliveryLimits?: Readonly<Record<string, number>> } = {}): DecodedDeadEvent {
  const headers = msg.properties.headers;
  const requestId = requestIdOf({ properties: msg.properties, content: msg.content });
  const reason = stringHeader(headers, HEADERS.reason);
  if (reason) {
    const attempts = numberHeader(headers, HEADERS.attempts);
    return {
      requestId,
      info: {
        reason,
        code: stringHeader(headers, HEADERS.errorCode),
        message: truncate(stringHeader(headers, HEADERS.errorMessage)),
        ...(attempts > 0 ? { attempts } : {}),
      },
    };
  }
  const death = brokerDeathOf(headers);
  if (death) {
    const brokerReason = death.reason ?? 'unknown';
    // RabbitMQ resets x-delivery-count to 0 when it dead-letters, and x-death's count counts
    // deaths (1), not deliveries. For the delivery limit the topology knows the number: the
    // broker gives up after limit + 1 deliveries.
    const queue = death.queue;
    const limit = brokerReason === 'delivery_limit' && queue ? options.deliveryLimits?.[queue] : undefined;
    const attempts = numberHeader(headers, 'x-delivery-count') || (limit !== undefined ? limit + 1 : death.count);
    return {
      requestId,
      info: {
        reason: brokerReason.replaceAll('_', '-'),
        code: 'BROKER_DEAD_LETTER',
        ...(queue ? { message: `dead-lettered by the broker from ${queue} (${brokerReason})` } : {}),
        ...(attempts > 0 ? { attempts } : {}),
      },
    };
  }
  return { requestId, info: { reason: 'unknown' } };
}

/** Error messages are kept for people reading GET /requests/:id, not as a log sink. */
const MAX_MESSAGE = 2000;

function truncate(s: string | undefined): string | undefined {
  return s !== undefined && s.length > MAX_MESSAGE ? `${s.slice(0, MAX_MESSAGE)}…` : s;
}
