import { createHash } from 'node:crypto';
import type { Message } from 'amqplib';
import { decodeRequest, type StandardSchemaV1, validateWith } from '../core/index.ts';
import type { JobEnvelope } from './define-job.ts';

export type Decoded = { ok: true; requestId: string; data: unknown; acceptedAt?: number | undefined } | { ok: false; reason: string };

/** Turns a delivery into what its handler gets, or the reason it is malformed (dead-lettered at once). */
export type Decoder = (msg: Message) => Decoded | Promise<Decoded>;

/**
 * The decoder of a job: Warren's request envelope or a raw JSON body, then the job's schema. A
 * body that fails the schema (written by another producer) is malformed, with the validation
 * message naming the field.
 */
export function decoderFor(envelope: JobEnvelope, schema: StandardSchemaV1 | undefined): Decoder {
  const decode = envelope === 'raw' ? decodeRaw : decodeWarren;
  if (!schema) return decode;
  return async (msg) => {
    const decoded = decode(msg);
    if (!decoded.ok) return decoded;
    const valid = await validateWith(schema, decoded.data);
    if (!valid.ok) return { ok: false, reason: `data does not match the job's schema: ${valid.message}` };
    return { ...decoded, data: valid.value };
  };
}

function decodeWarren(msg: Message): Decoded {
  const d = decodeRequest(msg.content);
  if (!d.ok) return d;
  return { ok: true, requestId: d.value.requestId, data: d.value.data, acceptedAt: d.value.acceptedAt };
}

/** A raw body: any JSON value; its id comes from the message properties. */
function decodeRaw(msg: Message): Decoded {
  let data: unknown;
  try {
    data = JSON.parse(msg.content.toString('utf8'));
  } catch {
    return { ok: false, reason: 'body is not valid JSON' };
  }
  return { ok: true, requestId: rawRequestId(msg), data };
}

/**
 * The requestId of a message no Warren producer wrote: its messageId, else its correlationId,
 * else a digest of its body (stable across redeliveries and retries, so a result or a dead event
 * for it is recorded once).
 */
export function rawRequestId(msg: Pick<Message, 'properties' | 'content'>): string {
  const { messageId, correlationId } = msg.properties;
  if (typeof messageId === 'string' && messageId) return messageId;
  if (typeof correlationId === 'string' && correlationId) return correlationId;
  return `sha256-${createHash('sha256').update(msg.content).digest('hex').slice(0, 32)}`;
}
