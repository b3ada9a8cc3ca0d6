import type { Message } from 'amqplib';
import type { Envelope } from '../amqp/index.ts';
import { copyProperties, PermanentError, RESULT_CARRIED_HEADERS, type ResultMessage } from '../core/index.ts';
import type { Headers } from './failure-headers.ts';

/**
 * The messages that replace a consumed one: its result, a retry copy, or a dead letter. Pure;
 * the publisher sends them and the consumer acks only after the broker confirmed them. All are
 * published mandatory: one no queue takes comes back, and is not taken for delivered.
 */
export type { Envelope };

export interface Route {
  exchange: string;
  routingKey: string;
}

export { copyProperties } from '../core/index.ts';

/**
 * A retry copy or a dead letter: the original body, unchanged, with new headers; mandatory. A
 * message without a messageId (a raw body another service wrote) gets `messageId`, so its copies
 * and their returns can be told apart.
 */
export function copyEnvelope(msg: Message, route: Route, headers: Headers, messageId?: string): Envelope {
  const options = copyProperties(msg.properties, headers);
  options.mandatory = true;
  if (options.messageId === undefined && messageId !== undefined) options.messageId = messageId;
  return { exchange: route.exchange, routingKey: route.routingKey, content: msg.content, options };
}

export interface ResultInput {
  requestId: string;
  result: unknown;
  attempts: number;
  processedAt: Date;
  /** The request's headers: only the trace context is carried over. */
  requestHeaders: Headers | undefined;
  /** The request's acceptedAt (ms), carried into the result for the end-to-end time. */
  acceptedAt?: number | undefined;
}

/**
 * The result message (core/message.ts ResultMessage). A result that cannot be encoded as JSON
 * (a BigInt, a cycle) throws a PermanentError: running the handler again would not change it.
 */
export function resultEnvelope(route: Route, input: ResultInput): Envelope {
  const body: ResultMessage = {
    requestId: input.requestId,
    result: input.result === undefined ? null : input.result,
    attempts: input.attempts,
    processedAt: input.processedAt.toISOString(),
  };
  if (input.acceptedAt !== undefined) body.acceptedAt = input.acceptedAt;
  let content: Buffer;
  try {
    content = Buffer.from(JSON.stringify(body), 'utf8');
  } catch (err) {
    throw new PermanentError('the handler returned a result that cannot be encoded as JSON', { code: 'RESULT_NOT_SERIALIZABLE', cause: err });
  }
  // No header table at all when there is nothing to carry: an empty one still costs to encode.
  let headers: Headers | undefined;
  for (const name of RESULT_CARRIED_HEADERS) {
    const v = input.requestHeaders?.[name];
    if (v !== undefined) {
      headers ??= {};
      headers[name] = v;
    }
  }
  return {
    exchange: route.exchange,
    routingKey: route.routingKey,
    content,
    options: {
      persistent: true,
      mandatory: true,
      contentType: 'application/json',
      messageId: input.requestId,
      correlationId: input.requestId,
      timestamp: Math.floor(input.processedAt.getTime() / 1000),
      ...(headers ? { headers } : {}),
    },
  };
}
