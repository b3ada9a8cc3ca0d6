import type { MessageProperties, Options } from 'amqplib';

/**
 * The properties a copy of a message keeps (a retry copy, a dead letter, a replay). `userId` is
 * dropped because the broker checks it against the publishing connection's user (a publisher
 * with other credentials would get its channel closed), and `expiration` because a per-message
 * TTL would fight the retry tier's TTL, or expire a replayed message before a worker sees it.
 * Shared by the worker's envelopes and the API's dead-letter replay.
 */
export function copyProperties(props: MessageProperties, headers: Record<string, unknown>): Options.Publish {
  const out: Options.Publish = { persistent: true, headers };
  if (typeof props.messageId === 'string') out.messageId = props.messageId;
  if (typeof props.correlationId === 'string') out.correlationId = props.correlationId;
  if (typeof props.contentType === 'string') out.contentType = props.contentType;
  if (typeof props.contentEncoding === 'string') out.contentEncoding = props.contentEncoding;
  if (typeof props.type === 'string') out.type = props.type;
  if (typeof props.appId === 'string') out.appId = props.appId;
  if (typeof props.replyTo === 'string') out.replyTo = props.replyTo;
  if (typeof props.timestamp === 'number') out.timestamp = props.timestamp;
  if (typeof props.priority === 'number') out.priority = props.priority;
  return out;
}
