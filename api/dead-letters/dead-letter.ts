import { brokerDeathOf, type DeadReason, HEADERS, numberHeader, requestIdOf, stringHeader } from '../../core/index.ts';
import { type Fingerprint, fingerprintOf } from './fingerprint.ts';

/** What a dead-lettered message says about itself, read from its headers and body. */
export interface DeadLetter {
  requestId: string | undefined;
  messageId: string | undefined;
  originQueue: string;
  reason: DeadReason | string;
  errorCode: string | undefined;
  errorMessage: string | undefined;
  errorStack: string | undefined;
  attempts: number;
  firstFailure: string | undefined;
  lastFailure: string | undefined;
  deadAt: string | undefined;
  history: unknown[];
  replays: number;
  fingerprint: Fingerprint;
  headers: Record<string, unknown>;
  body: Buffer;
}

/**
 * Decodes a message from a dead-letter queue. Worker dead letters carry x-warren-* headers; the
 * broker's own (delivery limit on a quorum queue) carry only x-death, whose first entry names the
 * queue and reason.
 */
export function decodeDeadLetter(
  msg: { properties: { headers?: Record<string, unknown>; messageId?: unknown; correlationId?: unknown }; content: Buffer },
  defaultOrigin = '',
  /** The origin queue's delivery limit, from the topology. */
  deliveryLimit?: number,
): DeadLetter {
  const headers = msg.properties.headers ?? {};
  const death = brokerDeathOf(headers);
  const warrenReason = stringHeader(headers, HEADERS.reason);
  const brokerReason = death?.reason === 'delivery_limit' ? 'delivery-limit' : death?.reason;
  const reason = warrenReason ?? brokerReason ?? 'unknown';
  const errorMessage =
    stringHeader(headers, HEADERS.errorMessage) ??
    (brokerReason === 'delivery-limit' ? 'redelivered past the queue delivery limit (the worker crashed or requeued it each time)' : undefined);
  // The broker resets x-delivery-count when it dead-letters, so a delivery-limit dead letter was
  // delivered limit + 1 times; the limit comes from the topology.
  const attempts = numberHeader(headers, HEADERS.attempts) || (brokerReason === 'delivery-limit' && deliveryLimit !== undefined ? deliveryLimit + 1 : 0);
  let history: unknown[] = [];
  try {
    const h = stringHeader(headers, HEADERS.history);
    if (h) history = JSON.parse(h) as unknown[];
  } catch {
    history = [];
  }
  return {
    requestId: requestIdOf(msg),
    messageId: typeof msg.properties.messageId === 'string' ? msg.properties.messageId : undefined,
    originQueue: stringHeader(headers, HEADERS.originQueue) ?? death?.queue ?? defaultOrigin,
    reason,
    errorCode: stringHeader(headers, HEADERS.errorCode) ?? (brokerReason === 'delivery-limit' ? 'DELIVERY_LIMIT' : undefined),
    errorMessage,
    errorStack: stringHeader(headers, HEADERS.errorStack),
    attempts,
    firstFailure: stringHeader(headers, HEADERS.firstFailure),
    lastFailure: stringHeader(headers, HEADERS.lastFailure),
    deadAt: stringHeader(headers, HEADERS.deadAt) ?? (death?.timeSeconds === undefined ? undefined : new Date(death.timeSeconds * 1000).toISOString()),
    history,
    replays: numberHeader(headers, HEADERS.replays),
    fingerprint: fingerprintOf(reason, errorMessage),
    headers,
    body: msg.content,
  };
}

/**
 * What the store keeps of a dead letter to list and group it without reading its queue. The
 * dead-event copy carries the same headers as the dead letter, so the store's group ids are the
 * ones a queue read computes (`--group` works on both).
 */
export function deadLetterFacts(msg: { properties: { headers?: Record<string, unknown>; messageId?: unknown; correlationId?: unknown }; content: Buffer }): {
  group: string;
  originQueue: string | undefined;
  firstFailure: string | undefined;
  deadAt: string | undefined;
} {
  const dl = decodeDeadLetter(msg);
  return { group: dl.fingerprint.id, originQueue: dl.originQueue || undefined, firstFailure: dl.firstFailure, deadAt: dl.deadAt };
}
